// get_address: leases the lowest block of SIZE contiguous free addresses of an IPv4-bearing range.
import { type Db, withTransaction } from '../db/client';
import { IpamError, badRequest } from '../errors';
import type { IpamRequest } from '../ipam-request';
import type { ActionContext } from './context';
import { getAddressOneTrip } from './one-trip';
import { formatIPv4 } from '../address';
import { releaseExpiredHolds, leaseFirstFit } from './lease-queries';
import { hasIPv4 } from './range-spec';
import { describeRange, rangeUsage } from './range-queries';
import { parseRequest } from './parsed-request';
import { indexLimit, requireRange } from './range-resolution';
import { sizeDriftHint } from './requested-address';

export interface AddressResult {
  rangeId: number;
  index: number;
  size: number;
  ip: string;
}

// One round trip when the function of migration 11 can do it (one-trip.ts), else one transaction.
export async function getAddress(db: Db, req: IpamRequest, ctx: ActionContext): Promise<AddressResult> {
  return (await getAddressOneTrip(db, req, ctx)) ?? getAddressInTransaction(db, req, ctx);
}

// The reference for every case and every refusal: the range's lock, the checks, the work, in one
// transaction (a few round trips).
export async function getAddressInTransaction(db: Db, req: IpamRequest, ctx: ActionContext): Promise<AddressResult> {
  return withTransaction(db, () => getAddressInOpenTransaction(db, req, ctx));
}

// The same inside a transaction the caller holds (pgipam lease: under the owner's lock).
export async function getAddressInOpenTransaction(db: Db, req: IpamRequest, ctx: ActionContext): Promise<AddressResult> {
  const { ar, address } = parseRequest(req);
  const count = address.count.value();
  const range = await requireRange(db, ar, ctx);
  if (!hasIPv4(range.type)) {
    throw badRequest(
      `get_address needs an IPv4 range (IP4, IP4_6, IP4_6_STATIC); OpenNebula cannot take an automatic address from a ${range.type} AR: ask for a specific IP6 or MAC instead`,
    );
  }
  const limit = indexLimit(range, ar);
  if (count > limit) throw badRequest(`ADDRESS SIZE ${count} is larger than ${describeRange(range)}`);
  await releaseExpiredHolds(db, range);
  const first = await leaseFirstFit(db, range, count, limit, ctx);
  if (first === null) {
    const usage = await rangeUsage(db, range.id);
    const drift = sizeDriftHint(range, ar);
    throw new IpamError(
      'NO_FREE_ADDRESS',
      `no ${count === 1 ? 'free address' : `block of ${count} contiguous free addresses`} in ${describeRange(range)}: ${usage.used} of ${range.size} in use${drift ? `; ${drift}` : ''}`,
    );
  }
  const ip = formatIPv4(range.ip4First! + first);
  ctx.log(`leased ${ip}${count > 1 ? ` + ${count - 1}` : ''} from range ${range.id}`);
  return { rangeId: range.id, index: first, size: count, ip };
}
