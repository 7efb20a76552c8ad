// The one module that opens database connections and runs transactions. Every action process uses
// one short-lived Client (a pool buys nothing for a process that makes one transaction) with
// timeouts set at connect time, so no statement, lock wait or dead server can hold oned's serial
// IPAM queue for long.
import pg from 'pg';
import type { Config } from '../config';
import { IpamError, type IpamErrorCode, isIpamError } from '../errors';
import { checkSchemaAndPlatform } from './migrate';
import { type HostPort, type SessionAttrs, attemptsFor, describeTarget, tlsOptions } from '../connection-target';

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

// Says where we tried to connect without ever printing a password.
function target(config: Config): string {
  return describeTarget(config.target);
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

// Node's TLS errors that mean "the certificate is not one we trust".
const TLS_CERTIFICATE_ERRORS = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_SIGNATURE_FAILURE',
]);

// Maps what pg and the network throw into one clear IpamError.
// What an error code (a SQLSTATE, or a Node network error) means, as a line: (where, message) => line.
type Line = (where: string, msg: string) => string;
const BY_CODE: Record<string, [IpamErrorCode, Line]> = {
  '25006': [
    'DB_UNAVAILABLE',
    (w) =>
      `PostgreSQL${w} is read-only (a standby, or a primary demoted under this action); nothing was changed: list every server in the database URL with target_session_attrs=read-write so that pgipam finds the primary`,
  ],
  // raised by pgipam's own database functions (migration 4), with a message meant for people
  PI001: ['ADDRESS_IN_USE', (_w, m) => m],
  PI002: ['PERMISSION_DENIED', (_w, m) => m],
  // migration 9: no free VLAN ID in a VLAN pool, a VLAN ID taken in its domain
  PI003: ['NO_FREE_ADDRESS', (_w, m) => m],
  PI004: ['ADDRESS_IN_USE', (_w, m) => m],
  ECONNREFUSED: ['DB_UNAVAILABLE', (w) => `cannot reach PostgreSQL${w}: connection refused`],
  ENOTFOUND: ['DB_UNAVAILABLE', (w) => `cannot reach PostgreSQL${w}: host name does not resolve`],
  EAI_AGAIN: ['DB_UNAVAILABLE', (w) => `cannot reach PostgreSQL${w}: host name does not resolve`],
  '28P01': ['DB_UNAVAILABLE', (w) => `PostgreSQL refused the login${w}: wrong password or user`],
  '28000': ['DB_UNAVAILABLE', (w, m) => `PostgreSQL refused the login${w}: ${m}`],
  '3D000': ['DB_UNAVAILABLE', (w) => `the database${w} does not exist: create it, or fix the database name`],
  '3F000': ['DB_SCHEMA', (w) => `the database${w} has no pgipam schema: run "pgipam migrate"`],
  '42P01': ['DB_SCHEMA', (w) => `the database${w} has no pgipam schema: run "pgipam migrate"`],
  '57014': ['DB_TIMEOUT', () => 'a database statement took longer than statement_timeout_ms and was cancelled'],
  '55P03': [
    'DB_TIMEOUT',
    () =>
      'waited longer than lock_timeout_ms for a lock another session holds (an action, a pgipam command or a psql session: see pg_locks)',
  ],
  '53300': ['DB_UNAVAILABLE', (w) => `PostgreSQL${w} has too many connections`],
  '42501': ['PERMISSION_DENIED', (_w, m) => `the database role may not do this: ${m}`],
};
for (const code of ['ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'EPIPE']) {
  BY_CODE[code] = ['DB_UNAVAILABLE', (w) => `lost or could not open the connection to PostgreSQL${w}: ${code}`];
}
for (const code of ['57P01', '57P02', '57P03'])
  BY_CODE[code] = ['DB_UNAVAILABLE', (w, m) => `PostgreSQL${w} is shutting down or starting up: ${m}`];

// What node-postgres says in words only (no code).
const BY_MESSAGE: Array<[RegExp, IpamErrorCode, Line]> = [
  // BEGIN reads the WAL timeline, which a standby refuses: the same case as 25006
  [/recovery is in progress/i, 'DB_UNAVAILABLE', BY_CODE['25006']![1]],
  [
    /timeout expired|Connection terminated due to connection timeout/i,
    'DB_UNAVAILABLE',
    (w) => `cannot reach PostgreSQL${w}: no answer within connect_timeout_ms`,
  ],
  [/Connection terminated|Client has encountered a connection error/i, 'DB_UNAVAILABLE', (w) => `lost the connection to PostgreSQL${w}`],
  [
    /SASL|password must be a string|client password/i,
    'DB_UNAVAILABLE',
    (w) => `PostgreSQL asked for a password${w} and none was configured`,
  ],
];

// TLS: a server without it, and certificates that are not trusted.
function tlsLine(err: { code?: string }, msg: string, where: string, config?: Config): string | null {
  if (/does not support SSL connections/i.test(msg)) {
    return `PostgreSQL${where} does not accept TLS, but sslmode=${config?.target.sslMode ?? 'require'} asks for it: turn ssl on in the server, or set sslmode=prefer (or disable) in the database URL`;
  }
  if (!err.code || !TLS_CERTIFICATE_ERRORS.has(err.code)) return null;
  const name =
    err.code === 'ERR_TLS_CERT_ALTNAME_INVALID'
      ? '; the host name in the URL must be one the certificate names (sslmode=verify-full checks it)'
      : '';
  return `the TLS certificate of PostgreSQL${where} is not trusted (${err.code}): sslrootcert must be the CA that signed it${name}`;
}

// Maps what pg and the network throw into one clear IpamError.
export function translateDbError(e: unknown, config?: Config): IpamError {
  if (isIpamError(e)) return e;
  const err = (e ?? {}) as { code?: string; message?: string; constraint?: string };
  const where = config ? ` at ${target(config)} (from ${config.source})` : '';
  const msg = err.message ?? String(e);
  const known = err.constraint ? CONSTRAINT_MESSAGES[err.constraint] : undefined;
  if (known) return new IpamError(known[0], known[1], { cause: e });
  const tls = tlsLine(err, msg, where, config);
  if (tls) return new IpamError('DB_UNAVAILABLE', tls, { cause: e });
  const byCode = err.code ? BY_CODE[err.code] : undefined;
  if (byCode) return new IpamError(byCode[0], byCode[1](where, msg), { cause: e });
  if (err.code?.startsWith('08')) return new IpamError('DB_UNAVAILABLE', `connection to PostgreSQL${where} failed: ${msg}`, { cause: e });
  for (const [re, code, line] of BY_MESSAGE) if (re.test(msg)) return new IpamError(code, line(where, msg), { cause: e });
  return new IpamError('INTERNAL', `database error: ${msg}`, { cause: e });
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
  try {
    return await connectHostOnce(config, hp, { tls, timeoutMs, applicationName, timeouts, pooled: false });
  } catch (e) {
    if (!POOLER_REFUSAL.test((e as Error).message ?? '')) throw e;
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

// Asks a fresh connection whether transaction xid committed, until shortly before the action's deadline.
// What a pooled connection's transaction sets for itself, in the same round trip as BEGIN.
function pooledSettings(c: Config): string {
  return (
    `set local statement_timeout = ${c.statementTimeoutMs}; set local lock_timeout = ${c.lockTimeoutMs}; ` +
    `set local idle_in_transaction_session_timeout = ${c.statementTimeoutMs * 2}; set local search_path = pg_catalog, pgipam; `
  );
}

// The primary's current WAL timeline (the first 8 hex digits of its WAL file name).
const TIMELINE = 'substr(pg_catalog.pg_walfile_name(pg_catalog.pg_current_wal_lsn()), 1, 8)';

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
