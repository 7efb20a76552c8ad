// pgipam reserve and unreserve.
import type { Argv } from 'yargs';
import { reserve, unreserve } from '../../admin/reservations';
import { out, withDb, write } from '../common';

export function reservationCommands<T>(y: Argv<T>): Argv<T> {
  return y
    .command(
      'reserve <target>',
      'keep an address, a first-last span or a prefix out of allocation',
      (y) =>
        y
          .positional('target', { type: 'string', demandOption: true })
          .option('reason', { type: 'string', demandOption: true })
          .option('space', { type: 'string', default: 'default' }),
      async (args) => {
        const r = await withDb((db, ctx) => reserve(db, args.target, args.reason, args.space, ctx));
        out(args, r, () =>
          write(
            `reserved ${args.target}: ${[...r.inRanges.map((x) => `${x.count} in range ${x.rangeId}`), ...r.inPools.map((x) => `${x.count} in pool ${x.pool}`)].join(', ')}\n`,
          ),
        );
      },
    )
    .command(
      'unreserve <target>',
      'release reservations in an address, span or prefix',
      (y) => y.positional('target', { type: 'string', demandOption: true }).option('space', { type: 'string', default: 'default' }),
      async (args) => {
        const r = await withDb((db, ctx) => unreserve(db, args.target, args.space, ctx));
        out(args, r, () => write(`released ${r.released} reserved addresses in ranges and ${r.poolReservations} pool reservations\n`));
      },
    );
}
