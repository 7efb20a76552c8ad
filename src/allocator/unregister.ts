// unregister_address_range: removes the range with its leases and returns its subnets to their
// pools; succeeds when the range is already gone.
import { type Db, withTransaction } from '../db/client';
import { isIpamError } from '../errors';
import type { IpamRequest } from '../ipam-request';
import type { ActionContext } from './context';
import { recordHistory } from './history';
import { lockPools } from './locks';
import { describeBlock, rangePoolIds, releaseRangeBlocks } from './pool-space';
import { type RangeRow, addressAt, deleteRange, describeRange, rangeUsage } from './range-queries';
import { parseRequest } from './parsed-request';
import { releaseRangeVlans } from './vlans';
import { findRangeId, lockNamedRange } from './range-resolution';

export interface UnregisterResult {
  rangeId: number | null;
  released: number;
}

export async function unregisterAddressRange(db: Db, req: IpamRequest, ctx: ActionContext): Promise<UnregisterResult> {
  const { ar } = parseRequest(req);
  return withTransaction(db, async () => {
    let id: number | null;
    try {
      id = await findRangeId(db, ar);
    } catch (e) {
      // An AR in a space that no longer exists cannot have a range left.
      if (isIpamError(e, 'SPACE_NOT_FOUND')) id = null;
      else throw e;
    }
    // the lock order of locks.ts: the range's pools, then the range
    if (id !== null) await lockPools(db, await rangePoolIds(db, id));
    const range = id === null ? null : await lockNamedRange(db, id, ar, 'update', ctx.platform);
    if (!range) {
      ctx.log('no pgipam range for this AR; already unregistered');
      return { rangeId: null, released: 0 };
    }
    const usage = await rangeUsage(db, range.id);
    await dropRange(db, range, ctx, 'range_unregistered', { released: usage.byKind });
    ctx.log(`unregistered ${describeRange(range)}; released ${usage.used} leased, reserved or held addresses`);
    return { rangeId: range.id, released: usage.used };
  });
}

// Removes a range whose pools and row are locked (in the order of locks.ts), with everything it
// holds: its subnets go back to their pools, its VLAN IDs to their VLAN pools, its leases with it.
// unregister_address_range, "pgipam range rm" and "reconcile --fix" all remove ranges here, so
// none can forget a part. One history row, recorded while the range exists: a platform writes
// history only about its own ranges.
export async function dropRange(
  db: Db,
  range: RangeRow,
  ctx: ActionContext,
  event: 'range_unregistered' | 'range_removed' | 'reconcile_range_removed',
  detail: Record<string, unknown>,
): Promise<void> {
  const blocks = await releaseRangeBlocks(db, range.id);
  const vlans = await releaseRangeVlans(db, range, ctx);
  await recordHistory(db, ctx, {
    event,
    spaceId: range.spaceId,
    rangeId: range.id,
    firstIdx: 0,
    size: range.size,
    address: addressAt(range, 0),
    detail: { ...detail, returned_to_pool: blocks.map(describeBlock), vlans },
  });
  await deleteRange(db, range.id);
}
