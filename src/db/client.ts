// The one module that opens database connections and runs transactions. Every action process uses
// one short-lived Client (a pool buys nothing for a process that makes one transaction) with
// timeouts set at connect time, so no statement, lock wait or dead server can hold oned's serial
// IPAM queue for long.
import pg from 'pg';
import type { Config } from '../config';
import { IpamError, type IpamErrorCode, isIpamError } from '../errors';
import { checkSchemaAndPlatform } from './migrate';

export type Db = pg.Client & { pgipamPlatform?: string; pgipamConfig?: Config };

// Set while a COMMIT is on its way: a process that dies then cannot know whether it committed.
let commitInFlight = false;
export const isCommitInFlight = () => commitInFlight;

export interface ConnectOptions {
  applicationName: string;
  // Skip the schema version check (the migrate command itself).
  skipSchemaCheck?: boolean;
}

function target(config: Config): string {
  // Says where we tried to connect without ever printing a password.
  if (config.databaseUrl) {
    try {
      const u = new URL(config.databaseUrl);
      const db = u.pathname.replace(/^\//, '') || u.username || 'postgres';
      return `${u.hostname || 'localhost'}:${u.port || 5432}/${decodeURIComponent(db)}`;
    } catch {
      return config.source;
    }
  }
  const env = process.env;
  return `${env.PGHOST || 'localhost'}:${env.PGPORT || 5432}/${env.PGDATABASE || env.PGUSER || 'postgres'}`;
}

// What a violated constraint means to the person who ran the command (the schema's names).
const CONSTRAINT_MESSAGES: Record<string, [IpamErrorCode, string]> = {
  pool_name_unique: ['CONFLICT', 'a pool of that name already exists'],
  pool_name_format: ['BAD_REQUEST', 'a pool name is letters, digits and _ . : - (up to 63, starting with a letter or digit)'],
  pool_mtu: ['BAD_REQUEST', '--mtu must be between 68 and 65535'],
  pool_vlan: ['BAD_REQUEST', '--vlan must be between 0 and 4095'],
  pool_gateway: ['BAD_REQUEST', '--gateway must be first, last, none, or a host offset'],
  pool_hold: ['BAD_REQUEST', '--hold-seconds must not be negative'],
  pool_one_default: ['CONFLICT', 'another pool is already the default'],
  pool_prefix_no_overlap: ['CONFLICT', 'the prefix overlaps a prefix of another pool in that space'],
  space_name_unique: ['CONFLICT', 'an address space of that name already exists'],
  space_name_format: ['BAD_REQUEST', 'a space name is letters, digits and _ . : - (up to 63, starting with a letter or digit)'],
  platform_pkey: ['CONFLICT', 'a platform of that name already exists'],
  platform_role_name_key: ['CONFLICT', 'that database role already belongs to another platform'],
  platform_name_format: ['BAD_REQUEST', 'a platform name is letters, digits and _ . - (up to 63, starting with a letter or digit)'],
};

// Maps what pg and the network throw into one clear IpamError.
export function translateDbError(e: unknown, config?: Config): IpamError {
  if (isIpamError(e)) return e;
  const err = e as { code?: string; message?: string; constraint?: string };
  const where = config ? ` at ${target(config)} (from ${config.source})` : '';
  const msg = err?.message ?? String(e);
  const known = err?.constraint ? CONSTRAINT_MESSAGES[err.constraint] : undefined;
  if (known) return new IpamError(known[0], known[1], { cause: e });
  switch (err?.code) {
    // raised by pgipam's own database functions (migration 4), with a message meant for people
    case 'PI001':
      return new IpamError('ADDRESS_IN_USE', msg, { cause: e });
    case 'PI002':
      return new IpamError('PERMISSION_DENIED', msg, { cause: e });
    case 'ECONNREFUSED':
      return new IpamError('DB_UNAVAILABLE', `cannot reach PostgreSQL${where}: connection refused`, { cause: e });
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new IpamError('DB_UNAVAILABLE', `cannot reach PostgreSQL${where}: host name does not resolve`, { cause: e });
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'ECONNRESET':
    case 'EPIPE':
      return new IpamError('DB_UNAVAILABLE', `lost or could not open the connection to PostgreSQL${where}: ${err.code}`, { cause: e });
    case '28P01':
      return new IpamError('DB_UNAVAILABLE', `PostgreSQL refused the login${where}: wrong password or user`, { cause: e });
    case '28000':
      return new IpamError('DB_UNAVAILABLE', `PostgreSQL refused the login${where}: ${msg}`, { cause: e });
    case '3D000':
      return new IpamError('DB_UNAVAILABLE', `the database${where} does not exist: create it, or fix the database name`, { cause: e });
    case '3F000':
    case '42P01':
      return new IpamError('DB_SCHEMA', `the database${where} has no pgipam schema: run "pgipam migrate"`, { cause: e });
    case '57014':
      return new IpamError('DB_TIMEOUT', `a database statement took longer than statement_timeout_ms and was cancelled`, { cause: e });
    case '55P03':
      return new IpamError(
        'DB_TIMEOUT',
        `waited longer than lock_timeout_ms for a lock another session holds (an action, a pgipam command or a psql session: see pg_locks)`,
        { cause: e },
      );
    case '57P01':
    case '57P02':
    case '57P03':
      return new IpamError('DB_UNAVAILABLE', `PostgreSQL${where} is shutting down or starting up: ${msg}`, { cause: e });
    case '53300':
      return new IpamError('DB_UNAVAILABLE', `PostgreSQL${where} has too many connections`, { cause: e });
    case '42501':
      return new IpamError('PERMISSION_DENIED', `the database role may not do this: ${msg}`, { cause: e });
  }
  if (err?.code?.startsWith('08')) return new IpamError('DB_UNAVAILABLE', `connection to PostgreSQL${where} failed: ${msg}`, { cause: e });
  if (/timeout expired|Connection terminated due to connection timeout/i.test(msg)) {
    return new IpamError('DB_UNAVAILABLE', `cannot reach PostgreSQL${where}: no answer within connect_timeout_ms`, { cause: e });
  }
  if (/Connection terminated|Client has encountered a connection error|Connection terminated unexpectedly/i.test(msg)) {
    return new IpamError('DB_UNAVAILABLE', `lost the connection to PostgreSQL${where}`, { cause: e });
  }
  if (/SASL|password must be a string|client password/i.test(msg)) {
    return new IpamError('DB_UNAVAILABLE', `PostgreSQL asked for a password${where} and none was configured`, { cause: e });
  }
  return new IpamError('INTERNAL', `database error: ${msg}`, { cause: e });
}

const SEARCH_PATH_OPTION = '-c search_path=pg_catalog,pgipam';

export async function connect(config: Config, options: ConnectOptions): Promise<Db> {
  const client = new pg.Client({
    connectionString: config.databaseUrl,
    connectionTimeoutMillis: config.connectTimeoutMs,
    statement_timeout: config.statementTimeoutMs,
    lock_timeout: config.lockTimeoutMs,
    idle_in_transaction_session_timeout: config.statementTimeoutMs * 2,
    query_timeout: config.statementTimeoutMs + 1000,
    application_name: options.applicationName,
    keepAlive: true,
    // Names resolve in pg_catalog and pgipam only, never in a schema others can write to (a
    // function planted in "public" would otherwise run with this session's rights).
    options: SEARCH_PATH_OPTION,
  });
  // Without a listener an 'error' event (server restart mid-action) would crash the process with a trace.
  client.on('error', () => {});
  try {
    await client.connect();
    (client as Db).pgipamConfig = config;
    if (!options.skipSchemaCheck) (client as Db).pgipamPlatform = await checkSchemaAndPlatform(client, config.platform);
  } catch (e) {
    await client.end().catch(() => {});
    throw translateDbError(e, config);
  }
  return client as Db;
}

export async function withClient<T>(config: Config, options: ConnectOptions, fn: (db: Db) => Promise<T>): Promise<T> {
  const db = await connect(config, options);
  try {
    return await fn(db);
  } catch (e) {
    throw translateDbError(e, config);
  } finally {
    await db.end().catch(() => {});
  }
}

// What is worth retrying the whole transaction for: a deadlock PostgreSQL broke. pgipam's own
// transactions take their locks in one order (allocator/locks.ts), so only someone else's session
// holding rows in another order can cause one; at READ COMMITTED a serialization failure (40001)
// cannot happen. One first attempt and up to MAX_ATTEMPTS - 1 retries.
const RETRYABLE = new Set(['40P01']);
export const MAX_ATTEMPTS = 4;

// Runs fn in one transaction; commits on success, rolls back on any error (the database is then
// exactly as before), and retries only deadlocks, with jittered backoff.
//
// A connection lost while COMMIT is on its way leaves the outcome unknown to the client (the
// server may have committed and lost only the acknowledgement). Instead of guessing, the
// transaction's id is taken at BEGIN and its fate asked of the server afterwards with
// pg_xact_status(), reconnecting until the action's deadline: a committed transaction is then
// reported as the success it was, so oned and the database agree.
export async function withTransaction<T>(db: Db, fn: (db: Db) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const begun = (await db.query('begin; select pg_catalog.pg_current_xact_id()::text as xid')) as unknown as pg.QueryResult<{
      xid: string;
    }>[];
    const xid = begun[1]!.rows[0]!.xid;
    let result: T;
    try {
      result = await fn(db);
    } catch (e) {
      await db.query('rollback').catch(() => {});
      const code = (e as { code?: string }).code;
      if (code && RETRYABLE.has(code) && attempt < MAX_ATTEMPTS) {
        await new Promise((r) => setTimeout(r, 10 * 2 ** attempt + Math.random() * 20 * attempt));
        continue;
      }
      throw e;
    }
    commitInFlight = true;
    try {
      await db.query('commit');
      return result;
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code && RETRYABLE.has(code) && attempt < MAX_ATTEMPTS) continue;
      if (code && !/^(08|57P)/.test(code) && !code.startsWith('E')) throw e;
      const fate = db.pgipamConfig ? await transactionFate(db.pgipamConfig, xid) : 'unknown';
      if (fate === 'committed') return result;
      if (fate === 'aborted') throw e;
      throw new IpamError(
        'DB_UNAVAILABLE',
        `lost the connection to PostgreSQL while committing; the outcome is unknown (transaction ${xid}): see "pgipam history"`,
        { cause: e },
      );
    } finally {
      commitInFlight = false;
    }
  }
}

// Asks a fresh connection whether transaction xid committed, until shortly before the action's deadline.
async function transactionFate(config: Config, xid: string): Promise<'committed' | 'aborted' | 'unknown'> {
  // The action's watchdog (action_timeout_ms) bounds the whole process; stop asking a bit before it.
  const deadline = Date.now() + Math.max(1000, config.actionTimeoutMs - 2000);
  while (Date.now() < deadline) {
    const client = new pg.Client({
      connectionString: config.databaseUrl,
      connectionTimeoutMillis: Math.min(config.connectTimeoutMs, Math.max(500, deadline - Date.now())),
      application_name: 'pgipam/commit-check',
      options: SEARCH_PATH_OPTION,
    });
    client.on('error', () => {});
    try {
      await client.connect();
      const { rows } = await client.query<{ s: string | null }>('select pg_catalog.pg_xact_status($1::xid8) as s', [xid]);
      const s = rows[0]?.s;
      if (s === 'committed') return 'committed';
      if (s === 'aborted') return 'aborted';
      if (s === null) return 'unknown';
      // 'in progress': the old backend has not finished dying yet
    } catch {
      // server still down or restarting: try again
    } finally {
      await client.end().catch(() => {});
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return 'unknown';
}
