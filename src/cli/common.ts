// What every pgipam command shares: the database session, output as a table or JSON, and the
// parsing of arguments that yargs leaves loose.
import fs from 'node:fs';
import { type Argv } from 'yargs';
import { type Config, loadConfig } from '../config';
import { withClient, type Db } from '../db/client';
import { IpamError } from '../errors';
import type { ActionContext } from '../allocator/context';

export interface Global {
  json: boolean;
}

export const write = (s: string) => process.stdout.write(s);

// The exit codes of a command that cron and monitoring read: reconcile exits 0 in agreement, 1
// when it found drift and 2 on an error; every other command exits 0 or 1 (runCli resets these).
export const exitCodes = { result: 0, error: 1 };

export function cliContext(): ActionContext {
  const user = process.env.SUDO_USER || process.env.USER || 'operator';
  return { requestId: `cli:${user}`.slice(0, 40), platform: 'default', log: () => {} };
}

// The operator's commands may run long (a migration on a big table, pruning years of history):
// they get generous statement and lock timeouts instead of the actions' tight ones.
export function cliConfig(): Config {
  const config = loadConfig();
  return {
    ...config,
    statementTimeoutMs: Math.max(config.statementTimeoutMs, 600_000),
    lockTimeoutMs: Math.max(config.lockTimeoutMs, 30_000),
  };
}

export async function withDb<T>(fn: (db: Db, ctx: ActionContext) => Promise<T>, skipSchemaCheck = false): Promise<T> {
  const config = cliConfig();
  return withClient(config, { applicationName: 'pgipam/cli', skipSchemaCheck }, (db) =>
    fn(db, { ...cliContext(), platform: db.pgipamPlatform ?? config.platform }),
  );
}

export function out(args: unknown, data: unknown, human: () => void): void {
  if ((args as Global).json) write(JSON.stringify(data, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2) + '\n');
  else human();
}

// --attr KEY=VALUE pairs
export function parseAttrs(list: string[] | undefined): Record<string, string> {
  const o: Record<string, string> = {};
  for (const a of list ?? []) {
    const i = a.indexOf('=');
    if (i < 1) throw new IpamError('BAD_REQUEST', `--attr takes KEY=VALUE, got "${a}"`);
    o[a.slice(0, i).toUpperCase()] = a.slice(i + 1);
  }
  return o;
}

// "30m", "2h", "7d" ago, or an ISO 8601 date (2026-01-31, 2026-01-31T12:00:00Z) for --since and
// --before. Anything else is refused: Date() would read "365" as the year 365.
const UNIT_MS = { s: 1e3, m: 6e4, h: 36e5, d: 864e5 } as const;

// "30s", "5m", "2h", "7d" in milliseconds.
export function parseDuration(s: string, option: string): number {
  const m = /^(\d{1,9})([smhd])$/.exec(s);
  if (!m || Number(m[1]) === 0) throw new IpamError('BAD_REQUEST', `${option} takes a duration such as 30s, 5m, 2h or 7d, got "${s}"`);
  return Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
}

export function parseAgeOrDate(s: string, option: string): Date {
  const m = /^(\d{1,9})([smhd])$/.exec(s);
  if (m) return new Date(Date.now() - Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS]);
  const iso = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/.test(s);
  const d = new Date(s);
  if (!iso || Number.isNaN(d.getTime()))
    throw new IpamError('BAD_REQUEST', `${option} takes an ISO date or an age such as 30m, 2h or 7d (e.g. 2026-01-31, 7d), got "${s}"`);
  return d;
}

export function parseSince(s: string | undefined): Date | undefined {
  return s === undefined ? undefined : parseAgeOrDate(s, '--since');
}

// History younger than this is kept unless --force: pruning is for retention, not for hiding.
export const MIN_PRUNE_AGE_DAYS = 30;

export function pruneCutoff(text: string, force: boolean): Date {
  const before = parseAgeOrDate(text, '--before');
  if (force) return before;
  if (before.getTime() > Date.now())
    throw new IpamError(
      'BAD_REQUEST',
      `--before ${text} is in the future: that deletes the whole history; use an age such as 365d (or --force if that is really meant)`,
    );
  if (Date.now() - before.getTime() < MIN_PRUNE_AGE_DAYS * 864e5) {
    throw new IpamError(
      'BAD_REQUEST',
      `--before ${text} would delete history younger than ${MIN_PRUNE_AGE_DAYS} days: add --force if that is really meant`,
    );
  }
  return before;
}

// Ids, sizes and limits: whole numbers in range, said plainly (yargs hands on NaN and negatives).
export function wholeNumber(value: unknown, what: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new IpamError('BAD_REQUEST', `${what} must be a whole number from ${min} to ${max}, got "${String(value)}"`);
  }
  return value;
}

export function readPassword(args: { passwordStdin?: boolean; passwordEnv?: string }): string | undefined {
  if (args.passwordStdin) return fs.readFileSync(0, 'utf8').replace(/\r?\n$/, '');
  if (args.passwordEnv) {
    const v = process.env[args.passwordEnv];
    if (v === undefined) throw new IpamError('BAD_REQUEST', `environment variable ${args.passwordEnv} is not set`);
    return v;
  }
  return undefined;
}

export const poolOptions = <T>(y: Argv<T>) =>
  y
    .option('gateway', { type: 'string', describe: 'gateway of carved IPv4 subnets: first, last, none, or a host offset' })
    .option('dns', { type: 'string', describe: 'DNS servers, space separated' })
    .option('search-domain', { type: 'string' })
    .option('mtu', { type: 'number', describe: 'GUEST_MTU of carved ranges' })
    .option('vlan', { type: 'number', describe: 'one VLAN_ID for every carved range' })
    .option('vlan-pool', { type: 'string', describe: 'a VLAN pool each carved range takes its own VLAN_ID from ("none": no VLAN pool)' })
    .option('hold-seconds', { type: 'number', describe: 'freed addresses wait this long before reuse' })
    .option('default', { type: 'boolean', describe: 'carve from this pool when an AR names none' })
    .option('restricted', { type: 'boolean', describe: 'only granted platforms may use it' })
    .option('attr', { type: 'string', array: true, describe: 'extra AR attribute KEY=VALUE (repeatable)' })
    .option('description', { type: 'string' });
