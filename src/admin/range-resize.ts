// `pgipam range resize`: makes a range's size agree with its AR again after `onevnet updatear`
// changed the AR's SIZE, which oned does without calling the driver (src/driver/PROTOCOL.md §6, §15).
//
// Growing adds the new addresses as free space (keeping the network, broadcast and gateway
// addresses and the pool reservations in it reserved, as registration does), and is refused when
// the new addresses overlap another range of the space, leave the subnets the range holds in its
// pool, or enter a pool the range is not part of. Shrinking is refused while anything but an
// operator's reservation is leased, allocated or on hold in the part cut off.
import { formatMac } from '../address';
import { type Db, withTransaction } from '../db/client';
import { IpamError } from '../errors';
import type { ActionContext } from '../allocator/context';
import { reserveKeptAddresses } from '../allocator/kept-addresses';
import { rangeSpecFromAr } from '../allocator/range-spec';
import { type Family, formatAddress, rangePoolIds } from '../allocator/pool-space';
import { type RangeRow, addressAt, describeRange, overlappingRanges } from '../allocator/range-queries';
import { cutLeases, giveFree, leasesOverlapping } from '../allocator/lease-queries';
import { lockPools, lockRange } from '../allocator/locks';
import { recordHistory } from '../allocator/history';

export interface ResizeResult {
  rangeId: number;
  from: number;
  to: number;
}

// The spans of the range's addresses between two indexes, per family, as in the pool tables.
function spans(range: RangeRow, from: number, to: number): Array<{ family: Family; first: bigint; last: bigint }> {
  const out: Array<{ family: Family; first: bigint; last: bigint }> = [];
  if (range.ip4First !== null) out.push({ family: 4, first: BigInt(range.ip4First + from), last: BigInt(range.ip4First + to) });
  if (range.ip6First !== null) out.push({ family: 6, first: range.ip6First + BigInt(from), last: range.ip6First + BigInt(to) });
  return out;
}

async function checkGrowth(db: Db, range: RangeRow, size: number): Promise<void> {
  const others = (
    await overlappingRanges(db, range.spaceId, {
      ip4: range.ip4First !== null ? [range.ip4First + range.size, range.ip4First + size] : undefined,
      ip6: range.ip6First !== null ? [range.ip6First + BigInt(range.size), range.ip6First + BigInt(size)] : undefined,
      mac: range.macFirst !== null ? [range.macFirst + range.size, range.macFirst + size] : undefined,
    })
  ).filter((o) => o.id !== range.id);
  if (others.length)
    throw new IpamError(
      'RANGE_OVERLAP',
      `growing ${describeRange(range)} to ${size} addresses would overlap ${others.map(describeRange).join('; ')}`,
    );
  for (const s of spans(range, range.size, size - 1)) {
    const span = [range.id, s.family, s.first.toString(), s.last.toString()];
    if (range.poolId !== null) {
      // the blocks a range holds never overlap, so their overlaps with the new part add up
      const { rows } = await db.query<{ covered: string }>(
        `select coalesce(sum(least(last, $4::numeric) - greatest(network, $3::numeric) + 1), 0)::text as covered
           from pgipam.pool_allocation where range_id = $1 and family = $2 and span && numrange($3::numeric, $4::numeric, '[]')`,
        span,
      );
      if (BigInt(rows[0]!.covered) !== s.last - s.first + 1n) {
        throw new IpamError(
          'CONFLICT',
          `growing ${describeRange(range)} to ${size} addresses would take ${formatAddress(s.family, s.first)} - ${formatAddress(s.family, s.last)}, which is not in the subnets it holds in its pool: register a new AR instead`,
        );
      }
    } else {
      const { rows } = await db.query<{ name: string }>(
        `select p.name from pgipam.pool_prefix x join pgipam.pool p on p.id = x.pool_id
          where x.space_id = (select space_id from pgipam.address_range where id = $1) and x.family = $2 and x.span && numrange($3::numeric, $4::numeric, '[]') limit 1`,
        span,
      );
      if (rows[0])
        throw new IpamError('CONFLICT', `growing ${describeRange(range)} to ${size} addresses would enter pool "${rows[0].name}"`);
    }
  }
}

export async function resizeRange(db: Db, id: number, size: number, ctx: ActionContext): Promise<ResizeResult> {
  return withTransaction(db, async () => {
    await lockPools(db, await rangePoolIds(db, id));
    const range = await lockRange(db, id, 'update');
    if (!range) throw new IpamError('NOT_FOUND', `no range ${id}`);
    const from = range.size;
    // The new size must make an AR oned accepts and pgipam can hold (bounds, wrap, network fit).
    const attrs: Record<string, string> = { ...range.attrs, TYPE: range.type, SIZE: String(size) };
    if (range.macFirst !== null) attrs.MAC = formatMac(range.macFirst);
    const spec = rangeSpecFromAr(attrs);
    if (size === from) return { rangeId: id, from, to: size };

    if (size > from) {
      await checkGrowth(db, range, size);
    } else {
      const cut = await leasesOverlapping(db, id, size, from - 1);
      const taken = cut.filter((l) => l.kind !== 'reservation');
      if (taken.length) {
        const l = taken[0]!;
        throw new IpamError(
          'CONFLICT',
          `cannot shrink ${describeRange(range)} to ${size} addresses: ${addressAt(range, Math.max(l.firstIdx, size))} is ${l.kind === 'hold' ? 'on hold' : l.kind === 'lease' ? 'leased' : 'allocated'} since ${l.createdAt.toISOString()}`,
        );
      }
      await cutLeases(db, id, cut, size, from - 1);
      await db.query('delete from pgipam.free_extent where range_id = $1 and first_idx >= $2', [id, size]);
      await db.query('update pgipam.free_extent set last_idx = $2 - 1 where range_id = $1 and last_idx >= $2', [id, size]);
    }
    // The schema refuses a size change that the transaction did not announce (migration 3).
    await db.query(`select set_config('pgipam.resize_range', $1, true)`, [String(id)]);
    await db.query(
      `update pgipam.address_range set size = $2::int8, attrs = jsonb_set(attrs, '{SIZE}', to_jsonb($2::int8::text)) where id = $1`,
      [id, size],
    );
    if (size > from) {
      await giveFree(db, id, from, size - 1);
      await reserveKeptAddresses(db, { ...range, size }, spec, from, size - 1, ctx);
    }
    await recordHistory(db, ctx, {
      event: 'range_resized',
      spaceId: range.spaceId,
      rangeId: id,
      firstIdx: 0,
      size,
      address: addressAt(range, 0),
      detail: { from, to: size },
    });
    return { rangeId: id, from, to: size };
  });
}
