// Addresses a range keeps out of allocation from the moment it holds them: its network, broadcast
// and gateway addresses, and the pool reservations that fall inside it. Register applies them to a
// new range, `pgipam range resize` to the part a range grows by. Pool reservations are found and
// reserved by the database (migration 4) past row-level security, as operator-owned leases that
// the range's platform cannot delete.
import type { Db } from '../db/client';
import type { ActionContext } from './context';
import type { RangeSpec } from './range-spec';
import { type RangeRow } from './range-queries';
import { freeParts, insertLease, takeFree } from './lease-queries';

interface Kept {
  first: number;
  last: number;
  note: string;
}

// Reserves, in [from, to] of the range, every kept address that is still free.
export async function reserveKeptAddresses(
  db: Db,
  range: RangeRow,
  spec: RangeSpec,
  from: number,
  to: number,
  ctx: ActionContext,
): Promise<void> {
  for (const r of infrastructureAddresses(spec)) {
    const first = Math.max(r.first, from);
    const last = Math.min(r.last, to);
    if (first > last) continue;
    for (const [f, l] of await freeParts(db, range.id, first, last)) {
      await takeFree(db, range.id, f, l);
      await insertLease(db, range.id, [f, l], 'reservation', ctx, { note: r.note });
    }
  }
  await db.query('select pgipam.range_reserve_pool_reservations($1::int8, $2::int8, $3::int8, $4::text)', [
    range.id,
    from,
    to,
    ctx.requestId,
  ]);
}

// Network, broadcast and gateway addresses that fall inside the range are never handed out.
function infrastructureAddresses(spec: RangeSpec): Kept[] {
  const out: Kept[] = [];
  if (spec.ip4First === null) return out;
  const inRange = (ip: number) => ip >= spec.ip4First! && ip < spec.ip4First! + spec.size;
  const add = (ip: number, note: string) => {
    const i = ip - spec.ip4First!;
    if (inRange(ip) && !out.some((o) => o.first === i)) out.push({ first: i, last: i, note });
  };
  if (spec.network4 && spec.network4.prefix <= 30) {
    const net = spec.network4.network;
    add(net, 'network address');
    add(net + 2 ** (32 - spec.network4.prefix) - 1, 'broadcast address');
  }
  if (spec.gateway4 !== null) add(spec.gateway4, 'gateway');
  return out;
}
