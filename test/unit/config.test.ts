import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgipam-cfg-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
let files = 0;

function tmpFile(text: string, mode = 0o600): string {
  const p = path.join(dir, `pgipam-${files++}.conf`);
  fs.writeFileSync(p, text);
  fs.chmodSync(p, mode);
  return p;
}

describe('configuration', () => {
  it('prefers PGIPAM_DATABASE_URL over the file', () => {
    const p = tmpFile('database_url = postgres://file@h/db\n');
    const c = loadConfig({ PGIPAM_DATABASE_URL: 'postgres://env@h/db', PGIPAM_CONFIG: p });
    expect(c.databaseUrl).toBe('postgres://env@h/db');
    expect(c.source).toBe('PGIPAM_DATABASE_URL');
  });
  it('reads the file with comments, quotes and limits', () => {
    const p = tmpFile('# pgipam\ndatabase_url = "postgres://one@db/ipam"\nstatement_timeout_ms = 2500\nplatform = zone-a\n');
    const c = loadConfig({ PGIPAM_CONFIG: p });
    expect(c).toMatchObject({
      databaseUrl: 'postgres://one@db/ipam',
      statementTimeoutMs: 2500,
      platform: 'zone-a',
      connectTimeoutMs: 5000,
    });
  });
  it('pooler: auto unless the file or PGIPAM_POOLER says transaction or none; anything else refused', () => {
    expect(loadConfig({ PGIPAM_CONFIG: '/dev/null', PGIPAM_DATABASE_URL: 'postgres://h/db' }).pooler).toBe('auto');
    const p = tmpFile('database_url = postgres://one@db/ipam\npooler = transaction\n');
    expect(loadConfig({ PGIPAM_CONFIG: p }).pooler).toBe('transaction');
    expect(loadConfig({ PGIPAM_CONFIG: p, PGIPAM_POOLER: 'none' }).pooler).toBe('none');
    expect(() => loadConfig({ PGIPAM_CONFIG: p, PGIPAM_POOLER: 'session' })).toThrow(
      /pooler "session" is not one of auto, transaction, none/,
    );
  });
  it('falls back to the PG* variables', () => {
    const c = loadConfig({ PGIPAM_CONFIG: '/dev/null', PGHOST: 'db', PGDATABASE: 'ipam' });
    expect(c.databaseUrl).toBeUndefined();
    expect(c.source).toMatch(/PG\*/);
  });
  it('says exactly what to set when nothing is configured', () => {
    expect(() => loadConfig({ PGIPAM_CONFIG: '/dev/null' })).toThrow(/set PGIPAM_DATABASE_URL, or write database_url/);
  });
  it('names a missing config file that was asked for', () => {
    expect(() => loadConfig({ PGIPAM_CONFIG: '/nonexistent/pgipam.conf' })).toThrow(/cannot read config file \/nonexistent\/pgipam.conf/);
  });
  it('refuses unknown settings and bad numbers with the line number', () => {
    expect(() => loadConfig({ PGIPAM_CONFIG: tmpFile('databse_url = x\n') })).toThrow(/:1: unknown setting "databse_url"/);
    expect(() => loadConfig({ PGIPAM_CONFIG: tmpFile('database_url = postgres://a@b/c\nlock_timeout_ms = soon\n') })).toThrow(
      /lock_timeout_ms/,
    );
  });
  it('refuses a world-readable file that holds a password, warns for one without', () => {
    expect(() => loadConfig({ PGIPAM_CONFIG: tmpFile('database_url = postgres://u:secret@h/db\n', 0o644) })).toThrow(/chmod 600/);
    const c = loadConfig({ PGIPAM_CONFIG: tmpFile('database_url = postgres://u@h/db\n', 0o644) });
    expect(c.warnings.join()).toMatch(/readable by other users/);
  });
  it('never echoes the password in errors', () => {
    try {
      loadConfig({ PGIPAM_CONFIG: tmpFile('database_url = mysql://u:secret@h/db\n') });
      expect.unreachable();
    } catch (e) {
      expect((e as Error).message).not.toMatch(/secret/);
    }
  });
});
