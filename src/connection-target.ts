// Where to connect, read from a libpq connection URI (or the PG* variables) the way libpq reads
// it: several hosts (postgres://u@h1:5432,h2:5432/db), target_session_attrs, and sslmode with
// sslrootcert, sslcert and sslkey meaning what libpq documents. node-postgres takes one host and
// reads sslmode=require as verify-full (printing a warning); pgipam hands it one host at a time
// and a TLS configuration built here.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type tls from 'node:tls';
import { IpamError } from './errors';

export const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
export type SslMode = (typeof SSL_MODES)[number];
export const SESSION_ATTRS = ['any', 'read-write', 'read-only', 'primary', 'standby', 'prefer-standby'] as const;
export type SessionAttrs = (typeof SESSION_ATTRS)[number];

export interface HostPort {
  host: string;
  port: number;
}

export interface ConnectionTarget {
  hosts: HostPort[];
  user?: string;
  password?: string;
  database?: string;
  sessionAttrs: SessionAttrs;
  // undefined: no sslmode given (pgipam then does not try TLS, where libpq would try it first)
  sslMode?: SslMode;
  sslRootCert?: string;
  sslCert?: string;
  sslKey?: string;
}

function bad(source: string, what: string): IpamError {
  return new IpamError('BAD_CONFIG', `the database URL from ${source} ${what}`);
}

// host, host:port, [v6], [v6]:port; a host list is split at commas outside brackets.
function parseHosts(text: string, defaultPort: number, source: string): HostPort[] {
  const parts = text.match(/(\[[^\]]*\][^,]*|[^,]+)/g) ?? [];
  if (!parts.length) return [{ host: 'localhost', port: defaultPort }];
  return parts.map((p) => {
    const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]*))(?::(.*))?$/.exec(p);
    if (!m) throw bad(source, `has a host that is not host[:port] or [IPv6]:port: "${p}"`);
    const port = m[3] === undefined || m[3] === '' ? defaultPort : Number(m[3]);
    if (!/^\d{1,5}$/.test(m[3] ?? String(defaultPort)) || port < 1 || port > 65535)
      throw bad(source, `has a port that is not a number from 1 to 65535: "${p}"`);
    return { host: decodeURIComponent(m[1] ?? m[2] ?? '') || 'localhost', port };
  });
}

function choice<T extends string>(value: string | null | undefined, allowed: readonly T[], name: string, source: string): T | undefined {
  if (value === null || value === undefined || value === '') return undefined;
  if (!(allowed as readonly string[]).includes(value)) throw bad(source, `has ${name}=${value}: expected one of ${allowed.join(', ')}`);
  return value as T;
}

export function parseConnectionUrl(url: string, source: string): ConnectionTarget {
  const m = /^postgres(?:ql)?:\/\/(?:([^@/?#]*)@)?([^/?#]*)(?:\/([^?#]*))?(?:\?([^#]*))?(?:#.*)?$/.exec(url);
  if (!m) throw bad(source, 'is not a postgres://user:password@host:port/database URL');
  let user: string | undefined;
  let password: string | undefined;
  if (m[1] !== undefined) {
    const i = m[1].indexOf(':');
    try {
      user = decodeURIComponent(i < 0 ? m[1] : m[1].slice(0, i)) || undefined;
      password = i < 0 ? undefined : decodeURIComponent(m[1].slice(i + 1));
    } catch {
      throw bad(source, 'has a user or password that is not percent-encoded properly');
    }
  }
  const params = new URLSearchParams(m[4] ?? '');
  const port = params.get('port');
  const defaultPort = port && /^\d{1,5}$/.test(port) ? Number(port) : 5432;
  // ?host= names the hosts (or a Unix socket directory) when the authority has none
  const hosts = parseHosts(m[2] || params.get('host') || '', defaultPort, source);
  return {
    hosts,
    user: params.get('user') ?? user,
    password: params.get('password') ?? password,
    database: decodeURIComponent(m[3] ?? '') || params.get('dbname') || undefined,
    sessionAttrs: choice(params.get('target_session_attrs'), SESSION_ATTRS, 'target_session_attrs', source) ?? 'any',
    sslMode: choice(params.get('sslmode'), SSL_MODES, 'sslmode', source),
    sslRootCert: params.get('sslrootcert') ?? undefined,
    sslCert: params.get('sslcert') ?? undefined,
    sslKey: params.get('sslkey') ?? undefined,
  };
}

// libpq's PG* variables, as pgipam reads them when no URL is configured.
export function targetFromEnvironment(env: NodeJS.ProcessEnv): ConnectionTarget {
  const source = 'the PG* environment variables';
  const ports = (env.PGPORT ?? '').split(',');
  const hosts = (env.PGHOST || 'localhost').split(',').map((h, i) => ({ host: h, port: Number(ports[i] || ports[0] || 5432) }));
  if (hosts.some((h) => !Number.isInteger(h.port) || h.port < 1 || h.port > 65535))
    throw new IpamError('BAD_CONFIG', `PGPORT "${env.PGPORT}" is not a port number`);
  return {
    hosts,
    user: env.PGUSER,
    password: env.PGPASSWORD,
    database: env.PGDATABASE,
    sessionAttrs: choice(env.PGTARGETSESSIONATTRS, SESSION_ATTRS, 'PGTARGETSESSIONATTRS', source) ?? 'any',
    sslMode: choice(env.PGSSLMODE, SSL_MODES, 'PGSSLMODE', source),
    sslRootCert: env.PGSSLROOTCERT,
    sslCert: env.PGSSLCERT,
    sslKey: env.PGSSLKEY,
  };
}

// What node-postgres' `ssl` option must be for one attempt at a host: false (no TLS) or the TLS
// options; `prefer` and `allow` make two attempts (connect.ts), so they ask for one or the other.
export function tlsOptions(t: ConnectionTarget, host: string, attempt: 'tls' | 'plain'): false | tls.ConnectionOptions {
  if (attempt === 'plain') return false;
  const mode = t.sslMode === 'require' && rootCertFile(t) ? 'verify-ca' : t.sslMode; // libpq: require with a root CA verifies it
  const options: tls.ConnectionOptions = {};
  if (t.sslCert) options.cert = readPem(t.sslCert, 'sslcert');
  if (t.sslKey) options.key = readPem(t.sslKey, 'sslkey');
  if (mode === 'verify-ca' || mode === 'verify-full') {
    const ca = rootCertFile(t);
    if (ca === null) {
      throw new IpamError(
        'BAD_CONFIG',
        `sslmode=${mode} needs the CA that signed the server's certificate: add sslrootcert=/path/to/root.crt to the database URL (or sslrootcert=system for the system's CAs)`,
      );
    }
    if (ca !== 'system') options.ca = readPem(ca, 'sslrootcert');
    options.rejectUnauthorized = true;
    // verify-full: Node checks the certificate against `host` (an IP address is not a TLS server name)
    if (mode === 'verify-ca') options.checkServerIdentity = () => undefined;
    else options.host = host;
    return options;
  }
  // require, prefer, allow: encrypted, the certificate not checked (as libpq)
  options.rejectUnauthorized = false;
  return options;
}

// sslrootcert as given, else libpq's default ~/.postgresql/root.crt when it exists.
function rootCertFile(t: ConnectionTarget): string | 'system' | null {
  if (t.sslRootCert) return t.sslRootCert;
  const home = path.join(os.homedir(), '.postgresql', 'root.crt');
  return fs.existsSync(home) ? home : null;
}

function readPem(file: string, what: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new IpamError(
      'BAD_CONFIG',
      `${what} ${file} cannot be read (${(e as NodeJS.ErrnoException).code}): fix the path in the database URL, or its permissions`,
    );
  }
}

// The attempts for a host, in order: TLS, plain, or both (prefer: TLS first; allow: plain first).
export function attemptsFor(t: ConnectionTarget): Array<'tls' | 'plain'> {
  switch (t.sslMode) {
    case undefined:
    case 'disable':
      return ['plain'];
    case 'allow':
      return ['plain', 'tls'];
    case 'prefer':
      return ['tls', 'plain'];
    default:
      return ['tls'];
  }
}

// host:port/database, never the password.
export function describeTarget(t: ConnectionTarget): string {
  const hosts = t.hosts.map((h) => (h.host.includes(':') ? `[${h.host}]:${h.port}` : `${h.host}:${h.port}`)).join(',');
  return `${hosts}/${t.database ?? t.user ?? 'postgres'}`;
}
