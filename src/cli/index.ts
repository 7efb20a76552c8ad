// pgipam: the operator's command line over the pgipam database. Logic lives in src/admin and
// src/allocator; this file parses arguments and prints tables (or JSON with --json).
import fs from 'node:fs';
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { type Config, loadConfig } from '../config';
import { connect, withClient, type Db } from '../db/client';
import { migrate, pendingSql, schemaVersion, SCHEMA_VERSION } from '../db/migrate';
import { IpamError, coerceError, toOneLine } from '../errors';
import type { ActionContext } from '../allocator/context';
import { addPlatform, applyDriverGrants, grantPool, listPlatforms, removePlatform } from '../admin/platforms';
import { PUBLIC_SCHEMA_PROBLEM, checkDatabase, publicSchemaWritable } from '../admin/check';
import { resizeRange } from '../admin/range-resize';
import { MAX_AR_SIZE } from '../address';
import { printTable, utilisationBar } from './print';
import { addSpace, listSpaces } from '../admin/spaces';
import { listLeases, listRanges, rangeMap, removeRange, showRange, type RangeInfo } from '../admin/range-admin';
import { type PoolInfo, addPool, listPools, poolInfo, removePool, setPool } from '../admin/pool-admin';
import { find, history, pruneHistory } from '../admin/lookups';
import { reserve, unreserve } from '../admin/reservations';
import { getPool } from '../allocator/pool-space';

interface Global {
  json: boolean;
}

const write = (s: string) => process.stdout.write(s);

function cliContext(): ActionContext {
  const user = process.env.SUDO_USER || process.env.USER || 'operator';
  return { requestId: `cli:${user}`.slice(0, 40), platform: 'default', log: () => {} };
}

// The operator's commands may run long (a migration on a big table, pruning years of history):
// they get generous statement and lock timeouts instead of the actions' tight ones.
function cliConfig(): Config {
  const config = loadConfig();
  return { ...config, statementTimeoutMs: Math.max(config.statementTimeoutMs, 600_000), lockTimeoutMs: Math.max(config.lockTimeoutMs, 30_000) };
}

async function withDb<T>(fn: (db: Db, ctx: ActionContext) => Promise<T>, skipSchemaCheck = false): Promise<T> {
  const config = cliConfig();
  return withClient(config, { applicationName: 'pgipam/cli', skipSchemaCheck }, (db) => fn(db, { ...cliContext(), platform: db.pgipamPlatform ?? config.platform }));
}

function out(args: unknown, data: unknown, human: () => void): void {
  if ((args as Global).json) write(JSON.stringify(data, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2) + '\n');
  else human();
}

function rangeJson(r: RangeInfo) {
  return { id: r.range.id, space: r.range.spaceName, type: r.range.type, first: r.first, last: r.last, size: r.range.size, used: r.used, by_kind: r.byKind, pool_id: r.range.poolId, platform: r.range.platform, hold_seconds: r.range.holdSeconds, attrs: r.range.attrs, created_at: r.range.createdAt };
}

function poolJson(p: PoolInfo) {
  return { ...p.pool, prefixes: p.prefixes.map((x) => ({ ...x, size: x.size.toString(), carved: x.carved.toString(), reserved: x.reserved.toString(), free: x.free.toString() })), ranges: p.ranges, grants: p.grants, reservations: p.reservations };
}

function pct(part: bigint, whole: bigint): number {
  return whole === 0n ? 0 : Number((part * 10000n) / whole) / 100;
}

// --attr KEY=VALUE pairs
function parseAttrs(list: string[] | undefined): Record<string, string> {
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
export function parseAgeOrDate(s: string, option: string): Date {
  const m = /^(\d{1,9})([smhd])$/.exec(s);
  if (m) return new Date(Date.now() - Number(m[1]) * { s: 1e3, m: 6e4, h: 36e5, d: 864e5 }[m[2] as 's' | 'm' | 'h' | 'd']);
  const iso = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/.test(s);
  const d = new Date(s);
  if (!iso || Number.isNaN(d.getTime())) throw new IpamError('BAD_REQUEST', `${option} takes an ISO date or an age such as 30m, 2h or 7d (e.g. 2026-01-31, 7d), got "${s}"`);
  return d;
}

function parseSince(s: string | undefined): Date | undefined {
  return s === undefined ? undefined : parseAgeOrDate(s, '--since');
}

// History younger than this is kept unless --force: pruning is for retention, not for hiding.
export const MIN_PRUNE_AGE_DAYS = 30;

function pruneCutoff(text: string, force: boolean): Date {
  const before = parseAgeOrDate(text, '--before');
  if (force) return before;
  if (before.getTime() > Date.now()) throw new IpamError('BAD_REQUEST', `--before ${text} is in the future: that deletes the whole history; use an age such as 365d (or --force if that is really meant)`);
  if (Date.now() - before.getTime() < MIN_PRUNE_AGE_DAYS * 864e5) {
    throw new IpamError('BAD_REQUEST', `--before ${text} would delete history younger than ${MIN_PRUNE_AGE_DAYS} days: add --force if that is really meant`);
  }
  return before;
}

// Ids, sizes and limits: whole numbers in range, said plainly (yargs hands on NaN and negatives).
function wholeNumber(value: unknown, what: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new IpamError('BAD_REQUEST', `${what} must be a whole number from ${min} to ${max}, got "${String(value)}"`);
  }
  return value;
}

function readPassword(args: { passwordStdin?: boolean; passwordEnv?: string }): string | undefined {
  if (args.passwordStdin) return fs.readFileSync(0, 'utf8').replace(/\r?\n$/, '');
  if (args.passwordEnv) {
    const v = process.env[args.passwordEnv];
    if (v === undefined) throw new IpamError('BAD_REQUEST', `environment variable ${args.passwordEnv} is not set`);
    return v;
  }
  return undefined;
}

const poolOptions = <T,>(y: Argv<T>) =>
  y
    .option('gateway', { type: 'string', describe: 'gateway of carved IPv4 subnets: first, last, none, or a host offset' })
    .option('dns', { type: 'string', describe: 'DNS servers, space separated' })
    .option('search-domain', { type: 'string' })
    .option('mtu', { type: 'number', describe: 'GUEST_MTU of carved ranges' })
    .option('vlan', { type: 'number', describe: 'VLAN_ID of carved ranges' })
    .option('hold-seconds', { type: 'number', describe: 'freed addresses wait this long before reuse' })
    .option('default', { type: 'boolean', describe: 'carve from this pool when an AR names none' })
    .option('restricted', { type: 'boolean', describe: 'only granted platforms may use it' })
    .option('attr', { type: 'string', array: true, describe: 'extra AR attribute KEY=VALUE (repeatable)' })
    .option('description', { type: 'string' });

function printPool(p: PoolInfo): void {
  const o = p.pool;
  write(`pool ${o.name}  space ${o.spaceName}${o.isDefault ? '  (default)' : ''}${o.restricted ? `  restricted to: ${p.grants.join(', ') || 'nobody'}` : ''}\n`);
  write(`gateway ${o.gateway}  dns ${o.dns || '-'}  search ${o.searchDomain || '-'}  mtu ${o.mtu ?? '-'}  vlan ${o.vlanId ?? '-'}  hold ${o.holdSeconds}s  ranges ${p.ranges}\n`);
  for (const [k, v] of Object.entries(o.extra)) write(`  ${k} = ${v}\n`);
  for (const x of p.prefixes) {
    const used = x.carved + x.reserved;
    write(`\n${x.prefix}: ${x.carved} carved, ${x.reserved} reserved, ${x.free} free of ${x.size} (${pct(used, x.size)}% used)\n`);
    write(`  ${utilisationBar(Number(used * 1000n / (x.size || 1n)), 1000, 40)}\n`);
    write(`  ${x.map}\n`);
  }
  if (p.prefixes.length) write('  map: # carved  R reserved  : mixed  . free (each character 1/64th of the prefix)\n');
  if (p.reservations.length) {
    write('\nreserved:\n');
    printTable(['FIRST', 'LAST', 'REASON'], p.reservations.map((r) => [r.first, r.last, r.reason]));
  }
}

export function buildCli(argv: string[]): Argv {
  return yargs(argv)
    .scriptName('pgipam')
    .usage('$0 <command>\n\nAdministers the pgipam database behind the OpenNebula IPAM driver. Reads the same configuration as the actions (PGIPAM_DATABASE_URL, /etc/one/ipam/pgipam.conf, PG*).')
    .option('json', { type: 'boolean', default: false, describe: 'print JSON instead of tables' })
    .command(
      'migrate',
      'create or upgrade the pgipam schema (safe to run twice, or from two hosts at once)',
      (y) => y.option('dry-run', { type: 'boolean', default: false, describe: 'print the SQL that would run' }),
      async (args) => {
        const db = await connect(cliConfig(), { applicationName: 'pgipam/migrate', skipSchemaCheck: true });
        try {
          if (args.dryRun) {
            const v = await schemaVersion(db);
            write(pendingSql(v) || `-- schema is at version ${v}; nothing to do\n`);
            return;
          }
          const r = await migrate(db);
          const grants = await applyDriverGrants(db, false);
          if (await publicSchemaWritable(db)) process.stderr.write(`pgipam: warning: ${PUBLIC_SCHEMA_PROBLEM}\n`);
          out(args, { ...r, driver_grants_applied: grants }, () => write(r.applied.length ? `migrated schema from version ${r.from} to ${r.to}: ${r.applied.join(', ')}\n` : `schema is up to date (version ${r.to})\n`));
        } finally {
          await db.end().catch(() => {});
        }
      },
    )
    .command('check', 'check that leases, free space and pools agree (read-only); exit 1 on a problem', {}, async (args) => {
      const r = await withDb(checkDatabase);
      out(args, r, () => write(r.problems.length ? `${r.problems.length} problems:\n${r.problems.map((p) => `  ${p}`).join('\n')}\n` : `ok: ${r.ranges} ranges and ${r.pools} pools are consistent\n`));
      if (r.problems.length) throw new IpamError('CONFLICT', `${r.problems.length} consistency problems found`);
    })
    .command('status', 'show the schema version', {}, async (args) => {
      const v = await withDb((db) => schemaVersion(db), true);
      out(args, { schema_version: v, code_version: SCHEMA_VERSION }, () => write(`schema version ${v} (this pgipam expects ${SCHEMA_VERSION})${v < SCHEMA_VERSION ? ': run "pgipam migrate"' : ''}\n`));
    })
    .command('space <command>', 'address spaces (ranges of one space may not overlap)', (y) =>
      y
        .command('list', 'list address spaces', {}, async (args) => {
          const list = await withDb(listSpaces);
          out(args, list, () => printTable(['NAME', 'RANGES', 'DESCRIPTION'], list.map((s) => [s.name, String(s.ranges), s.description])));
        })
        .command('add <name>', 'create an address space (for overlapping private networks, e.g. one per VLAN)', (y2) => y2.positional('name', { type: 'string', demandOption: true }).option('description', { type: 'string', default: '' }), async (args) => {
          const id = await withDb((db, ctx) => addSpace(db, args.name, args.description, ctx));
          out(args, { id, name: args.name }, () => write(`created address space ${args.name}\n`));
        })
        .demandCommand(1, 'name a space command'),
    )
    .command('pool <command>', 'pools that ranges are carved from', (y) =>
      y
        .command('list', 'list pools and their use', {}, async (args) => {
          const list = await withDb(listPools);
          out(args, list.map(poolJson), () =>
            printTable(['NAME', 'SPACE', 'PREFIXES', 'RANGES', 'USED', 'FLAGS'], list.map((p) => {
              const size = p.prefixes.reduce((a, x) => a + x.size, 0n);
              const used = p.prefixes.reduce((a, x) => a + x.carved + x.reserved, 0n);
              return [p.pool.name, p.pool.spaceName, p.prefixes.map((x) => x.prefix).join(' '), String(p.ranges), `${pct(used, size)}%`, [p.pool.isDefault ? 'default' : '', p.pool.restricted ? 'restricted' : ''].filter(Boolean).join(',')];
            })),
          );
        })
        .command('show <name>', 'show a pool with a map of its prefixes', (y2) => y2.positional('name', { type: 'string', demandOption: true }), async (args) => {
          const info = await withDb(async (db) => {
            const p = await getPool(db, args.name);
            if (!p) throw new IpamError('NOT_FOUND', `no pool "${args.name}"`);
            return poolInfo(db, p);
          });
          out(args, poolJson(info), () => printPool(info));
        })
        .command(
          'add <name>',
          'define a pool',
          (y2) => poolOptions(y2.positional('name', { type: 'string', demandOption: true }).option('prefix', { type: 'string', array: true, demandOption: true, describe: 'IPv4 or IPv6 prefix (repeatable), e.g. 10.20.0.0/16' }).option('space', { type: 'string', default: 'default' })),
          async (args) => {
            const pool = await withDb((db, ctx) =>
              addPool(db, String(args.name), { space: args.space, prefixes: args.prefix, gateway: args.gateway, dns: args.dns, searchDomain: args.searchDomain, mtu: args.mtu, vlanId: args.vlan, holdSeconds: args.holdSeconds, isDefault: args.default, restricted: args.restricted, extra: parseAttrs(args.attr), description: args.description }, ctx),
            );
            out(args, pool, () => write(`created pool ${pool.name} in space ${pool.spaceName}\n`));
          },
        )
        .command(
          'set <name>',
          'change a pool',
          (y2) => poolOptions(y2.positional('name', { type: 'string', demandOption: true }).option('add-prefix', { type: 'string', array: true }).option('remove-prefix', { type: 'string', array: true })),
          async (args) => {
            const pool = await withDb((db, ctx) =>
              setPool(db, String(args.name), { addPrefixes: args.addPrefix, removePrefixes: args.removePrefix, gateway: args.gateway, dns: args.dns, searchDomain: args.searchDomain, mtu: args.mtu, vlanId: args.vlan, holdSeconds: args.holdSeconds, isDefault: args.default, restricted: args.restricted, extra: parseAttrs(args.attr), description: args.description }, ctx),
            );
            out(args, pool, () => write(`changed pool ${pool.name}\n`));
          },
        )
        .command('rm <name>', 'remove a pool; refused while ranges use it unless --force', (y2) => y2.positional('name', { type: 'string', demandOption: true }).option('force', { type: 'boolean', default: false }), async (args) => {
          const r = await withDb((db, ctx) => removePool(db, args.name, args.force, ctx));
          out(args, r, () => write(`removed pool ${args.name}${r.detached ? ` (${r.detached} ranges now outside any pool)` : ''}\n`));
        })
        .demandCommand(1, 'name a pool command'),
    )
    .command('range <command>', 'address ranges registered by OpenNebula', (y) =>
      y
        .command('list', 'list ranges with their use', (y2) => y2.option('space', { type: 'string' }), async (args) => {
          const list = await withDb((db) => listRanges(db, { space: args.space }));
          out(args, list.map(rangeJson), () => printTable(['ID', 'SPACE', 'TYPE', 'FIRST', 'LAST', 'SIZE', 'USED', 'PLATFORM', 'USE'], list.map((r) => [String(r.range.id), r.range.spaceName, r.range.type, r.first, r.last, String(r.range.size), String(r.used), r.range.platform, utilisationBar(r.used, r.range.size, 20)])));
        })
        .command('show <id>', 'show one range with a map of its addresses', (y2) => y2.positional('id', { type: 'number', demandOption: true }), async (args) => {
          const id = wholeNumber(args.id, 'the range id', 1);
          const { info, leases, map } = await withDb(async (db) => {
            const info = await showRange(db, id);
            return { info, leases: await listLeases(db, { rangeId: id, limit: 50 }), map: await rangeMap(db, info.range) };
          });
          out(args, { ...rangeJson(info), map, leases }, () => {
            const r = info.range;
            write(`range ${r.id}  ${r.type}  ${info.first} - ${info.last}  space ${r.spaceName}  platform ${r.platform}${r.holdSeconds ? `  hold ${r.holdSeconds}s` : ''}\n`);
            write(`size ${r.size}  used ${info.used}  ${utilisationBar(info.used, r.size, 40)}\n`);
            write(`  ${map}\n  map: # leased  R reserved  h on hold  : mixed  . free (each character 1/${Math.min(64, r.size)}th of the range)\n`);
            for (const [k, v] of Object.entries(info.byKind)) write(`  ${k}: ${v}\n`);
            write('attributes:\n');
            for (const [k, v] of Object.entries(r.attrs)) write(`  ${k} = ${v}\n`);
            if (leases.length) printTable(['FIRST', 'LAST', 'SIZE', 'KIND', 'SINCE', 'REQUEST', 'NOTE'], leases.map((l) => [l.first, l.last, String(l.size), l.kind, l.since.toISOString(), l.requestId ?? '', l.note ?? '']));
          });
        })
        .command('rm <id>', 'remove a range by hand (e.g. a stale registration); refused while it has leases unless --force', (y2) => y2.positional('id', { type: 'number', demandOption: true }).option('force', { type: 'boolean', default: false }), async (args) => {
          const id = wholeNumber(args.id, 'the range id', 1);
          const r = await withDb((db, ctx) => removeRange(db, id, args.force, ctx));
          out(args, r, () => write(`removed range ${args.id} (released ${r.released} addresses)\n`));
        })
        .command(
          'resize <id>',
          'make a range as large as its AR again after "onevnet updatear" changed the AR\'s SIZE (oned does not tell the driver); refused when it would overlap another range or cut leases',
          (y2) => y2.positional('id', { type: 'number', demandOption: true }).option('size', { type: 'number', demandOption: true, describe: 'the SIZE the AR has in OpenNebula (onevnet show)' }),
          async (args) => {
            const id = wholeNumber(args.id, 'the range id', 1);
            const size = wholeNumber(args.size, '--size', 1, MAX_AR_SIZE);
            const r = await withDb((db, ctx) => resizeRange(db, id, size, ctx));
            out(args, r, () => write(r.from === r.to ? `range ${r.rangeId} already has ${r.to} addresses\n` : `resized range ${r.rangeId} from ${r.from} to ${r.to} addresses\n`));
          },
        )
        .demandCommand(1, 'name a range command'),
    )
    .command('lease <command>', 'leases, allocations, reservations and holds', (y) =>
      y
        .command('list', 'list them', (y2) => y2.option('range', { type: 'number' }).option('kind', { type: 'string', choices: ['lease', 'allocation', 'reservation', 'hold'] }).option('limit', { type: 'number', default: 1000 }), async (args) => {
          const rangeId = args.range === undefined ? undefined : wholeNumber(args.range, '--range', 1);
          const limit = wholeNumber(args.limit, '--limit', 1, 1_000_000);
          const list = await withDb((db) => listLeases(db, { rangeId, kind: args.kind, limit }));
          out(args, list, () => printTable(['RANGE', 'FIRST', 'LAST', 'SIZE', 'KIND', 'SINCE', 'REQUEST', 'NOTE'], list.map((l) => [String(l.rangeId), l.first, l.last, String(l.size), l.kind, l.since.toISOString(), l.requestId ?? '', l.note ?? ''])));
        })
        .demandCommand(1, 'name a lease command'),
    )
    .command('find <address>', 'which space, pool, range, platform and lease hold an IP or MAC, and its history', (y) => y.positional('address', { type: 'string', demandOption: true }), async (args) => {
      const r = await withDb((db) => find(db, args.address));
      out(args, r, () => {
        if (!r.matches.length) write(`${args.address} is in no range and no pool\n`);
        for (const m of r.matches) {
          write(`space ${m.space}  pool ${m.pool ?? '-'}  ${m.range ? `range ${m.range.id} (${m.range.type} ${m.range.first} - ${m.range.last}, platform ${m.range.platform})` : 'no range'}\n`);
          if (m.poolReservation) write(`  reserved in the pool: ${m.poolReservation}\n`);
          if (m.range) write(m.lease ? `  ${m.lease.kind}${m.lease.first !== m.lease.last ? ` of ${m.lease.first} - ${m.lease.last}` : ''} since ${m.lease.since.toISOString()}${m.lease.requestId ? `, request ${m.lease.requestId}` : ''}${m.lease.note ? `: ${m.lease.note}` : ''}${m.lease.heldUntil ? `, held until ${m.lease.heldUntil.toISOString()}` : ''}\n` : '  free\n');
          if (m.history.length) printTable(['AT', 'EVENT', 'ADDRESS', 'SIZE', 'PLATFORM', 'REQUEST'], m.history.map((h) => [h.at.toISOString(), h.event, h.address ?? '', String(h.size ?? ''), h.platform ?? '', h.requestId ?? '']));
        }
      });
    })
    .command('reserve <target>', 'keep an address, a first-last span or a prefix out of allocation', (y) => y.positional('target', { type: 'string', demandOption: true }).option('reason', { type: 'string', demandOption: true }).option('space', { type: 'string', default: 'default' }), async (args) => {
      const r = await withDb((db, ctx) => reserve(db, args.target, args.reason, args.space, ctx));
      out(args, r, () => write(`reserved ${args.target}: ${[...r.inRanges.map((x) => `${x.count} in range ${x.rangeId}`), ...r.inPools.map((x) => `${x.count} in pool ${x.pool}`)].join(', ')}\n`));
    })
    .command('unreserve <target>', 'release reservations in an address, span or prefix', (y) => y.positional('target', { type: 'string', demandOption: true }).option('space', { type: 'string', default: 'default' }), async (args) => {
      const r = await withDb((db, ctx) => unreserve(db, args.target, args.space, ctx));
      out(args, r, () => write(`released ${r.released} reserved addresses in ranges and ${r.poolReservations} pool reservations\n`));
    })
    .command(
      'history',
      'the append-only history of changes (history prune --before 90d deletes old rows; schema owner only)',
      (y) =>
        y
          .option('since', { type: 'string', describe: 'ISO date or age (30m, 2h, 7d)' })
          .option('range', { type: 'number' })
          .option('platform', { type: 'string' })
          .option('event', { type: 'string' })
          .option('limit', { type: 'number', default: 100 })
          .command('prune', `delete history older than --before (an ISO date or an age such as 365d; younger than ${MIN_PRUNE_AGE_DAYS}d only with --force)`, (y2) => y2.option('before', { type: 'string', demandOption: true }).option('force', { type: 'boolean', default: false, describe: `prune history younger than ${MIN_PRUNE_AGE_DAYS} days, or all of it with a cut-off in the future` }), async (args) => {
            const before = pruneCutoff(args.before, args.force);
            const n = await withDb((db, ctx) => pruneHistory(db, before, ctx));
            out(args, { pruned: n, before }, () => write(`pruned ${n} history rows older than ${before.toISOString()}\n`));
          }),
      async (args) => {
        const since = parseSince(args.since);
        const rangeId = args.range === undefined ? undefined : wholeNumber(args.range, '--range', 1);
        const limit = wholeNumber(args.limit, '--limit', 1, 1_000_000);
        const rows = await withDb((db) => history(db, { since, rangeId, platform: args.platform, event: args.event, limit }));
        out(args, rows, () => printTable(['AT', 'EVENT', 'RANGE', 'ADDRESS', 'SIZE', 'PLATFORM', 'REQUEST', 'ACTOR'], rows.map((h) => [h.at.toISOString(), h.event, h.rangeId === null ? '' : String(h.rangeId), h.address ?? '', h.size === null ? '' : String(h.size), h.platform ?? '', h.requestId ?? '', h.actor])));
      },
    )
    .command('platform <command>', 'OpenNebula front-ends and the pools they may use', (y) =>
      y
        .command('list', 'list platforms', {}, async (args) => {
          const list = await withDb(listPlatforms);
          out(args, list, () => printTable(['NAME', 'ROLE', 'RANGES', 'GRANTED POOLS', 'DESCRIPTION'], list.map((p) => [p.name, p.role ?? '(schema owner)', String(p.ranges), p.pools.join(' '), p.description])));
        })
        .command(
          'add <name>',
          'add a platform with its own database login role (member of pgipam_driver: DML only, row-level security)',
          (y2) => y2.positional('name', { type: 'string', demandOption: true }).option('role', { type: 'string', describe: 'login role name (default pgipam_<name>)' }).option('password-stdin', { type: 'boolean', describe: 'read the role password from stdin' }).option('password-env', { type: 'string', describe: 'read the role password from this environment variable' }).option('description', { type: 'string' }),
          async (args) => {
            const password = readPassword(args);
            const p = await withDb((db, ctx) => addPlatform(db, args.name, { role: args.role, password, description: args.description }, ctx));
            out(args, p, () => write(`added platform ${p.name} with login role ${p.role}\n`));
          },
        )
        .command('rm <name>', 'remove a platform that holds no ranges (its grants go; its role leaves pgipam_driver and is kept)', (y2) => y2.positional('name', { type: 'string', demandOption: true }), async (args) => {
          const r = await withDb((db, ctx) => removePlatform(db, args.name, ctx));
          out(args, { removed: args.name, role: r.role }, () => write(`removed platform ${args.name}${r.role ? `; role ${r.role} is no longer a member of pgipam_driver (DROP ROLE it when nothing else uses it)` : ''}\n`));
        })
        .command('grant <platform> <pool>', 'let a platform use a restricted pool', (y2) => y2.positional('platform', { type: 'string', demandOption: true }).positional('pool', { type: 'string', demandOption: true }), async (args) => {
          await withDb((db, ctx) => grantPool(db, args.platform, args.pool, true, ctx));
          out(args, { granted: true }, () => write(`platform ${args.platform} may use pool ${args.pool}\n`));
        })
        .command('revoke <platform> <pool>', 'take a pool away from a platform', (y2) => y2.positional('platform', { type: 'string', demandOption: true }).positional('pool', { type: 'string', demandOption: true }), async (args) => {
          await withDb((db, ctx) => grantPool(db, args.platform, args.pool, false, ctx));
          out(args, { granted: false }, () => write(`platform ${args.platform} may no longer use pool ${args.pool}\n`));
        })
        .demandCommand(1, 'name a platform command'),
    )
    .demandCommand(1, 'name a command (see --help)')
    .strict()
    .help()
    .fail((msg, err) => {
      throw err ?? new IpamError('BAD_REQUEST', msg);
    });
}

export async function runCli(argv: string[]): Promise<number> {
  try {
    await buildCli(argv).parseAsync();
    return 0;
  } catch (e) {
    const err = coerceError(e);
    // a script that asked for JSON gets its error as JSON too (one line on stderr)
    if (argv.includes('--json')) process.stderr.write(JSON.stringify({ error: { code: err.code, message: toOneLine(err.message) } }) + '\n');
    else process.stderr.write(`pgipam: ${toOneLine(err.message)}\n`);
    return 1;
  }
}

// The process entry of build/pgipam.mjs (src/cli/bin.ts).
export function cliProcessMain(): void {
  runCli(hideBin(process.argv)).then((code) => {
    process.exitCode = code;
  });
}
