// What the API and the web view say about pools and ranges: plain JSON (numbers that may pass
// 2^53, an IPv6 prefix's size, as strings) with the utilisation worked out.
import type { PoolInfo } from '../admin/pool-admin';
import type { RangeInfo } from '../admin/range-admin';

const ratio = (used: bigint, size: bigint) => (size === 0n ? 0 : Number((used * 10000n) / size) / 10000);

export function poolJson(p: PoolInfo) {
  return {
    name: p.pool.name,
    space: p.pool.spaceName,
    description: p.pool.description,
    default: p.pool.isDefault,
    restricted: p.pool.restricted,
    vlan: p.vlan ?? (p.pool.vlanId !== null ? { id: p.pool.vlanId } : null),
    ranges: p.ranges,
    prefixes: p.prefixes.map((x) => ({
      prefix: x.prefix,
      family: x.family,
      size: x.size.toString(),
      carved: x.carved.toString(),
      reserved: x.reserved.toString(),
      free: x.free.toString(),
      utilisation: ratio(x.carved + x.reserved, x.size),
      cells: x.cells.map((c) => ratio(c.carved + c.reserved, c.size)),
    })),
    reservations: p.reservations,
  };
}

export function rangeJson(r: RangeInfo) {
  return {
    id: r.range.id,
    type: r.range.type,
    space: r.range.spaceName,
    pool: r.range.poolName,
    platform: r.range.platform,
    first: r.first,
    last: r.last,
    size: r.range.size,
    used: r.used,
    byKind: r.byKind,
    utilisation: r.range.size ? Math.round((r.used / r.range.size) * 10000) / 10000 : 0,
    observed: r.range.observed,
    holdSeconds: r.range.holdSeconds,
    createdAt: r.range.createdAt,
  };
}
