// Issue 9: running pgipam in production, as an operator does it, with the built CLI and actions:
// install, db setup, doctor, metrics, one version everywhere, a Unix tool's manners, and lines
// that tell the truth.
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import { parseTemplate } from '../../src/driver/template';
import { ACTION_NAMES } from '../../src/ipam-actions';
import { PGIPAM_VERSION } from '../../src/version';
import { EMPTY_ADDRESS, actionData, addressXml, arXmlFormA, arXmlFormB, storedAr, toBase64 } from '../support/oned-sim';
import { type TestDb, createTestDatabase } from '../support/db';
import { CLI, runActionProcess, runCliProcess } from '../support/processes';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
const roles: string[] = [];
const databases: string[] = [];
afterAll(async () => {
  const admin = new pg.Client({ connectionString: inject('pgAdminUrl') });
  await admin.connect();
  for (const d of databases) await admin.query(`drop database if exists ${pg.escapeIdentifier(d)} with (force)`);
  for (const r of roles) await admin.query(`drop role if exists ${pg.escapeIdentifier(r)}`);
  await admin.end();
});

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgipam-ops-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// A remotes tree as OpenNebula has it (remotes/ipam holds other drivers), and an oned.conf.
function fakeFrontEnd(args = '-t 1 -i dummy'): { remotes: string; onedConf: string; etc: string } {
  const dir = tempDir();
  const remotes = path.join(dir, 'remotes');
  fs.mkdirSync(path.join(remotes, 'ipam', 'dummy'), { recursive: true });
  fs.writeFileSync(path.join(remotes, 'ipam', 'dummy', 'get_address'), '#!/bin/sh\n');
  const onedConf = path.join(dir, 'oned.conf');
  fs.writeFileSync(onedConf, `PORT = 2633\n\nIPAM_MAD = [\n    EXECUTABLE = "one_ipam",\n    ARGUMENTS  = "${args}"\n]\n`);
  return { remotes, onedConf, etc: path.join(dir, 'etc') };
}

const cli = (args: string[], env: Record<string, string> = {}) =>
  runCliProcess(args, { PGIPAM_DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none', ...env });

describe('pgipam install', () => {
  it('installs the five actions and the config, a second run changes nothing, and oned.conf gets its line', async () => {
    const fe = fakeFrontEnd();
    const config = path.join(fe.etc, 'pgipam.conf');
    const args = [
      'install',
      '--remotes',
      fe.remotes,
      '--config',
      config,
      '--database-url',
      'postgres://pgipam_a:s3cret@db.example.org/pgipam',
      '--platform',
      'zone-a',
      '--oned-conf',
      fe.onedConf,
    ];
    const first = await cli(args);
    expect(first.code).toBe(0);
    expect(first.stdout).not.toContain('s3cret');
    expect(first.stdout).toContain('config       database_url = postgres://pgipam_a:***@db.example.org/pgipam');
    expect(first.stdout).toContain('  now:     ARGUMENTS = "-t 1 -i dummy"\n  make it: ARGUMENTS = "-t 1 -i dummy,pgipam"\n');
    const target = path.join(fe.remotes, 'ipam', 'pgipam');
    for (const a of ACTION_NAMES) {
      expect(first.stdout).toContain(`created      ${path.join(target, a)}\n`);
      expect(fs.statSync(path.join(target, a)).mode & 0o777).toBe(0o755);
    }
    expect(fs.statSync(config).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(config, 'utf8')).toMatch(
      /^database_url = postgres:\/\/pgipam_a:s3cret@db\.example\.org\/pgipam\nplatform = zone-a\n$/m,
    );
    const again = await cli(args);
    expect(again.stdout.split('\n').filter((l) => /^(created|updated)/.test(l))).toEqual([]);
    expect(again.stdout.match(/^unchanged/gm)).toHaveLength(8);
    // an upgrade: only the file that differs is rewritten
    fs.writeFileSync(path.join(target, 'get_address'), '#!/bin/sh\necho old\n');
    const upgrade = await cli(args);
    expect(upgrade.stdout.split('\n').filter((l) => /^(created|updated)/.test(l))).toEqual([
      `updated      ${path.join(target, 'get_address')}`,
    ]);
    fs.writeFileSync(fe.onedConf, fs.readFileSync(fe.onedConf, 'utf8').replace('-i dummy', '-i dummy,pgipam'));
    expect((await cli(args)).stdout).toContain(`IPAM_MAD already names "pgipam" (ARGUMENTS = "-t 1 -i dummy,pgipam"); nothing to change`);
  });

  it('refuses a directory that holds another driver unless --force; --dry-run changes nothing', async () => {
    const fe = fakeFrontEnd();
    const before = fs.readFileSync(path.join(fe.remotes, 'ipam', 'dummy', 'get_address'), 'utf8');
    const refused = await cli(['install', '--remotes', fe.remotes, '--mad', 'dummy', '--oned-conf', fe.onedConf]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(
      `pgipam: ${path.join(fe.remotes, 'ipam', 'dummy')} holds files that pgipam did not install (get_address): choose another --mad, or pass --force to overwrite\n`,
    );
    expect(fs.readFileSync(path.join(fe.remotes, 'ipam', 'dummy', 'get_address'), 'utf8')).toBe(before);
    const dry = await cli(['install', '--remotes', fe.remotes, '--dry-run', '--oned-conf', fe.onedConf]);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/^would create /);
    expect(fs.existsSync(path.join(fe.remotes, 'ipam', 'pgipam'))).toBe(false);
    const forced = await cli(['install', '--remotes', fe.remotes, '--mad', 'dummy', '--force', '--oned-conf', fe.onedConf]);
    expect(forced.code).toBe(0);
    expect(fs.readFileSync(path.join(fe.remotes, 'ipam', 'dummy', 'get_address'), 'utf8')).toMatch(/^#!\/usr\/bin\/env node/);
    expect((await cli(['install', '--remotes', path.join(fe.remotes, 'nope')])).stderr).toMatch(
      /^pgipam: \S+\/nope\/ipam does not exist: is OpenNebula installed here/,
    );
  });
});

// db setup on the test server, with names of its own; returns what an operator would have.
async function setUp(fe: ReturnType<typeof fakeFrontEnd>) {
  const tag = crypto.randomBytes(3).toString('hex');
  const database = `pgipam_setup_${tag}`;
  const owner = `pgipam_owner_${tag}`;
  const platform = `fe-${tag}`;
  databases.push(database);
  roles.push(owner, `pgipam_fe_${tag}`);
  const config = path.join(fe.etc, 'pgipam.conf');
  const args = [
    'db',
    'setup',
    '--admin-url',
    inject('pgAdminUrl'),
    '--database',
    database,
    '--owner',
    owner,
    '--platform',
    platform,
    '--config',
    config,
    '--front-end',
    '10.0.0.5/32',
  ];
  return { args, config, database, owner, platform, role: `pgipam_fe_${tag}` };
}

describe('pgipam db setup', () => {
  it('creates the database, its owner, the schema and a driver role whose password is only in the config file; a second run changes nothing', async () => {
    const fe = fakeFrontEnd();
    const s = await setUp(fe);
    const first = await cli(s.args);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(new RegExp(`^created  role ${s.owner} \\(owns the pgipam schema\\)\ncreated  database ${s.database}\n`));
    expect(first.stdout).toContain(`created  platform ${s.platform} with login role ${s.role}\n`);
    expect(first.stdout).toContain(`  host    ${s.database}  ${s.role}  10.0.0.5/32  scram-sha-256\n`);
    const text = fs.readFileSync(s.config, 'utf8');
    const url = /^database_url = (\S+)$/m.exec(text)![1]!;
    expect(new URL(url).password).toMatch(/^[A-Za-z0-9_-]{43}$/); // 256 random bits
    expect(first.stdout).not.toContain(new URL(url).password);
    expect(fs.statSync(s.config).mode & 0o777).toBe(0o600);
    // a 256-bit random password needs no key stretching: its verifier takes 16 iterations, a person's 4096
    const superuser = new pg.Client({ connectionString: inject('pgAdminUrl') });
    await superuser.connect();
    const verifier = await superuser.query<{ p: string }>('select rolpassword as p from pg_catalog.pg_authid where rolname = $1', [s.role]);
    await superuser.end();
    expect(verifier.rows[0]!.p).toMatch(/^SCRAM-SHA-256\$16:/);
    const second = await cli(s.args);
    expect(second.code).toBe(0);
    expect(second.stdout).toContain('nothing changed: everything was already there\n');
    expect(fs.readFileSync(s.config, 'utf8')).toBe(text);
    // the driver role leases through the actions, and can do nothing else
    const env = { PGIPAM_CONFIG: s.config, PGIPAM_DATABASE_URL: '' };
    const ownerUrl = new URL(inject('pgAdminUrl'));
    ownerUrl.pathname = `/${s.database}`;
    const reg = await runActionProcess(
      'register_address_range',
      toBase64(actionData(arXmlFormA({ IPAM_MAD: 'pgipam', TYPE: 'IP4', IP: '10.140.0.0', SIZE: '8' }), EMPTY_ADDRESS)),
      env,
    );
    expect(reg.reason).toBe('');
    const ar = storedAr(parseTemplate(reg.stdout).values, 0);
    const lease = await runActionProcess('get_address', toBase64(actionData(arXmlFormB(ar), addressXml({ size: 1 }))), env);
    expect(parseTemplate(lease.stdout).values.IP).toBe('10.140.0.0');
    const asDriver = new pg.Client({ connectionString: url });
    await asDriver.connect();
    try {
      await expect(asDriver.query('create table pgipam.evil (x int)')).rejects.toMatchObject({ code: '42501' });
      await expect(asDriver.query('create table public.evil (x int)')).rejects.toMatchObject({ code: '42501' });
    } finally {
      await asDriver.end();
    }
    // doctor on this install: nothing fails
    await cli(['install', '--remotes', fe.remotes, '--oned-conf', fe.onedConf]);
    fs.writeFileSync(fe.onedConf, fs.readFileSync(fe.onedConf, 'utf8').replace('-i dummy', '-i dummy,pgipam'));
    const doctor = await runCliProcess(['doctor', '--remotes', fe.remotes, '--oned-conf', fe.onedConf, '--json'], env);
    const checks = JSON.parse(doctor.stdout) as Array<{ check: string; status: string; detail: string }>;
    expect(checks.filter((c) => c.status === 'fail')).toEqual([]);
    expect(doctor.code).toBe(0);
    expect(checks.map((c) => c.check)).toEqual(
      expect.arrayContaining([
        'config file',
        'database',
        'tls',
        'schema',
        'driver role',
        'replication',
        'usage',
        'versions',
        'consistency',
        'oned.conf',
        'actions',
        'node',
      ]),
    );
    expect(checks.find((c) => c.check === 'driver role')!.detail).toBe(
      `${s.role}: a platform role, no DDL, confined by row-level security`,
    );

    // and each check fails once, with what to do
    const failing = async (
      change: () => Promise<void> | void,
      undo: () => Promise<void> | void,
      check: string,
      detail: RegExp,
      extraEnv: Record<string, string> = {},
    ) => {
      await change();
      try {
        const r = await runCliProcess(['doctor', '--remotes', fe.remotes, '--oned-conf', fe.onedConf, '--json'], { ...env, ...extraEnv });
        expect(r.code, check).toBe(1);
        const found = (JSON.parse(r.stdout) as typeof checks).filter((c) => c.check === check && c.status === 'fail');
        expect(
          found.map((c) => c.detail),
          check,
        ).toEqual([expect.stringMatching(detail)]);
      } finally {
        await undo();
      }
    };
    await failing(
      () => fs.chmodSync(s.config, 0o644),
      () => fs.chmodSync(s.config, 0o600),
      'config file',
      /has mode 0644: it may hold a password; chmod 600/,
    );
    const exe = path.join(fe.remotes, 'ipam', 'pgipam', 'free_address');
    const saved = fs.readFileSync(exe);
    await failing(
      () => fs.rmSync(exe),
      () => fs.writeFileSync(exe, saved, { mode: 0o755 }),
      'actions',
      /free_address is missing: run "pgipam install"$/,
    );
    await failing(
      () => fs.writeFileSync(exe, '#!/bin/sh\necho "free_address - pgipam 0.0.9 OpenNebula IPAM driver action"\n', { mode: 0o755 }),
      () => fs.writeFileSync(exe, saved, { mode: 0o755 }),
      'actions',
      new RegExp(`free_address is pgipam 0\\.0\\.9, this CLI is ${PGIPAM_VERSION.replace(/\./g, '\\.')}: run "pgipam install"$`),
    );
    const admin = new pg.Client({ connectionString: ownerUrl.toString() });
    await admin.connect();
    cleanups.push(() => admin.end());
    const top = (await admin.query<{ id: number; name: string }>('select id, name from pgipam.migration order by id desc limit 1'))
      .rows[0]!;
    await failing(
      () => admin.query('delete from pgipam.migration where id = $1', [top.id]).then(() => undefined),
      () => admin.query('insert into pgipam.migration (id, name) values ($1, $2)', [top.id, top.name]).then(() => undefined),
      'schema',
      /schema is at version \d+, this pgipam needs \d+: run "pgipam migrate"/,
    );
    await failing(
      () => undefined,
      () => undefined,
      'database',
      /^cannot reach PostgreSQL at 127\.0\.0\.1:1\/x \(from PGIPAM_DATABASE_URL\): connection refused$/,
      { PGIPAM_DATABASE_URL: 'postgres://u:pw@127.0.0.1:1/x' },
    );
  });
});

// A minimal reader of Prometheus' text format: every sample line is `name{labels} value`, every
// name has HELP and TYPE lines before its samples, and label values are quoted.
function parseExposition(text: string): Map<string, Array<{ labels: Record<string, string>; value: number }>> {
  const out = new Map<string, Array<{ labels: Record<string, string>; value: number }>>();
  const typed = new Set<string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.+)$/.exec(line);
    if (meta) {
      if (meta[1] === 'TYPE') typed.add(meta[2]!);
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (-?[0-9.e+]+|NaN|[+-]Inf)$/.exec(line);
    if (!m) throw new Error(`not an exposition line: ${line}`);
    if (!typed.has(m[1]!)) throw new Error(`${m[1]} has samples before its TYPE line`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.set(m[1]!, [...(out.get(m[1]!) ?? []), { labels, value: Number(m[3]) }]);
  }
  return out;
}

describe('pgipam metrics', () => {
  let t: TestDb | undefined;
  afterEach(async () => {
    await t?.drop();
    t = undefined;
  });

  it('prints the address space in Prometheus text format, atomically into --output, and promtool accepts it', async () => {
    t = await createTestDatabase('metrics');
    const env = { PGIPAM_DATABASE_URL: t.url };
    expect((await cli(['pool', 'add', 'm', '--prefix', '10.150.0.0/16', '--default'], env)).code).toBe(0);
    const reg = await runActionProcess(
      'register_address_range',
      toBase64(actionData(arXmlFormA({ IPAM_MAD: 'pgipam', TYPE: 'IP4', SIZE: '100' }), EMPTY_ADDRESS)),
      env,
    );
    const ar = storedAr(parseTemplate(reg.stdout).values, 0);
    await runActionProcess('get_address', toBase64(actionData(arXmlFormB(ar), addressXml({ size: 3 }))), env);
    const taken = await runActionProcess(
      'allocate_address',
      toBase64(actionData(arXmlFormB(ar), addressXml({ ip: '10.150.0.2', size: 1 }))),
      env,
    );
    expect(taken.exitCode).toBe(255); // refused: counted
    const file = path.join(tempDir(), 'pgipam.prom');
    const r = await cli(['metrics', '--output', file, '--interval', '1h'], env);
    expect([r.code, r.stdout, r.stderr]).toEqual([0, '', '']);
    const text = fs.readFileSync(file, 'utf8');
    const m = parseExposition(text);
    const id = ar.PGIPAM_RANGE_ID!;
    const state = (s: string) => m.get('pgipam_range_addresses')!.find((x) => x.labels.range === id && x.labels.state === s)!.value;
    expect([state('lease'), state('free')]).toEqual([3, 97]);
    expect(m.get('pgipam_range_size')).toEqual([
      { labels: { range: id, space: 'default', pool: 'm', platform: 'default', type: 'IP4' }, value: 100 },
    ]);
    expect(m.get('pgipam_pool_prefix_addresses')!.find((x) => x.labels.state === 'carved')!.value).toBe(128);
    expect(m.get('pgipam_pool_free_blocks')!.some((x) => x.labels.prefix_length === '24')).toBe(true);
    expect(m.get('pgipam_history_events')!.find((x) => x.labels.event === 'address_leased')!.value).toBe(1);
    expect(m.get('pgipam_refusals')).toEqual([
      { labels: { action: 'allocate_address', code: 'ADDRESS_IN_USE', platform: 'default' }, value: 1 },
    ]);
    expect(m.get('pgipam_schema_version')![0]!.value).toBe(m.get('pgipam_schema_version_expected')![0]!.value);
    const promtool = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    if (promtool.error) {
      console.log('promtool check skipped: apt-get install prometheus');
      return;
    }
    expect([promtool.status, promtool.stdout + promtool.stderr]).toEqual([0, '']);
  });
});

describe('one version everywhere', () => {
  it('pgipam --version, every action --help and the history of a change name the same version', async () => {
    expect((await cli(['--version'])).stdout).toBe(`${PGIPAM_VERSION}\n`);
    for (const a of ACTION_NAMES) {
      const r = await runActionProcess(a, '', {}, ['--help']);
      expect(r.stdout.split('\n')[0]).toBe(`${a} - pgipam ${PGIPAM_VERSION} OpenNebula IPAM driver action`);
    }
    const t = await createTestDatabase('version');
    cleanups.push(() => t.drop());
    await runActionProcess(
      'register_address_range',
      toBase64(actionData(arXmlFormA({ IPAM_MAD: 'pgipam', TYPE: 'IP4', IP: '10.151.0.0', SIZE: '4' }), EMPTY_ADDRESS)),
      { PGIPAM_DATABASE_URL: t.url },
    );
    const { rows } = await t.db.query('select pgipam_version from pgipam.history');
    expect(rows).toEqual([{ pgipam_version: PGIPAM_VERSION }]);
  });
});

describe('the CLI as a Unix tool', () => {
  it('ends quietly when its reader has gone away (| head), whatever the command', async () => {
    const t = await createTestDatabase('epipe');
    cleanups.push(() => t.drop());
    const env = { PATH: process.env.PATH ?? '', PGIPAM_CONFIG: '/dev/null', PGIPAM_DATABASE_URL: t.url };
    await runCliProcess(['pool', 'add', 'p', '--prefix', '10.152.0.0/16'], env);
    for (let i = 0; i < 3; i++)
      await runActionProcess(
        'register_address_range',
        toBase64(actionData(arXmlFormA({ IPAM_MAD: 'pgipam', TYPE: 'IP4', SIZE: '10' }), EMPTY_ADDRESS)),
        env,
      );
    for (const args of [
      ['range', 'list'],
      ['range', 'list', '--json'],
      ['pool', 'list'],
      ['pool', 'show', 'p'],
      ['lease', 'list'],
      ['history'],
      ['platform', 'list'],
      ['space', 'list'],
      ['find', '10.152.0.2'],
      ['metrics'],
      ['status'],
      ['check'],
      ['--help'],
    ]) {
      // the reader's end of stdout is closed before the CLI writes a byte
      const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.destroy();
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      expect([args.join(' '), code, stderr]).toEqual([args.join(' '), 0, '']);
    }
  });
});

describe('lines that tell the truth', () => {
  it('a lock wait says how long, for which range, and which setting decides; SIZE too large says so; a free across a reservation names what it kept and freed', async () => {
    const t = await createTestDatabase('truth');
    cleanups.push(() => t.drop());
    const env = { PGIPAM_DATABASE_URL: t.url };
    const reg = await runActionProcess(
      'register_address_range',
      toBase64(actionData(arXmlFormA({ IPAM_MAD: 'pgipam', TYPE: 'IP4', IP: '10.80.0.16', SIZE: '16' }), EMPTY_ADDRESS)),
      env,
    );
    const ar = storedAr(parseTemplate(reg.stdout).values, 0);
    const id = ar.PGIPAM_RANGE_ID!;
    // a person's psql session holding the range
    const psql = new pg.Client({ connectionString: t.url });
    await psql.connect();
    await psql.query('begin');
    await psql.query('select 1 from pgipam.address_range where id = $1 for update', [id]);
    try {
      const r = await runActionProcess('get_address', toBase64(actionData(arXmlFormB(ar), addressXml({ size: 1 }))), {
        ...env,
        PGIPAM_LOCK_TIMEOUT_MS: '300',
      });
      expect(r.reason).toBe(
        `waited 300 ms for range ${id}, which another session holds (an action, a pgipam command or a psql session: see pg_locks); the wait is lock_timeout_ms (PGIPAM_LOCK_TIMEOUT_MS; pgipam commands wait at least 30000 ms)`,
      );
    } finally {
      await psql.query('rollback');
      await psql.end();
    }
    const big = await runActionProcess(
      'register_address_range',
      toBase64(actionData(arXmlFormA({ IPAM_MAD: 'pgipam', TYPE: 'IP4', IP: '10.81.0.0', SIZE: '9999999999999999999' }), EMPTY_ADDRESS)),
      env,
    );
    expect(big.reason).toBe('AR SIZE 9999999999999999999 is too large: the maximum is 4294967295');
    // 10.80.0.19 - 10.80.0.22 leased as one block, 10.80.0.20 then reserved by an operator
    const block = await runActionProcess(
      'allocate_address',
      toBase64(actionData(arXmlFormB(ar), addressXml({ ip: '10.80.0.19', size: 4 }))),
      env,
    );
    expect(block.exitCode).toBe(0);
    await t.db.query(`update pgipam.lease set last_idx = 3 where range_id = $1 and first_idx = 3`, [id]);
    await t.db.query(
      `insert into pgipam.lease (range_id, first_idx, last_idx, kind, note, operator) values ($1, 4, 4, 'reservation', 'router', true), ($1, 5, 6, 'allocation', null, false)`,
      [id],
    );
    const freed = await runActionProcess(
      'free_address',
      toBase64(actionData(arXmlFormB(ar), addressXml({ ip: '10.80.0.19', size: 4 }))),
      env,
    );
    expect(freed.exitCode).toBe(0);
    expect(freed.stderr).toContain(`10.80.0.20 is reserved by an operator (router); the reservation stays`);
    expect(freed.stderr).toContain(`freed 10.80.0.19, 10.80.0.21 - 10.80.0.22 (3 of the 4 addresses from 10.80.0.19) in range ${id}`);
  });
});

describe('the README', () => {
  it('has alert rules Prometheus accepts', () => {
    const readme = fs.readFileSync(path.join(__dirname, '../../README.md'), 'utf8');
    const rules = /```yaml\n(groups:[\s\S]*?)```/.exec(readme)![1]!;
    expect(rules).toMatch(/pgipam_pool_prefix_addresses/);
    const file = path.join(tempDir(), 'rules.yml');
    fs.writeFileSync(file, rules);
    const r = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
    if (r.error) {
      console.log('promtool check skipped: apt-get install prometheus');
      return;
    }
    expect([r.status, r.stdout]).toEqual([0, expect.stringMatching(/SUCCESS: 2 rules found/)]);
  });
});
