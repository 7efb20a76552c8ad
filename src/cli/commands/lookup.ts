// pgipam find: where an address or MAC lives.
import type { Argv } from 'yargs';
import { printTable } from '../render';
import { find } from '../../admin/lookups';
import { out, withDb, write } from '../common';

export function lookupCommands<T>(y: Argv<T>): Argv<T> {
  return y.command(
    'find <address>',
    'which space, pool, range, platform and lease hold an IP or MAC, and its history',
    (y) => y.positional('address', { type: 'string', demandOption: true }),
    async (args) => {
      const r = await withDb((db) => find(db, args.address));
      out(args, r, () => {
        if (!r.matches.length) write(`${args.address} is in no range and no pool\n`);
        for (const m of r.matches) {
          write(
            `space ${m.space}  pool ${m.pool ?? '-'}  ${m.range ? `range ${m.range.id} (${m.range.type} ${m.range.first} - ${m.range.last}, platform ${m.range.platform})` : 'no range'}\n`,
          );
          if (m.poolReservation) write(`  reserved in the pool: ${m.poolReservation}\n`);
          if (m.range)
            write(
              m.lease
                ? `  ${m.lease.kind}${m.lease.first !== m.lease.last ? ` of ${m.lease.first} - ${m.lease.last}` : ''} since ${m.lease.since.toISOString()}${m.lease.requestId ? `, request ${m.lease.requestId}` : ''}${m.lease.note ? `: ${m.lease.note}` : ''}${m.lease.heldUntil ? `, held until ${m.lease.heldUntil.toISOString()}` : ''}\n`
                : '  free\n',
            );
          if (m.history.length)
            printTable(
              ['AT', 'EVENT', 'ADDRESS', 'SIZE', 'PLATFORM', 'REQUEST'],
              m.history.map((h) => [
                h.at.toISOString(),
                h.event,
                h.address ?? '',
                String(h.size ?? ''),
                h.platform ?? '',
                h.requestId ?? '',
              ]),
            );
        }
      });
    },
  );
}
