// Forward-only schema migrations. Each numbered file runs in its own transaction together with the
// row that records it, under one advisory lock, so running migrate twice, or from two front-ends
// at once, applies every file exactly once.
import type pg from 'pg';
import { IpamError } from '../errors';
import { MIGRATIONS } from './migrations.generated';

export const SCHEMA_VERSION = MIGRATIONS.length;
// Arbitrary constant: the advisory lock key that serialises migrations across hosts.
const MIGRATE_LOCK_KEY = 7_046_355_001;

export interface MigrateResult {
  from: number;
  to: number;
  applied: string[];
}

async function currentVersion(db: pg.Client): Promise<number> {
  // One round trip in the normal case; a missing schema or table means version 0.
  try {
    const { rows } = await db.query<{ v: number | null }>('select max(id)::int as v from pgipam.migration');
    return rows[0]?.v ?? 0;
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === '42P01' || code === '3F000') return 0;
    throw e;
  }
}

export async function migrate(db: pg.Client, options: { dryRun?: boolean } = {}): Promise<MigrateResult> {
  await db.query('select pg_catalog.pg_advisory_lock($1::int8)', [MIGRATE_LOCK_KEY]);
  try {
    const from = await currentVersion(db);
    if (from > SCHEMA_VERSION) {
      throw new IpamError(
        'DB_SCHEMA',
        `the database schema is at version ${from}, newer than this pgipam (${SCHEMA_VERSION}): upgrade pgipam`,
      );
    }
    const pending = MIGRATIONS.filter((m) => m.id > from);
    if (options.dryRun) return { from, to: from, applied: pending.map((m) => `${m.id} ${m.name}`) };
    for (const m of pending) {
      await db.query('begin');
      try {
        // Connections pin search_path to pg_catalog, pgipam (see db/client.ts); DDL runs with
        // PostgreSQL's default instead, so that objects without a schema (the btree_gist
        // extension) land where they always have. pg_catalog is still searched first.
        await db.query(`set local search_path = "$user", public`);
        await db.query('create schema if not exists pgipam');
        await db.query(`create table if not exists pgipam.migration (
          id integer primary key, name text not null, applied_at timestamptz not null default now())`);
        await db.query('insert into pgipam.migration (id, name) values ($1, $2)', [m.id, m.name]);
        await db.query(m.sql);
        await db.query('commit');
      } catch (e) {
        await db.query('rollback').catch(() => {});
        const msg = (e as Error).message;
        throw new IpamError('DB_SCHEMA', `migration ${m.id} (${m.name}) failed and was rolled back: ${msg}`, { cause: e });
      }
    }
    return { from, to: SCHEMA_VERSION, applied: pending.map((m) => `${m.id} ${m.name}`) };
  } finally {
    await db.query('select pg_catalog.pg_advisory_unlock($1::int8)', [MIGRATE_LOCK_KEY]).catch(() => {});
  }
}

export function pendingSql(fromVersion: number): string {
  return MIGRATIONS.filter((m) => m.id > fromVersion)
    .map((m) => `-- migration ${m.id} ${m.name}\n${m.sql}`)
    .join('\n');
}

export async function schemaVersion(db: pg.Client): Promise<number> {
  return currentVersion(db);
}

// Every connection of an action or a command calls this once, in one round trip: a missing or old
// schema gets a line that says what to run, and the result is the platform the session acts for:
// the one whose role the session logged in as, else the configured one (which must be known).
export async function checkSchemaAndPlatform(db: pg.Client, configPlatform = 'default'): Promise<string> {
  let v: number;
  let sessionPlatform: string | null = null;
  let known = true;
  try {
    const { rows } = await db.query<{ v: number | null; platform: string; known: boolean }>(
      `select (select max(id)::int from pgipam.migration) as v, pgipam.current_platform() as platform,
              exists (select 1 from pgipam.platform where name = $1) as known`,
      [configPlatform],
    );
    v = rows[0]?.v ?? 0;
    sessionPlatform = rows[0]!.platform;
    known = rows[0]!.known;
  } catch (e) {
    const code = (e as { code?: string }).code;
    // 42883/42P01: a schema from before platforms existed; fall back to the version alone.
    if (code !== '42883' && code !== '42P01' && code !== '3F000') throw e;
    v = await currentVersion(db);
  }
  if (v === 0) throw new IpamError('DB_SCHEMA', 'the database has no pgipam schema: run "pgipam migrate"');
  if (v < SCHEMA_VERSION)
    throw new IpamError('DB_SCHEMA', `the database schema is at version ${v}, this pgipam needs ${SCHEMA_VERSION}: run "pgipam migrate"`);
  if (v > SCHEMA_VERSION)
    throw new IpamError(
      'DB_SCHEMA',
      `the database schema is at version ${v}, newer than this pgipam (${SCHEMA_VERSION}): upgrade the pgipam driver`,
    );
  if (sessionPlatform && sessionPlatform !== 'default') {
    if (configPlatform !== 'default' && configPlatform !== sessionPlatform) {
      throw new IpamError(
        'BAD_CONFIG',
        `the config names platform "${configPlatform}" but the database role belongs to platform "${sessionPlatform}"`,
      );
    }
    return sessionPlatform;
  }
  if (!known)
    throw new IpamError(
      'BAD_CONFIG',
      `platform "${configPlatform}" is not known to the database: add it with "pgipam platform add ${configPlatform}"`,
    );
  return configPlatform;
}
