// Where the driver finds its database and limits. Precedence: PGIPAM_DATABASE_URL, then the config
// file (PGIPAM_CONFIG, default /etc/one/ipam/pgipam.conf: outside remotes/, which `onehost sync`
// copies to every hypervisor), then the standard libpq PG* variables.
import fs from 'node:fs';
import { IpamError } from './errors';
import { checkName } from './names';
import { type ConnectionTarget, parseConnectionUrl, targetFromEnvironment } from './connection-target';

export const DEFAULT_CONFIG_PATH = '/etc/one/ipam/pgipam.conf';

export interface Config {
  // A libpq URL, or undefined to let pg read PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE/PGSSLMODE
  // (node-postgres reads those; libpq's PGSERVICE and PGPASSFILE it does not).
  databaseUrl: string | undefined;
  // The same, as libpq reads it: hosts, target_session_attrs, TLS (connection-target.ts).
  target: ConnectionTarget;
  // Where the database setting came from, for error messages (never the URL itself: it may hold a password).
  source: string;
  connectTimeoutMs: number;
  statementTimeoutMs: number;
  lockTimeoutMs: number;
  // Hard limit for a whole action process; oned gives up after 90 s and its MAD runs actions one at a time.
  actionTimeoutMs: number;
  // Name of this OpenNebula front-end, recorded in the history and used for access control.
  platform: string;
  // What the database URL points at: "auto" tells a transaction pooler (PgBouncer) by its refusal
  // of start-up settings, which costs a second connection per process; "transaction" says it is
  // one and connects once; "none" never takes it for one.
  pooler: 'auto' | 'transaction' | 'none';
  warnings: string[];
}

export const DEFAULT_ACTION_TIMEOUT_MS = 14000;

const DEFAULTS = {
  connectTimeoutMs: 5000,
  statementTimeoutMs: 5000,
  lockTimeoutMs: 4000,
  actionTimeoutMs: DEFAULT_ACTION_TIMEOUT_MS,
};

const KEYS = [
  'database_url',
  'connect_timeout_ms',
  'statement_timeout_ms',
  'lock_timeout_ms',
  'action_timeout_ms',
  'platform',
  'pooler',
] as const;
const POOLERS = ['auto', 'transaction', 'none'] as const;
type Key = (typeof KEYS)[number];

// key = value lines; '#' starts a comment line; values may be wrapped in double or single quotes.
export function parseConfigText(text: string, path: string): Partial<Record<Key, string>> {
  const out: Partial<Record<Key, string>> = {};
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m) throw new IpamError('BAD_CONFIG', `${path}:${i + 1}: expected "key = value"`);
    const key = m[1]!.toLowerCase() as Key;
    if (!KEYS.includes(key)) throw new IpamError('BAD_CONFIG', `${path}:${i + 1}: unknown setting "${m[1]}" (known: ${KEYS.join(', ')})`);
    let value = m[2]!.trim();
    if (/^(["']).*\1$/.test(value)) value = value.slice(1, -1);
    out[key] = value;
  });
  return out;
}

function number(value: string | undefined, fallback: number, what: string): number {
  if (value === undefined || value === '') return fallback;
  if (!/^\d{1,7}$/.test(value) || Number(value) < 1)
    throw new IpamError('BAD_CONFIG', `${what} must be a positive number of milliseconds, got "${value}"`);
  return Number(value);
}

function hasPassword(url: string): boolean {
  return /^[a-z]+:\/\/[^/@]*:[^/@]+@/i.test(url) || /password=/i.test(url);
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const warnings: string[] = [];
  const explicitPath = env.PGIPAM_CONFIG;
  const path = explicitPath || DEFAULT_CONFIG_PATH;
  const { file, fileFound } = readConfigFile(path, Boolean(explicitPath), warnings);

  let databaseUrl: string | undefined;
  let source: string;
  if (env.PGIPAM_DATABASE_URL) {
    databaseUrl = env.PGIPAM_DATABASE_URL;
    source = 'PGIPAM_DATABASE_URL';
  } else if (file.database_url) {
    databaseUrl = file.database_url;
    source = `database_url in ${path}`;
  } else if (env.PGHOST || env.PGDATABASE) {
    databaseUrl = undefined;
    source = 'the PG* environment variables';
  } else {
    throw new IpamError(
      'BAD_CONFIG',
      fileFound
        ? `no database configured: add a database_url = postgres://user@host/db line to ${path}, or set PGIPAM_DATABASE_URL`
        : `no database configured: set PGIPAM_DATABASE_URL, or write database_url = postgres://user@host/db into ${path} (or the file named by PGIPAM_CONFIG), or set PGHOST and PGDATABASE`,
    );
  }
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new IpamError('BAD_CONFIG', `the database URL from ${source} must start with postgres:// or postgresql://`);
  }
  const target = databaseUrl !== undefined ? parseConnectionUrl(databaseUrl, source) : targetFromEnvironment(env);
  const platform = env.PGIPAM_PLATFORM || file.platform || 'default';
  checkName('platform name', platform, 'BAD_CONFIG');
  const pooler = poolerSetting(env.PGIPAM_POOLER || file.pooler || 'auto');
  return {
    databaseUrl,
    target,
    source,
    connectTimeoutMs: number(env.PGIPAM_CONNECT_TIMEOUT_MS ?? file.connect_timeout_ms, DEFAULTS.connectTimeoutMs, 'connect_timeout_ms'),
    statementTimeoutMs: number(
      env.PGIPAM_STATEMENT_TIMEOUT_MS ?? file.statement_timeout_ms,
      DEFAULTS.statementTimeoutMs,
      'statement_timeout_ms',
    ),
    lockTimeoutMs: number(env.PGIPAM_LOCK_TIMEOUT_MS ?? file.lock_timeout_ms, DEFAULTS.lockTimeoutMs, 'lock_timeout_ms'),
    actionTimeoutMs: number(env.PGIPAM_ACTION_TIMEOUT_MS ?? file.action_timeout_ms, DEFAULTS.actionTimeoutMs, 'action_timeout_ms'),
    platform,
    pooler,
    warnings,
  };
}

function poolerSetting(text: string): Config['pooler'] {
  if (!(POOLERS as readonly string[]).includes(text))
    throw new IpamError('BAD_CONFIG', `pooler "${text}" is not one of ${POOLERS.join(', ')} (PGIPAM_POOLER, or pooler in the config file)`);
  return text as Config['pooler'];
}

// The settings of the config file, checked for who may read it; none for a missing default file
// or a non-regular one (PGIPAM_CONFIG=/dev/null).
function readConfigFile(path: string, explicit: boolean, warnings: string[]): { file: Partial<Record<Key, string>>; fileFound: boolean } {
  let file: Partial<Record<Key, string>> = {};
  let fileFound = false;
  let stat: fs.Stats | undefined;
  try {
    stat = fs.statSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || explicit) {
      throw new IpamError(
        'BAD_CONFIG',
        `cannot read config file ${path} (${(e as NodeJS.ErrnoException).code}); fix PGIPAM_CONFIG or create the file with a database_url = ... line`,
      );
    }
  }
  // A non-regular file (PGIPAM_CONFIG=/dev/null) means "no file settings".
  if (stat && !stat.isFile()) stat = undefined;
  if (stat) {
    let text: string;
    try {
      text = fs.readFileSync(path, 'utf8');
    } catch (e) {
      throw new IpamError(
        'BAD_CONFIG',
        `cannot read config file ${path} (${(e as NodeJS.ErrnoException).code}): it must be readable by the oneadmin user (chown oneadmin ${path}; chmod 600 ${path})`,
      );
    }
    file = parseConfigText(text, path);
    fileFound = true;
    if ((stat.mode & 0o007) !== 0) {
      if (file.database_url && hasPassword(file.database_url)) {
        throw new IpamError('BAD_CONFIG', `config file ${path} holds a password and is readable by other users: chmod 600 ${path}`);
      }
      warnings.push(`config file ${path} is readable by other users; chmod 600 it`);
    } else if ((stat.mode & 0o070) !== 0 && file.database_url && hasPassword(file.database_url)) {
      warnings.push(`config file ${path} holds a password and is readable by its group; chmod 600 ${path} (oneadmin only)`);
    }
  }
  return { file, fileFound };
}
