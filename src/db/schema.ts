// What the code expects of the database's schema, apart from the migrations that build it (an
// action process checks the schema on every connection but never migrates: it does not load the
// migrations' SQL, about 50 KB of its bundle otherwise).
import type pg from 'pg';
import { IpamError } from '../errors';
import { SCHEMA_VERSION } from './schema-version.generated';

export { SCHEMA_VERSION };

// Every table and function of the pgipam schema at SCHEMA_VERSION: a database that misses one was
// damaged (a partial restore, a DROP by hand), and no migration will bring it back. Add what a
// new migration creates; test/db/migrate.test.ts fails when this list and the schema disagree.
export const SCHEMA_TABLES = [
  'address_range',
  'api_token',
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
  'webhook',
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
  'free_extent_give',
  'free_extent_take',
  'release_expired_holds',
  'one_trip_decline',
  'one_trip_range',
  'one_trip_index',
  'one_trip_get_address',
  'one_trip_allocate_address',
  'one_trip_free_address',
  'history_notify',
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

export function damaged(version: number, missing: string[]): IpamError {
  return new IpamError(
    'DB_SCHEMA',
    `the pgipam schema is damaged: it says version ${version} but ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ` and ${missing.length - 5} more` : ''} ${missing.length === 1 ? 'is' : 'are'} missing (a partial restore, or dropped by hand); "pgipam migrate" cannot repair that: restore the database from a backup`,
  );
}
export async function currentVersion(db: pg.Client, inTransaction = false): Promise<number> {
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
