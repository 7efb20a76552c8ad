// Forward-only schema migrations. Each numbered file runs in its own transaction together with the
// row that records it, under one advisory lock, so running migrate twice, or from two front-ends
// at once, applies every file exactly once.
import type pg from 'pg';
import { IpamError, isIpamError } from '../errors';
import { MIGRATIONS } from './migrations.generated';
import { SCHEMA_VERSION, currentVersion, damaged, missingSchemaObjects } from './schema';

export { SCHEMA_VERSION, checkSchemaAndPlatform, missingSchemaObjects, schemaVersion } from './schema';

// Arbitrary constant: the advisory lock key that serialises migrations across hosts.
const MIGRATE_LOCK_KEY = 7_046_355_001;

export interface MigrateResult {
  from: number;
  to: number;
  applied: string[];
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
