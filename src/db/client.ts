// The one module that opens database connections and runs transactions. Every action process uses
// one short-lived Client (a pool buys nothing for a process that makes one transaction) with
// timeouts set at connect time, so no statement, lock wait or dead server can hold oned's serial
// IPAM queue for long.
import pg from 'pg';
import type { Config } from '../config';
import { IpamError } from '../errors';
import { checkSchemaAndPlatform } from './schema';
import { type HostPort, type SessionAttrs, attemptsFor, tlsOptions } from '../connection-target';
import { translateDbError } from './db-errors';

export { translateDbError };

export type Db = pg.Client & {
  pgipamPlatform?: string;
  pgipamConfig?: Config;
  // behind a transaction pooler (PgBouncer): no session settings; each transaction sets its own
  pgipamPooled?: boolean;
};

// Set while a COMMIT is on its way: a process that dies then cannot know whether it committed.
let commitInFlight = false;
export const isCommitInFlight = () => commitInFlight;

export interface ConnectOptions {
  applicationName: string;
  // Skip the schema version check (the migrate command itself).
  skipSchemaCheck?: boolean;
}

const SEARCH_PATH_OPTION = '-c search_path=pg_catalog,pgipam';

// One connection attempt at one host, and what the server said about itself at start-up.
interface Attempt {
  client: pg.Client;
  status: Record<string, string>;
}

// A transaction pooler (PgBouncer) refuses the startup settings a PostgreSQL server takes
// (timeouts, search_path); a connection to it is made without them, and every transaction then
// sets them itself (withTransaction), where they hold whichever server connection it is given.
const POOLER_REFUSAL = /unsupported startup parameter/i;

async function connectHost(
  config: Config,
  hp: HostPort,
  tls: 'tls' | 'plain',
  timeoutMs: number,
  applicationName: string,
  timeouts: boolean,
): Promise<Attempt> {
  // a pooler by configuration: one connection, without the settings it would refuse
  if (config.pooler === 'transaction') return connectHostOnce(config, hp, { tls, timeoutMs, applicationName, timeouts, pooled: true });
  try {
    return await connectHostOnce(config, hp, { tls, timeoutMs, applicationName, timeouts, pooled: false });
  } catch (e) {
    if (config.pooler === 'none' || !POOLER_REFUSAL.test((e as Error).message ?? '')) throw e;
    return connectHostOnce(config, hp, { tls, timeoutMs, applicationName, timeouts, pooled: true });
  }
}

interface AttemptOptions {
  tls: 'tls' | 'plain';
  timeoutMs: number;
  applicationName: string;
  timeouts: boolean;
  pooled: boolean;
}

async function connectHostOnce(config: Config, hp: HostPort, o: AttemptOptions): Promise<Attempt> {
  const { tls, timeoutMs, applicationName, timeouts, pooled } = o;
  const t = config.target;
  const client = new pg.Client({
    host: hp.host,
    port: hp.port,
    user: t.user,
    password: t.password,
    database: t.database,
    ssl: tlsOptions(t, hp.host, tls),
    connectionTimeoutMillis: timeoutMs,
    ...(timeouts && !pooled
      ? {
          statement_timeout: config.statementTimeoutMs,
          lock_timeout: config.lockTimeoutMs,
          idle_in_transaction_session_timeout: config.statementTimeoutMs * 2,
        }
      : {}),
    ...(timeouts ? { query_timeout: config.statementTimeoutMs + 1000 } : {}),
    application_name: applicationName,
    keepAlive: true,
    // Names resolve in pg_catalog and pgipam only, never in a schema others can write to (a
    // function planted in "public" would otherwise run with this session's rights). Behind a
    // pooler the database's own default does it (migration 7) and each transaction again.
    ...(pooled ? {} : { options: SEARCH_PATH_OPTION }),
  });
  if (pooled) (client as Db).pgipamPooled = true;
  // Without a listener an 'error' event (server restart mid-action) would crash the process with a trace.
  client.on('error', () => {});
  const status: Record<string, string> = {};
  (client as unknown as { connection: NodeJS.EventEmitter }).connection.on(
    'parameterStatus',
    (m: { parameterName: string; parameterValue: string }) => {
      status[m.parameterName] = m.parameterValue;
    },
  );
  try {
    await client.connect();
  } catch (e) {
    await client.end().catch(() => {});
    throw e;
  }
  return { client, status };
}

// Whether the session is what target_session_attrs asks for, as libpq decides it: from
// in_hot_standby and default_transaction_read_only reported at start-up (PostgreSQL 14 and
// newer), else by asking the server. Returns why not, or null.
async function sessionMismatch(a: Attempt, wanted: SessionAttrs): Promise<string | null> {
  if (wanted === 'any') return null;
  let standby = a.status.in_hot_standby === undefined ? undefined : a.status.in_hot_standby === 'on';
  let readOnly =
    a.status.default_transaction_read_only === undefined ? undefined : a.status.default_transaction_read_only === 'on' || standby === true;
  if (standby === undefined || readOnly === undefined) {
    const { rows } = await a.client.query<{ recovery: boolean; ro: string }>(
      `select pg_catalog.pg_is_in_recovery() as recovery, pg_catalog.current_setting('transaction_read_only') as ro`,
    );
    standby = rows[0]!.recovery;
    readOnly = rows[0]!.ro === 'on' || standby;
  }
  switch (wanted) {
    case 'read-write':
      return readOnly ? (standby ? 'a standby (in recovery)' : 'read-only (default_transaction_read_only = on)') : null;
    case 'read-only':
      return readOnly ? null : 'read-write';
    case 'primary':
      return standby ? 'a standby (in recovery)' : null;
    case 'standby':
    case 'prefer-standby':
      return standby ? null : 'not a standby';
  }
}

// Connects to the first host, in order, that answers and is what target_session_attrs asks for
// (prefer-standby: a standby, else any), giving each host its share of connect_timeout_ms;
// sslmode prefer and allow try TLS and plain (in libpq's order). An error names every host tried
// and why each was skipped, never the password.
async function connectTarget(config: Config, applicationName: string, timeouts = true): Promise<pg.Client> {
  const t = config.target;
  const share = Math.max(500, Math.floor(config.connectTimeoutMs / t.hosts.length));
  const passes: SessionAttrs[] = t.sessionAttrs === 'prefer-standby' ? ['standby', 'any'] : [t.sessionAttrs];
  const tried: string[] = [];
  let last: unknown;
  for (const wanted of passes) {
    for (const hp of t.hosts) {
      const r = await tryHost(config, hp, wanted, share, applicationName, timeouts);
      if ('client' in r) return r.client;
      last = r.error ?? last;
      tried.push(`${hp.host.includes(':') ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`}: ${r.reason}`);
    }
  }
  if (t.hosts.length === 1 && t.sessionAttrs === 'any') throw translateDbError(last, config);
  throw new IpamError(
    'DB_UNAVAILABLE',
    `no usable PostgreSQL (target_session_attrs=${t.sessionAttrs}, from ${config.source}): ${tried.join('; ')}`,
    { cause: last },
  );
}

// One host: its TLS attempts in libpq's order (prefer: a server without TLS gets the plain
// attempt; allow: a server that insists on TLS gets the TLS one), then the session check.
async function tryHost(
  config: Config,
  hp: HostPort,
  wanted: SessionAttrs,
  timeoutMs: number,
  applicationName: string,
  timeouts: boolean,
): Promise<{ client: pg.Client } | { reason: string; error?: unknown }> {
  const mode = config.target.sslMode;
  let error: unknown;
  for (const tls of attemptsFor(config.target)) {
    let a: Attempt;
    try {
      a = await connectHost(config, hp, tls, timeoutMs, applicationName, timeouts);
    } catch (e) {
      error = e;
      const retry =
        (tls === 'tls' && mode === 'prefer' && /does not support SSL/i.test((e as Error).message)) ||
        (tls === 'plain' && mode === 'allow' && (e as { code?: string }).code === '28000');
      if (retry) continue;
      return { reason: translateDbError(e).message, error: e };
    }
    const why = await sessionMismatch(a, wanted).catch((e: unknown) => `${(e as Error).message}`);
    if (why === null) return { client: a.client };
    await a.client.end().catch(() => {});
    return { reason: `skipped, ${why}` };
  }
  return { reason: translateDbError(error).message, error };
}

export async function connect(config: Config, options: ConnectOptions): Promise<Db> {
  const client = (await connectTarget(config, options.applicationName)) as Db;
  try {
    client.pgipamConfig = config;
    if (!options.skipSchemaCheck) client.pgipamPlatform = await checkSchemaAndPlatform(client, config.platform);
  } catch (e) {
    await client.end().catch(() => {});
    throw translateDbError(e, config);
  }
  return client;
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
//
// A transaction id means something only on the server history that assigned it: a standby
// promoted after the primary died starts a new WAL timeline and hands out the same ids again (the
// failover test found a lease reported as given that way, and given twice). So BEGIN also notes
// the timeline, and the fate is asked only of a server on that timeline (the same primary, back
// from a crash); on any other the outcome stays unknown, and the action says so.
export async function withTransaction<T>(db: Db, fn: (db: Db) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const begun = (await db.query(
      `begin; ${db.pgipamPooled && db.pgipamConfig ? pooledSettings(db.pgipamConfig) : ''}select pg_catalog.pg_current_xact_id()::text as xid, ${TIMELINE} as timeline`,
    )) as unknown as pg.QueryResult<{
      xid: string;
      timeline: string;
    }>[];
    const { xid, timeline } = begun[begun.length - 1]!.rows[0]!;
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
      const fate = db.pgipamConfig ? await transactionFate(db.pgipamConfig, xid, timeline) : 'unknown';
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

// Runs one statement on its own (it commits by itself) that may safely run again: a one-trip
// action function of migration 11, which records its token and, asked again with `retry`, returns
// what the first run committed or does the work if it did not. When the connection is lost before
// the reply arrives, the outcome is unknown to us; instead of guessing, the statement runs again
// on a fresh connection (to whichever server target_session_attrs finds: on a promoted standby,
// the token says whether the first run's commit was replicated) until shortly before the action's
// deadline. Every other error is the caller's.
export async function queryRetryingOnLoss<R extends pg.QueryResultRow>(
  db: Db,
  statement: (retry: boolean) => { text: string; values?: unknown[] },
): Promise<pg.QueryResult<R>> {
  // a simple query of several statements answers with a result each: the last is the call's
  const last = (r: pg.QueryResult<R> | pg.QueryResult<R>[]) => (Array.isArray(r) ? r[r.length - 1]! : r);
  commitInFlight = true;
  try {
    try {
      const first = statement(false);
      return last(await db.query<R>(first.text, first.values));
    } catch (e) {
      if (!connectionLost(e) || !db.pgipamConfig) throw e;
      return last(await runAgain<R>(db.pgipamConfig, statement(true), e));
    }
  } finally {
    commitInFlight = false;
  }
}

// What says the reply may never come: the connection broke, the server went away or is going.
function connectionLost(e: unknown): boolean {
  const code = (e as { code?: string }).code;
  if (code) return /^(08|57P)/.test(code) || /^E[A-Z]+$/.test(code);
  return /Connection terminated|Client has encountered a connection error|Query read timeout/i.test((e as Error)?.message ?? '');
}

async function runAgain<R extends pg.QueryResultRow>(
  config: Config,
  statement: { text: string; values?: unknown[] },
  first: unknown,
): Promise<pg.QueryResult<R> | pg.QueryResult<R>[]> {
  const deadline = Date.now() + Math.max(1000, config.actionTimeoutMs - 2000);
  while (Date.now() < deadline) {
    let client: pg.Client | undefined;
    try {
      const timeLeft = Math.min(config.connectTimeoutMs, Math.max(500, deadline - Date.now()));
      client = await connectTarget({ ...config, connectTimeoutMs: timeLeft }, 'pgipam/commit-check');
      return await client.query<R>(statement.text, statement.values);
    } catch (e) {
      // asked again and refused (the range went meanwhile, or the one-trip path declines what
      // the transactional path would have to decide): the first run did not commit
      if (client && (e as { code?: string }).code === 'PI100')
        throw new IpamError('DB_UNAVAILABLE', 'lost the connection to PostgreSQL during the action; nothing was committed', {
          cause: first,
        });
      if (client && !connectionLost(e)) throw e;
    } finally {
      await client?.end().catch(() => {});
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new IpamError(
    'DB_UNAVAILABLE',
    'lost the connection to PostgreSQL while the action was on its way, and could not ask again in time: the outcome is unknown (see "pgipam history")',
    { cause: first },
  );
}

// What a pooled connection's transaction sets for itself, in the same round trip as BEGIN (or as
// the one-trip call, allocator/one-trip.ts).
export function pooledSettings(c: Config): string {
  return (
    `set local statement_timeout = ${c.statementTimeoutMs}; set local lock_timeout = ${c.lockTimeoutMs}; ` +
    `set local idle_in_transaction_session_timeout = ${c.statementTimeoutMs * 2}; set local search_path = pg_catalog, pgipam; `
  );
}

// The primary's current WAL timeline (the first 8 hex digits of its WAL file name).
const TIMELINE = 'substr(pg_catalog.pg_walfile_name(pg_catalog.pg_current_wal_lsn()), 1, 8)';

// Asks a fresh connection whether transaction xid committed, until shortly before the action's deadline.
async function transactionFate(config: Config, xid: string, timeline: string): Promise<'committed' | 'aborted' | 'unknown'> {
  // The action's watchdog (action_timeout_ms) bounds the whole process; stop asking a bit before it.
  const deadline = Date.now() + Math.max(1000, config.actionTimeoutMs - 2000);
  while (Date.now() < deadline) {
    let client: pg.Client | undefined;
    try {
      const timeLeft = Math.min(config.connectTimeoutMs, Math.max(500, deadline - Date.now()));
      client = await connectTarget({ ...config, connectTimeoutMs: timeLeft }, 'pgipam/commit-check', false);
      const { rows } = await client.query<{ s: string | null; timeline: string }>(
        `select pg_catalog.pg_xact_status($1::xid8) as s, ${TIMELINE} as timeline`,
        [xid],
      );
      if (rows[0]?.timeline !== timeline) return 'unknown';
      const s = rows[0]?.s;
      if (s === 'committed') return 'committed';
      if (s === 'aborted') return 'aborted';
      if (s === null) return 'unknown';
      // 'in progress': the old backend has not finished dying yet
    } catch {
      // server still down or restarting: try again
    } finally {
      await client?.end().catch(() => {});
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return 'unknown';
}
