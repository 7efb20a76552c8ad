// free_address: frees the address oned names, even one out of a leased block, and succeeds when
// there is nothing to free (a failed free keeps oned's lease forever).
import { type Db, withTransaction } from '../db/client';
import type { IpamRequest } from '../ipam-request';
import type { ActionContext } from './context';
import { freeAddressOneTrip } from './one-trip';
import { recordHistory } from './history';
import { type LeaseRow, cutLeases, giveFree, insertLease, leasesOverlapping } from './lease-queries';
import { type RangeRow, addressAt } from './range-queries';
import { parseRequest } from './parsed-request';
import { resolveRange } from './range-resolution';
import { requestedAddress, sizeDriftHint } from './requested-address';

export interface FreeResult {
  rangeId: number | null;
  freed: number;
}

// "10.0.0.5" or "10.0.0.5 - 10.0.0.7": how a log line names a span of a range.
function spanText(range: RangeRow, first: number, last: number): string {
  return first === last ? addressAt(range, first) : `${addressAt(range, first)} - ${addressAt(range, last)}`;
}

// One round trip when the function of migration 11 can do it (one-trip.ts), else one transaction.
export async function freeAddress(db: Db, req: IpamRequest, ctx: ActionContext): Promise<FreeResult> {
  return (await freeAddressOneTrip(db, req, ctx)) ?? freeAddressInTransaction(db, req, ctx);
}

// The reference for every case and every refusal: the range's lock, the checks, the work, in one
// transaction (a few round trips).
export async function freeAddressInTransaction(db: Db, req: IpamRequest, ctx: ActionContext): Promise<FreeResult> {
  const { ar, address } = parseRequest(req);
  const count = address.count.value();
  return withTransaction(db, async () => {
    const range = await resolveRange(db, ar, 'no key update', ctx.platform);
    if (!range) {
      // oned keeps a lease whose free fails, forever; an address of a range we do not hold is free.
      ctx.log('no pgipam range for this AR; nothing to free');
      return { rangeId: null, freed: 0 };
    }
    // An address beyond pgipam's range inside an AR that oned grew was never handed out here:
    // freeing it finds nothing, and succeeds (a failed free would keep oned's lease forever).
    const { index, text } = requestedAddress(range, ar, address, Math.max(range.size, ar.size ?? 0));
    const last = index + count - 1;
    if (last >= range.size)
      ctx.log(
        `${text} lies beyond the ${range.size} addresses of range ${range.id}: ${sizeDriftHint(range, ar) ?? 'nothing to free there'}`,
      );
    const leases = await leasesOverlapping(db, range.id, index, last);
    // oned frees its own leases only: one of another owner (pgipam lease, the API) stays
    const freeable = leases.filter((l) => (l.kind === 'lease' || l.kind === 'allocation') && l.owner === null);
    for (const r of leases.filter((l) => l.kind === 'reservation' || l.owner !== null)) {
      const f = Math.max(r.firstIdx, index);
      const la = Math.min(r.lastIdx, last);
      const are = f === la ? 'is' : 'are';
      ctx.log(
        r.owner !== null
          ? `${spanText(range, f, la)} ${are} leased to ${r.owner}, not to OpenNebula; that lease stays`
          : `${spanText(range, f, la)} ${are} reserved by an operator${r.note ? ` (${r.note})` : ''}; the reservation stays`,
      );
    }
    if (!freeable.length) {
      ctx.log(`${text} was already free in range ${range.id}`);
      return { rangeId: range.id, freed: 0 };
    }
    const parts = await freeLeaseParts(db, range, freeable, [index, last], ctx, {
      note: (l) => `freed from ${l.kind}`,
      event: 'address_freed',
      detail: (l) => ({ was: l.kind, hold_seconds: range.holdSeconds }),
    });
    const freed = parts.reduce((n, [f, la]) => n + la - f + 1, 0);
    const holdSecs = range.holdSeconds;
    const spans = parts.map(([f, la]) => spanText(range, f, la));
    ctx.log(
      `freed ${count === 1 ? text : `${spans.join(', ')} (${freed} of the ${count} addresses from ${text})`} in range ${range.id}${holdSecs > 0 ? ` (on hold for ${holdSecs}s)` : ''}`,
    );
    return { rangeId: range.id, freed };
  });
}

// Frees the parts of `leases` inside [first, last] as free_address frees: on hold for the
// range's hold time, or back to the free extents; one history row each. Returns the parts.
// reconcile --fix frees leaks here too (admin/reconcile-repairs.ts).
export async function freeLeaseParts(
  db: Db,
  range: RangeRow,
  leases: readonly LeaseRow[],
  [first, last]: readonly [number, number],
  ctx: ActionContext,
  how: { note: (l: LeaseRow) => string; event: 'address_freed' | 'reconcile_freed'; detail: (l: LeaseRow) => Record<string, unknown> },
): Promise<Array<[number, number]>> {
  await cutLeases(db, range.id, leases, first, last);
  const parts: Array<[number, number]> = [];
  for (const l of leases) {
    const f = Math.max(l.firstIdx, first);
    const la = Math.min(l.lastIdx, last);
    parts.push([f, la]);
    if (range.holdSeconds > 0) await insertLease(db, range.id, [f, la], 'hold', ctx, { holdSeconds: range.holdSeconds, note: how.note(l) });
    else await giveFree(db, range.id, f, la);
    await recordHistory(db, ctx, {
      event: how.event,
      spaceId: range.spaceId,
      rangeId: range.id,
      firstIdx: f,
      size: la - f + 1,
      address: addressAt(range, f),
      detail: how.detail(l),
    });
  }
  return parts;
}
