// Forward-only schema migrations. Each numbered file runs in its own transaction together with the
// row that records it, under one advisory lock, so running migrate twice, or from two front-ends
// at once, applies every file exactly once.
import type pg from 'pg';
import { IpamError, isIpamError } from '../errors';
import { MIGRATIONS } from './migrations.generated';

export const SCHEMA_VERSION = MIGRATIONS.length;

// Every table and function of the pgipam schema at SCHEMA_VERSION: a database that misses one was
// damaged (a partial restore, a DROP by hand), and no migration will bring it back. Add what a
// new migration creates; test/db/migrate.test.ts fails when this list and the schema disagree.
export const SCHEMA_TABLES = [
  'address_range',
  'free_extent',
  'history',
  'lease',
  'migration',
  'platform',
  'pool',
  'pool_allocation',
  'pool_free_block',
  'pool_grant',
  'pool_prefix',
  'pool_reservation',
  'reconcile_run',
  'refusal',
  'space',
  'vlan_allocation',
  'vlan_free_extent',
  'vlan_pool',
  'vlan_pool_grant',
  'vlan_pool_span',
].map((t) => `pgipam.${t}`);
export const SCHEMA_FUNCTIONS = [
  'current_platform',
  'pool_allowed',
  'range_owned',
  'is_operator',
  'pool_covering',
  'pool_check_use',
  'pool_take_block',
  'pool_take_span',
  'pool_assign',
  'pool_give_back',
  'pool_release_range',
  'range_reserve_pool_reservations',
  'vlan_pool_allowed',
  'vlan_take',
  'vlan_release_range',
].map((f) => `pgipam.${f}`);

// What of the schema is missing, in one query (empty: nothing).
export async function missingSchemaObjects(db: pg.Client): Promise<string[]> {
  const { rows } = await db.query<{ missing: string[] }>(
    `select coalesce((select array_agg(t) from unnest($1::text[]) t where pg_catalog.to_regclass(t) is null), '{}')
         || coalesce((select array_agg(f || '()') from unnest($2::text[]) f where pg_catalog.to_regproc(f) is null), '{}') as missing`,
    [SCHEMA_TABLES, SCHEMA_FUNCTIONS],
  );
  return rows[0]!.missing;
}

function damaged(version: number, missing: string[]): IpamError {
  return new IpamError(
    'DB_SCHEMA',
    `the pgipam schema is damaged: it says version ${version} but ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ` and ${missing.length - 5} more` : ''} ${missing.length === 1 ? 'is' : 'are'} missing (a partial restore, or dropped by hand); "pgipam migrate" cannot repair that: restore the database from a backup`,
  );
}
// Arbitrary constant: the advisory lock key that serialises migrations across hosts.
const MIGRATE_LOCK_KEY = 7_046_355_001;

export interface MigrateResult {
  from: number;
  to: number;
  applied: string[];
}

async function currentVersion(db: pg.Client, inTransaction = false): Promise<number> {
  // One round trip in the normal case; a missing schema or table means version 0 (inside a
  // transaction asked without an error, which would abort it).
  if (inTransaction) {
    const { rows } = await db.query<{ exists: boolean }>(`select pg_catalog.to_regclass('pgipam.migration') is not null as exists`);
    if (!rows[0]!.exists) return 0;
    const v = await db.query<{ v: number | null }>('select max(id)::int as v from pgipam.migration');
    return v.rows[0]?.v ?? 0;
  }
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
  const from = await currentVersion(db);
  if (from > SCHEMA_VERSION) {
    throw new IpamError(
      'DB_SCHEMA',
      `the database schema is at version ${from}, newer than this pgipam (${SCHEMA_VERSION}): upgrade pgipam`,
    );
  }
  if (options.dryRun) return { from, to: from, applied: MIGRATIONS.filter((m) => m.id > from).map((m) => `${m.id} ${m.name}`) };
  // All pending migrations in one transaction, under a transaction-scoped advisory lock (a
  // session lock would outlive its statement on a pooled connection), the version read under it:
  // run from two hosts at once, one applies everything and the other nothing; a failure rolls
  // all of it back.
  const applied: string[] = [];
  await db.query('begin');
  let current: (typeof MIGRATIONS)[number] | undefined;
  try {
    // Connections pin search_path to pg_catalog, pgipam (see db/client.ts); DDL runs with
    // PostgreSQL's default instead, so that objects without a schema (the btree_gist extension)
    // land where they always have. pg_catalog is still searched first.
    await db.query(`set local search_path = "$user", public`);
    await db.query('select pg_catalog.pg_advisory_xact_lock($1::int8)', [MIGRATE_LOCK_KEY]);
    const at = await currentVersion(db, true);
    for (const m of MIGRATIONS.filter((x) => x.id > at)) {
      current = m;
      await db.query('create schema if not exists pgipam');
      await db.query(`create table if not exists pgipam.migration (
        id integer primary key, name text not null, applied_at timestamptz not null default now())`);
      await db.query('insert into pgipam.migration (id, name) values ($1, $2)', [m.id, m.name]);
      await db.query(m.sql);
      applied.push(`${m.id} ${m.name}`);
    }
    await db.query('commit');
  } catch (e) {
    await db.query('rollback').catch(() => {});
    if (isIpamError(e)) throw e;
    const msg = (e as Error).message;
    throw new IpamError('DB_SCHEMA', `migration ${current?.id} (${current?.name}) failed and was rolled back: ${msg}`, { cause: e });
  }
  // A schema at the current version that misses a table is not "up to date".
  const missing = await missingSchemaObjects(db);
  if (missing.length) throw damaged(SCHEMA_VERSION, missing);
  return { from: applied.length ? Number(applied[0]!.split(' ')[0]) - 1 : from, to: SCHEMA_VERSION, applied };
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
    const { rows } = await db.query<{ v: number | null; platform: string; known: boolean; missing: string[] }>(
      `select (select max(id)::int from pgipam.migration) as v, pgipam.current_platform() as platform,
              exists (select 1 from pgipam.platform where name = $1) as known,
              coalesce((select array_agg(t) from unnest($2::text[]) t where pg_catalog.to_regclass(t) is null), '{}') as missing`,
      [configPlatform, SCHEMA_TABLES],
    );
    v = rows[0]?.v ?? 0;
    sessionPlatform = rows[0]!.platform;
    known = rows[0]!.known;
    if (v === SCHEMA_VERSION && rows[0]!.missing.length) throw damaged(v, rows[0]!.missing);
  } catch (e) {
    const code = (e as { code?: string }).code;
    // 42883/42P01: a schema from before platforms existed (then migrate), or one that lost a
    // table or function it had (then it is damaged).
    if (code !== '42883' && code !== '42P01' && code !== '3F000') throw e;
    v = await currentVersion(db);
    if (v >= 2) {
      const missing = await missingSchemaObjects(db);
      if (missing.length) throw damaged(v, missing);
    }
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
