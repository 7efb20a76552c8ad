// What pg and the network throw, as one clear IpamError with a line for the person who reads it
// (the schema's constraint names, SQLSTATEs, Node's network and TLS errors). db/client.ts uses it
// for every connection and statement.
import type { Config } from '../config';
import { describeTarget } from '../connection-target';
import { IpamError, type IpamErrorCode, isIpamError } from '../errors';

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
  const where = config ? ` at ${describeTarget(config.target)} (from ${config.source})` : '';
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
