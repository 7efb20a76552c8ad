// pgipam find: where an address or MAC lives.
import type { Argv } from 'yargs';
import { printTable } from '../render';
import { find } from '../../admin/lookups';
import { out, withDb, write } from '../common';
import { type VlanHolder, vlanHolders } from '../../admin/vlan-pools';

export const vlanHolderText = (h: VlanHolder) =>
  `VLAN ${h.vlanId} of domain ${h.domain}${h.vlanPool ? ` (VLAN pool ${h.vlanPool})` : ''}: ${
    h.rangeId !== null ? `range ${h.rangeId}${h.first ? ` (${h.first})` : ''}, platform ${h.platform}` : `reserved: ${h.reason}`
  }, since ${h.since.toISOString()}`;

export function lookupCommands<T>(y: Argv<T>): Argv<T> {
  return y.command(
    'find <address>',
    'which space, pool, range, platform and lease hold an IP or MAC, and its history; or which network holds a VLAN ID (a number, or vlan:N)',
    (y) => y.positional('address', { type: 'string', demandOption: true }),
    async (args) => {
      const vlan = /^(?:vlan:)?(\d{1,4})$/i.exec(args.address);
      if (vlan) {
        const held = await withDb((db) => vlanHolders(db, { vlanId: Number(vlan[1]) }));
        out(args, { vlan: Number(vlan[1]), held }, () => {
          if (!held.length) write(`VLAN ID ${vlan[1]} is held in no domain\n`);
          for (const h of held) write(`${vlanHolderText(h)}\n`);
        });
        return;
      }
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
