// Addresses a range keeps out of allocation from the moment it holds them: its network, broadcast
// and gateway addresses, and the pool reservations that fall inside it. Register applies them to a
// new range, `pgipam range resize` to the part a range grows by. Pool reservations are found and
// reserved by the database (migration 4) past row-level security, as operator-owned leases that
// the range's platform cannot delete.
import type { Db } from '../db/client';
import { formatIPv4, formatIPv6 } from '../address';
import { type Family, poolDnsIPv4, poolReservationsOverlapping } from './pool-space';
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

// What an explicit AR's span holds that pgipam keeps out of allocation -- network, broadcast,
// gateway, the pool's DNS servers, operators' reservations: up to 5 named as "10.0.0.1 (gateway)",
// and how many addresses they are in all (issue 12: the AR's SIZE must be what get_address can
// hand out, so such an AR is refused, saying so).
export async function keptInsideSpan(
  db: Db,
  spec: RangeSpec,
  spaceId: number,
  poolDns: string,
): Promise<{ named: string[]; count: number; runs: Array<[number, number]> }> {
  const named: string[] = [];
  // offsets into the AR, [first, last]
  const kept: Array<[bigint, bigint]> = [];
  for (const k of infrastructureAddresses(spec)) {
    named.push(`${formatIPv4(spec.ip4First! + k.first)} (${k.note})`);
    kept.push([BigInt(k.first), BigInt(k.last)]);
  }
  if (spec.ip4First !== null) {
    for (const ip of poolDnsIPv4(poolDns)) {
      if (ip < spec.ip4First || ip >= spec.ip4First + spec.size) continue;
      named.push(`${formatIPv4(ip)} (the pool's DNS server)`);
      kept.push([BigInt(ip - spec.ip4First), BigInt(ip - spec.ip4First)]);
    }
  }
  const spans: Array<[Family, bigint]> = [];
  if (spec.ip4First !== null) spans.push([4, BigInt(spec.ip4First)]);
  if (spec.ip6First !== null) spans.push([6, spec.ip6First]);
  for (const [family, first] of spans) {
    const last = first + BigInt(spec.size) - 1n;
    for (const r of await poolReservationsOverlapping(db, spaceId, family, first, last)) {
      // the part inside the AR
      const [f, l] = [r.first > first ? r.first : first, r.last < last ? r.last : last];
      const text = (x: bigint) => (family === 4 ? formatIPv4(Number(x)) : formatIPv6(x));
      named.push(`${f === l ? text(f) : `${text(f)} - ${text(l)}`} (reserved: ${r.reason})`);
      kept.push([f - first, l - first]);
    }
  }
  // the union of what is kept, as merged runs of offsets, counted once
  kept.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const runs: Array<[number, number]> = [];
  for (const [f, l] of kept) {
    const prev = runs[runs.length - 1];
    if (prev && Number(f) <= prev[1] + 1) prev[1] = Math.max(prev[1], Number(l));
    else runs.push([Number(f), Number(l)]);
  }
  const count = runs.reduce((n, [f, l]) => n + l - f + 1, 0);
  return { named: named.slice(0, 5), count, runs };
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
