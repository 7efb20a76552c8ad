// allocate_address: marks the address oned names (and the SIZE - 1 after it) as allocated; an
// address on hold is honoured, anything else taken is refused naming its holder.
import { type Db, withTransaction } from '../db/client';
import { IpamError } from '../errors';
import type { IpamRequest } from '../ipam-request';
import type { ActionContext } from './context';
import { allocateAddressOneTrip } from './one-trip';
import { recordHistory } from './history';
import { type LeaseRow, cutLeases, giveFree, insertLease, leasesOverlapping, releaseExpiredHolds, takeFree } from './lease-queries';
import { type RangeRow, addressAt } from './range-queries';
import { parseRequest } from './parsed-request';
import { indexLimit, requireRange } from './range-resolution';
import { requestedAddress } from './requested-address';
import type { AddressResult } from './get-address';

function holderText(range: RangeRow, l: LeaseRow): string {
  // a lease of another owner (pgipam lease, the API) is named by its owner, not by oned's actions
  const what = l.owner
    ? `leased to ${l.owner} (not OpenNebula's)`
    : {
        lease: 'leased by get_address',
        allocation: 'allocated by allocate_address',
        reservation: 'reserved by an operator',
        hold: 'on hold',
      }[l.kind];
  const block =
    l.firstIdx === l.lastIdx ? addressAt(range, l.firstIdx) : `${addressAt(range, l.firstIdx)} - ${addressAt(range, l.lastIdx)}`;
  const note = !l.owner && l.note ? ` (${l.note})` : '';
  const req = l.requestId && l.requestId !== '-' ? `, request ${l.requestId}` : '';
  return `${block} ${what}${note} since ${l.createdAt.toISOString()}${req}`;
}

export interface AllocateResult extends AddressResult {
  wasHeld: boolean;
}

// One round trip when the function of migration 11 can do it (one-trip.ts), else one transaction.
export async function allocateAddress(db: Db, req: IpamRequest, ctx: ActionContext): Promise<AllocateResult> {
  return (await allocateAddressOneTrip(db, req, ctx)) ?? allocateAddressInTransaction(db, req, ctx);
}

// The reference for every case and every refusal: the range's lock, the checks, the work, in one
// transaction (a few round trips).
export async function allocateAddressInTransaction(db: Db, req: IpamRequest, ctx: ActionContext): Promise<AllocateResult> {
  return withTransaction(db, () => allocateAddressInOpenTransaction(db, req, ctx));
}

// The same inside a transaction the caller holds (pgipam lease: under the owner's lock).
export async function allocateAddressInOpenTransaction(db: Db, req: IpamRequest, ctx: ActionContext): Promise<AllocateResult> {
  const { ar, address } = parseRequest(req);
  const count = address.count.value();
  const range = await requireRange(db, ar, ctx);
  const { index, text } = requestedAddress(range, ar, address, indexLimit(range, ar));
  const last = index + count - 1;
  await releaseExpiredHolds(db, range);
  let wasHeld = false;
  if (!(await takeFree(db, range.id, index, last))) {
    const holders = await leasesOverlapping(db, range.id, index, last);
    const taken = holders.filter((l) => l.kind !== 'hold');
    if (taken.length) {
      throw new IpamError(
        'ADDRESS_IN_USE',
        `${text}${count > 1 ? ` + ${count - 1}` : ''} is not free: ${taken
          .slice(0, 3)
          .map((l) => holderText(range, l))
          .join('; ')}`,
      );
    }
    // Only holds stand in the way: an explicit request for a held address is honoured.
    await cutLeases(db, range.id, holders, index, last);
    for (const h of holders) await giveFree(db, range.id, Math.max(h.firstIdx, index), Math.min(h.lastIdx, last));
    if (!(await takeFree(db, range.id, index, last))) throw new IpamError('INTERNAL', `free space of range ${range.id} is inconsistent`);
    wasHeld = true;
    ctx.log(`${text} was on hold; allocated on explicit request`);
  }
  await insertLease(db, range.id, [index, last], 'allocation', ctx, ctx.owner ? { owner: ctx.owner } : {});
  const allocated = addressAt(range, index);
  await recordHistory(db, ctx, {
    event: 'address_allocated',
    spaceId: range.spaceId,
    rangeId: range.id,
    firstIdx: index,
    size: count,
    address: allocated,
    detail: { ...(wasHeld ? { was_held: true } : {}), ...(ctx.owner ? { owner: ctx.owner } : {}) },
  });
  ctx.log(`allocated ${allocated}${count > 1 ? ` + ${count - 1}` : ''} in range ${range.id}`);
  return { rangeId: range.id, index, size: count, ip: allocated, wasHeld };
}
