// pgipam: the operator's command line over the pgipam database. Logic lives in src/admin and
// src/allocator; this file parses arguments and prints tables (or JSON with --json).
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { loadConfig } from '../config';
import { connect, withClient, type Db } from '../db/client';
import { migrate, pendingSql, schemaVersion, SCHEMA_VERSION } from '../db/migrate';
import { coerceError, toOneLine } from '../errors';
import type { ActionContext } from '../allocator/context';
import { addSpace, listLeases, listRanges, listSpaces, removeRange, showRange, type RangeInfo } from '../admin/queries';
import { printTable, utilisationBar } from './print';

interface Global {
  json: boolean;
}

function cliContext(): ActionContext {
  const user = process.env.SUDO_USER || process.env.USER || 'operator';
  return { requestId: `cli:${user}`.slice(0, 40), platform: safePlatform(), log: () => {} };
}

function safePlatform(): string {
  try {
    return loadConfig().platform;
  } catch {
    return 'default';
  }
}

async function withDb<T>(fn: (db: Db) => Promise<T>, skipSchemaCheck = false): Promise<T> {
  return withClient(loadConfig(), { applicationName: 'pgipam/cli', skipSchemaCheck }, fn);
}

function out(args: Global, data: unknown, human: () => void): void {
  if (args.json) process.stdout.write(JSON.stringify(data, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2) + '\n');
  else human();
}

function rangeRows(list: RangeInfo[]): string[][] {
  return list.map((r) => [String(r.range.id), r.range.spaceName, r.range.type, r.first, r.last, String(r.range.size), String(r.used), utilisationBar(r.used, r.range.size, 20)]);
}

function rangeJson(r: RangeInfo) {
  return { id: r.range.id, space: r.range.spaceName, type: r.range.type, first: r.first, last: r.last, size: r.range.size, used: r.used, by_kind: r.byKind, attrs: r.range.attrs, created_at: r.range.createdAt };
}

export function buildCli(argv: string[]): Argv<Global> {
  return yargs(argv)
    .scriptName('pgipam')
    .usage('$0 <command>\n\nAdministers the pgipam database behind the OpenNebula IPAM driver.')
    .option('json', { type: 'boolean', default: false, describe: 'print JSON instead of tables' })
    .command(
      'migrate',
      'create or upgrade the pgipam schema (safe to run twice, or from two hosts at once)',
      (y) => y.option('dry-run', { type: 'boolean', default: false, describe: 'print the SQL that would run' }),
      async (args) => {
        const config = loadConfig();
        const db = await connect(config, { applicationName: 'pgipam/migrate', skipSchemaCheck: true });
        try {
          if (args.dryRun) {
            const v = await schemaVersion(db);
            process.stdout.write(pendingSql(v) || `-- schema is at version ${v}; nothing to do\n`);
            return;
          }
          const r = await migrate(db);
          out(args, r, () => process.stdout.write(r.applied.length ? `migrated schema from version ${r.from} to ${r.to}: ${r.applied.join(', ')}\n` : `schema is up to date (version ${r.to})\n`));
        } finally {
          await db.end().catch(() => {});
        }
      },
    )
    .command('status', 'show the database and schema version', {}, async (args) => {
      const v = await withDb((db) => schemaVersion(db), true);
      out(args as unknown as Global, { schema_version: v, code_version: SCHEMA_VERSION }, () =>
        process.stdout.write(`schema version ${v} (this pgipam expects ${SCHEMA_VERSION})${v < SCHEMA_VERSION ? ': run "pgipam migrate"' : ''}\n`),
      );
    })
    .command('space <command>', 'address spaces (ranges of one space may not overlap)', (y) =>
      y
        .command('list', 'list address spaces', {}, async (args) => {
          const list = await withDb(listSpaces);
          out(args as unknown as Global, list, () => printTable(['NAME', 'RANGES', 'DESCRIPTION'], list.map((s) => [s.name, String(s.ranges), s.description])));
        })
        .command(
          'add <name>',
          'create an address space (for overlapping private networks, e.g. one per VLAN)',
          (y2) => y2.positional('name', { type: 'string', demandOption: true }).option('description', { type: 'string', default: '' }),
          async (args) => {
            const id = await withDb((db) => addSpace(db, args.name, args.description, cliContext()));
            out(args as unknown as Global, { id, name: args.name }, () => process.stdout.write(`created address space ${args.name}\n`));
          },
        )
        .demandCommand(1, 'name a space command'),
    )
    .command('range <command>', 'address ranges registered by OpenNebula', (y) =>
      y
        .command('list', 'list ranges with their use', (y2) => y2.option('space', { type: 'string' }), async (args) => {
          const list = await withDb((db) => listRanges(db, { space: args.space }));
          out(args as unknown as Global, list.map(rangeJson), () => printTable(['ID', 'SPACE', 'TYPE', 'FIRST', 'LAST', 'SIZE', 'USED', 'USE'], rangeRows(list)));
        })
        .command('show <id>', 'show one range', (y2) => y2.positional('id', { type: 'number', demandOption: true }), async (args) => {
          const { info, leases } = await withDb(async (db) => ({ info: await showRange(db, args.id), leases: await listLeases(db, { rangeId: args.id, limit: 50 }) }));
          out(args as unknown as Global, { ...rangeJson(info), leases }, () => {
            const r = info.range;
            process.stdout.write(`range ${r.id}  ${r.type}  ${info.first} - ${info.last}  space ${r.spaceName}\n`);
            process.stdout.write(`size ${r.size}  used ${info.used}  ${utilisationBar(info.used, r.size, 40)}\n`);
            for (const [k, v] of Object.entries(info.byKind)) process.stdout.write(`  ${k}: ${v}\n`);
            process.stdout.write('attributes:\n');
            for (const [k, v] of Object.entries(r.attrs)) process.stdout.write(`  ${k} = ${v}\n`);
            if (leases.length) printTable(['FIRST', 'LAST', 'SIZE', 'KIND', 'SINCE', 'REQUEST', 'NOTE'], leases.map((l) => [l.first, l.last, String(l.size), l.kind, l.since.toISOString(), l.requestId ?? '', l.note ?? '']));
          });
        })
        .command(
          'rm <id>',
          'remove a range by hand (e.g. a stale registration); refused while it has leases unless --force',
          (y2) => y2.positional('id', { type: 'number', demandOption: true }).option('force', { type: 'boolean', default: false }),
          async (args) => {
            const r = await withDb((db) => removeRange(db, args.id, args.force, cliContext()));
            out(args as unknown as Global, r, () => process.stdout.write(`removed range ${args.id} (released ${r.released} addresses)\n`));
          },
        )
        .demandCommand(1, 'name a range command'),
    )
    .command('lease list', 'list leases, allocations, reservations and holds', (y) => y.option('range', { type: 'number' }).option('kind', { type: 'string', choices: ['lease', 'allocation', 'reservation', 'hold'] }).option('limit', { type: 'number', default: 1000 }), async (args) => {
      const list = await withDb((db) => listLeases(db, { rangeId: args.range, kind: args.kind, limit: args.limit }));
      out(args, list, () => printTable(['RANGE', 'FIRST', 'LAST', 'SIZE', 'KIND', 'SINCE', 'REQUEST', 'NOTE'], list.map((l) => [String(l.rangeId), l.first, l.last, String(l.size), l.kind, l.since.toISOString(), l.requestId ?? '', l.note ?? ''])));
    })
    .demandCommand(1, 'name a command (see --help)')
    .strict()
    .help()
    .fail((msg, err) => {
      throw err ?? new Error(msg);
    }) as unknown as Argv<Global>;
}

export async function runCli(argv: string[]): Promise<number> {
  try {
    await buildCli(argv).parseAsync();
    return 0;
  } catch (e) {
    process.stderr.write(`pgipam: ${toOneLine(coerceError(e).message)}\n`);
    return 1;
  }
}

export function main(): void {
  runCli(hideBin(process.argv)).then((code) => {
    process.exitCode = code;
  });
}
