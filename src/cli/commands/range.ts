// pgipam range list|show|rm|resize.
import type { Argv } from 'yargs';
import { resizeRange } from '../../admin/range-resize';
import { MAX_AR_SIZE } from '../../address';
import { printTable, utilisationBar } from '../render';
import { listLeases, listRanges, rangeCells, removeRange, showRange } from '../../admin/range-admin';
import { out, wholeNumber, withDb, write } from '../common';
import { rangeJson, rangeMapText } from '../render';

const rangeList = <T>(y: Argv<T>) =>
  y.command(
    'list',
    'list ranges with their use',
    (y2) => y2.option('space', { type: 'string' }),
    async (args) => {
      const list = await withDb((db) => listRanges(db, { space: args.space }));
      out(args, list.map(rangeJson), () =>
        printTable(
          ['ID', 'SPACE', 'TYPE', 'FIRST', 'LAST', 'SIZE', 'USED', 'PLATFORM', 'USE'],
          list.map((r) => [
            String(r.range.id),
            r.range.spaceName,
            r.range.type,
            r.first,
            r.last,
            String(r.range.size),
            String(r.used),
            r.range.observed ? `${r.range.platform} (observed)` : r.range.platform,
            utilisationBar(r.used, r.range.size, 20),
          ]),
        ),
      );
    },
  );

const rangeShow = <T>(y: Argv<T>) =>
  y.command(
    'show <id>',
    'show one range with a map of its addresses',
    (y2) => y2.positional('id', { type: 'number', demandOption: true }),
    async (args) => {
      const id = wholeNumber(args.id, 'the range id', 1);
      const { info, leases, map } = await withDb(async (db) => {
        const info = await showRange(db, id);
        return { info, leases: await listLeases(db, { rangeId: id, limit: 50 }), map: rangeMapText(await rangeCells(db, info.range)) };
      });
      out(args, { ...rangeJson(info), map, leases }, () => {
        const r = info.range;
        write(
          `range ${r.id}  ${r.type}  ${info.first} - ${info.last}  space ${r.spaceName}  platform ${r.platform}${r.holdSeconds ? `  hold ${r.holdSeconds}s` : ''}\n`,
        );
        write(`size ${r.size}  used ${info.used}  ${utilisationBar(info.used, r.size, 40)}\n`);
        write(
          `  ${map}\n  map: # leased  R reserved  h on hold  : mixed  . free (each character 1/${Math.min(64, r.size)}th of the range)\n`,
        );
        for (const [k, v] of Object.entries(info.byKind)) write(`  ${k}: ${v}\n`);
        write('attributes:\n');
        for (const [k, v] of Object.entries(r.attrs)) write(`  ${k} = ${v}\n`);
        if (leases.length)
          printTable(
            ['FIRST', 'LAST', 'SIZE', 'KIND', 'SINCE', 'REQUEST', 'NOTE'],
            leases.map((l) => [l.first, l.last, String(l.size), l.kind, l.since.toISOString(), l.requestId ?? '', l.note ?? '']),
          );
      });
    },
  );

const rangeRm = <T>(y: Argv<T>) =>
  y.command(
    'rm <id>',
    'remove a range by hand (e.g. a stale registration); refused while it has leases unless --force',
    (y2) => y2.positional('id', { type: 'number', demandOption: true }).option('force', { type: 'boolean', default: false }),
    async (args) => {
      const id = wholeNumber(args.id, 'the range id', 1);
      const r = await withDb((db, ctx) => removeRange(db, id, args.force, ctx));
      out(args, r, () => write(`removed range ${args.id} (released ${r.released} addresses)\n`));
    },
  );

const rangeResize = <T>(y: Argv<T>) =>
  y.command(
    'resize <id>',
    'make a range as large as its AR again after "onevnet updatear" changed the AR\'s SIZE (oned does not tell the driver); refused when it would overlap another range or cut leases',
    (y2) =>
      y2
        .positional('id', { type: 'number', demandOption: true })
        .option('size', { type: 'number', demandOption: true, describe: 'the SIZE the AR has in OpenNebula (onevnet show)' }),
    async (args) => {
      const id = wholeNumber(args.id, 'the range id', 1);
      const size = wholeNumber(args.size, '--size', 1, MAX_AR_SIZE);
      const r = await withDb((db, ctx) => resizeRange(db, id, size, ctx));
      out(args, r, () =>
        write(
          r.from === r.to
            ? `range ${r.rangeId} already has ${r.to} addresses\n`
            : `resized range ${r.rangeId} from ${r.from} to ${r.to} addresses\n`,
        ),
      );
    },
  );

export function rangeCommands<T>(y: Argv<T>): Argv<T> {
  return y.command('range <command>', 'address ranges registered by OpenNebula', (g) =>
    [rangeList, rangeShow, rangeRm, rangeResize].reduce((acc, add) => add(acc), g).demandCommand(1, 'name a range command'),
  );
}
