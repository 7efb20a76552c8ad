// pgipam lease list, get, take and free: the address space's leases, and leases for what is not
// OpenNebula (bare metal, VIPs, appliances: admin/owned-leases.ts).
import type { Argv } from 'yargs';
import { printTable } from '../render';
import { listLeases } from '../../admin/range-admin';
import { type OwnedLease, leaseFree, leaseGet, leaseTake } from '../../admin/owned-leases';
import { out, wholeNumber, withDb, write } from '../common';

const said = (l: OwnedLease) =>
  `${l.created ? 'leased' : 'already leased'} ${l.ip}${l.size > 1 ? ` + ${l.size - 1}` : ''} to ${l.owner} (range ${l.rangeId}${l.pool ? `, pool ${l.pool}` : ''})\n`;

export function leaseCommands<T>(y: Argv<T>): Argv<T> {
  return y.command('lease <command>', 'leases, allocations, reservations and holds; leases for bare metal and appliances', (y) =>
    ownedLeaseCommands(y)
      .command(
        'list',
        'list them',
        (y2) =>
          y2
            .option('range', { type: 'number' })
            .option('kind', { type: 'string', choices: ['lease', 'allocation', 'reservation', 'hold'] })
            .option('owner', { type: 'string', describe: 'only the leases of this kind/name' })
            .option('limit', { type: 'number', default: 1000 }),
        async (args) => {
          const rangeId = args.range === undefined ? undefined : wholeNumber(args.range, '--range', 1);
          const limit = wholeNumber(args.limit, '--limit', 1, 1_000_000);
          const list = await withDb((db) => listLeases(db, { rangeId, kind: args.kind, owner: args.owner, limit }));
          out(args, list, () =>
            printTable(
              ['RANGE', 'FIRST', 'LAST', 'SIZE', 'KIND', 'OWNER', 'SINCE', 'REQUEST', 'NOTE'],
              list.map((l) => [
                String(l.rangeId),
                l.first,
                l.last,
                String(l.size),
                l.kind,
                l.owner ?? '',
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

// get, take and free: leases for what is not OpenNebula
function ownedLeaseCommands<T>(y: Argv<T>): Argv<T> {
  return y
    .command(
      'get',
      'lease the lowest free address (or block) of a pool or range to an owner; again for the same owner, the same lease',
      (y2) =>
        y2
          .option('owner', { type: 'string', demandOption: true, describe: 'kind/name, e.g. baremetal/srv-42' })
          .option('pool', { type: 'string' })
          .option('range', { type: 'number' })
          .option('size', { type: 'number', default: 1 }),
      async (args) => {
        const rangeId = args.range === undefined ? undefined : wholeNumber(args.range, '--range', 1);
        const size = wholeNumber(args.size, '--size', 1, 65536);
        const l = await withDb((db, ctx) => leaseGet(db, { owner: args.owner, pool: args.pool, rangeId, size }, ctx));
        out(args, l, () => write(said(l)));
      },
    )
    .command(
      'take <ip>',
      'lease this address (and --size - 1 after it) to an owner; again for the same owner, the same lease',
      (y2) =>
        y2
          .positional('ip', { type: 'string', demandOption: true })
          .option('owner', { type: 'string', demandOption: true, describe: 'kind/name, e.g. vip/web' })
          .option('space', { type: 'string', default: 'default' })
          .option('size', { type: 'number', default: 1 }),
      async (args) => {
        const size = wholeNumber(args.size, '--size', 1, 65536);
        const l = await withDb((db, ctx) => leaseTake(db, { owner: args.owner, ip: args.ip, space: args.space, size }, ctx));
        out(args, l, () => write(said(l)));
      },
    )
    .command(
      'free <ip>',
      "free the owner's lease that holds this address (free already: nothing to do)",
      (y2) =>
        y2
          .positional('ip', { type: 'string', demandOption: true })
          .option('owner', { type: 'string', describe: "only when it is this owner's" })
          .option('space', { type: 'string', default: 'default' }),
      async (args) => {
        const r = await withDb((db, ctx) => leaseFree(db, { ip: args.ip, owner: args.owner, space: args.space }, ctx));
        out(args, r, () =>
          write(
            r.freed
              ? `freed ${r.freed.ip}${r.freed.size > 1 ? ` + ${r.freed.size - 1}` : ''} of ${r.freed.owner}\n`
              : `${args.ip} was free already\n`,
          ),
        );
      },
    );
}
