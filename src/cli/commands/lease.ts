// pgipam lease list.
import type { Argv } from 'yargs';
import { printTable } from '../render';
import { listLeases } from '../../admin/range-admin';
import { out, wholeNumber, withDb } from '../common';

export function leaseCommands<T>(y: Argv<T>): Argv<T> {
  return y.command('lease <command>', 'leases, allocations, reservations and holds', (y) =>
    y
      .command(
        'list',
        'list them',
        (y2) =>
          y2
            .option('range', { type: 'number' })
            .option('kind', { type: 'string', choices: ['lease', 'allocation', 'reservation', 'hold'] })
            .option('limit', { type: 'number', default: 1000 }),
        async (args) => {
          const rangeId = args.range === undefined ? undefined : wholeNumber(args.range, '--range', 1);
          const limit = wholeNumber(args.limit, '--limit', 1, 1_000_000);
          const list = await withDb((db) => listLeases(db, { rangeId, kind: args.kind, limit }));
          out(args, list, () =>
            printTable(
              ['RANGE', 'FIRST', 'LAST', 'SIZE', 'KIND', 'SINCE', 'REQUEST', 'NOTE'],
              list.map((l) => [
                String(l.rangeId),
                l.first,
                l.last,
                String(l.size),
                l.kind,
                l.since.toISOString(),
                l.requestId ?? '',
                l.note ?? '',
              ]),
            ),
          );
        },
      )
      .demandCommand(1, 'name a lease command'),
  );
}
