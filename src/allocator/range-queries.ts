// The allocator's SQL about ranges: reading them (RangeRow), finding them by address, and the
// few writes a range row gets (creation, its reply, its MAC, deletion). Locking is in locks.ts.
import type { Db } from '../db/client';
import { IpamError } from '../errors';
import { formatIPv4, formatIPv6, formatMac, ip6AtIndex, macAtIndex } from '../address';
import type { ArType, RangeAddresses, RangeSpec } from './range-spec';

export const DEFAULT_SPACE = 'default';

export interface RangeRow extends RangeAddresses {
  id: number;
  spaceId: number;
  spaceName: string;
  attrs: Record<string, string>;
  createdAt: Date;
  poolId: number | null;
  // the pool's name and whether it is restricted; null name: the pool is hidden from this platform
  poolName: string | null;
  poolRestricted: boolean;
  platform: string;
  holdSeconds: number;
  // recorded by pgipam import from oned's internal IPAM (or another driver): never leased from
  observed: boolean;
}

export const RANGE_COLUMNS = `r.id::int8::text as id, r.space_id::text as space_id, s.name as space_name, r.ar_type, r.size::text as size,
  r.ip4_first::text as ip4_first, r.ip6_first::text as ip6_first, r.prefix_length, r.mac_first::text as mac_first,
  r.attrs, r.created_at, r.pool_id::text as pool_id, r.platform, r.hold_seconds, r.observed, p.name as pool_name, coalesce(p.restricted, false) as pool_restricted`;
// every query that reads RANGE_COLUMNS joins these
export const RANGE_JOINS = `pgipam.address_range r join pgipam.space s on s.id = r.space_id left join pgipam.pool p on p.id = r.pool_id`;

export interface RawRange {
  id: string;
  space_id: string;
  space_name: string;
  ar_type: ArType;
  size: string;
  ip4_first: string | null;
  ip6_first: string | null;
  prefix_length: number | null;
  mac_first: string | null;
  attrs: Record<string, string>;
  created_at: Date;
  pool_id: string | null;
  platform: string;
  hold_seconds: number;
  observed: boolean;
  pool_name: string | null;
  pool_restricted: boolean;
}

export function toRange(r: RawRange): RangeRow {
  return {
    id: Number(r.id),
    spaceId: Number(r.space_id),
    spaceName: r.space_name,
    type: r.ar_type,
    size: Number(r.size),
    ip4First: r.ip4_first === null ? null : Number(r.ip4_first),
    ip6First: r.ip6_first === null ? null : BigInt(r.ip6_first),
    prefixLength: r.prefix_length,
    macFirst: r.mac_first === null ? null : Number(r.mac_first),
    attrs: r.attrs,
    createdAt: r.created_at,
    poolId: r.pool_id === null ? null : Number(r.pool_id),
    poolName: r.pool_name,
    poolRestricted: r.pool_restricted,
    platform: r.platform,
    holdSeconds: r.hold_seconds,
    observed: r.observed,
  };
}

export async function spaceIdByName(db: Db, name: string): Promise<number> {
  const { rows } = await db.query<{ id: string }>('select id::text from pgipam.space where name = $1', [name]);
  if (!rows[0])
    throw new IpamError(
      'SPACE_NOT_FOUND',
      `address space "${name}" does not exist: create it with "pgipam space add ${name}" or fix PGIPAM_SPACE`,
    );
  return Number(rows[0].id);
}

export async function findRangeByFirst(db: Db, spaceId: number, key: { ip4?: number; ip6?: bigint; mac?: number }): Promise<number | null> {
  let where: string;
  let value: string;
  if (key.ip4 !== undefined) {
    where = 'ip4_first = $2';
    value = String(key.ip4);
  } else if (key.ip6 !== undefined) {
    where = 'ip6_first = $2::numeric';
    value = key.ip6.toString();
  } else if (key.mac !== undefined) {
    where = 'mac_first = $2';
    value = String(key.mac);
  } else return null;
  const { rows } = await db.query<{ id: string }>(`select id::text from pgipam.address_range where space_id = $1 and ${where}`, [
    spaceId,
    value,
  ]);
  return rows[0] ? Number(rows[0].id) : null;
}

export async function getRange(db: Db, id: number): Promise<RangeRow | null> {
  const { rows } = await db.query<RawRange>(`select ${RANGE_COLUMNS} from ${RANGE_JOINS} where r.id = $1`, [id]);
  return rows[0] ? toRange(rows[0]) : null;
}

// The ranges of a space that overlap the given spans, to name them when a registration collides.
export async function overlappingRanges(
  db: Db,
  spaceId: number,
  spans: { ip4?: [number, number]; ip6?: [bigint, bigint]; mac?: [number, number] },
): Promise<RangeRow[]> {
  const { rows } = await db.query<RawRange>(
    `select ${RANGE_COLUMNS} from ${RANGE_JOINS}
      where r.space_id = $1 and (
        ($2::int8 is not null and r.ip4_span && int8range($2::int8, $3::int8))
        or ($4::numeric is not null and r.ip6_span && numrange($4::numeric, $5::numeric))
        or ($6::int8 is not null and r.mac_span && int8range($6::int8, $7::int8)))
      order by r.id limit 3`,
    [
      spaceId,
      spans.ip4?.[0] ?? null,
      spans.ip4?.[1] ?? null,
      spans.ip6?.[0].toString() ?? null,
      spans.ip6?.[1].toString() ?? null,
      spans.mac?.[0] ?? null,
      spans.mac?.[1] ?? null,
    ],
  );
  return rows.map(toRange);
}

// How a person names the address at an index of a range.
export function addressAt(range: RangeAddresses, index: number): string {
  if (range.ip4First !== null) return formatIPv4(range.ip4First + index);
  if (range.ip6First !== null) return formatIPv6(ip6AtIndex(range.ip6First, index));
  if (range.macFirst !== null) return formatMac(macAtIndex(range.macFirst, index));
  return `index ${index}`;
}

export function describeRange(range: RangeRow): string {
  const first =
    range.ip4First !== null || range.ip6First !== null || range.macFirst !== null
      ? `${addressAt(range, 0)} - ${addressAt(range, range.size - 1)}`
      : `${range.size} addresses`;
  return `range ${range.id} (${range.type} ${first}, space ${range.spaceName})`;
}

// Inserts a new range; throws pg's exclusion violation (23P01) when it overlaps another range.
// `id` re-creates a range under the id oned still knows it by (reconcile --fix, import): the
// identity sequence is then moved past it, so that no later registration collides with it.
export async function insertRange(
  db: Db,
  spaceId: number,
  spec: RangeSpec,
  o: { holdSeconds: number; requestId: string; poolId: number | null; platform: string; id?: number; observed?: boolean },
): Promise<number> {
  const { rows } = await db.query<{ id: string }>(
    `insert into pgipam.address_range (space_id, ar_type, size, ip4_first, ip6_first, prefix_length, mac_first, hold_seconds, request_id, pool_id, platform, observed, id)
     overriding system value
     values ($1, $2, $3, $4, $5::numeric, $6, $7, $8, $9, $10, $11, $12,
             coalesce($13::int8, pg_catalog.nextval(pg_catalog.pg_get_serial_sequence('pgipam.address_range', 'id'))))
     returning id::text`,
    [
      spaceId,
      spec.type,
      spec.size,
      spec.ip4First,
      spec.ip6First?.toString() ?? null,
      spec.prefixLength,
      spec.macFirst,
      o.holdSeconds,
      o.requestId,
      o.poolId,
      o.platform,
      o.observed ?? false,
      o.id ?? null,
    ],
  );
  if (o.id !== undefined) {
    // Moves the sequence forward to the id when it has not got there, never back: a nextval that
    // runs between reading last_value and setval gave a value at most the id, so none is given twice
    // (one equal to the id fails that registration on the primary key).
    await db.query(
      `select case when $1::int8 > coalesce(pg_catalog.pg_sequence_last_value(x.seq), 0) then pg_catalog.setval(x.seq, $1::int8) end
         from (select pg_catalog.pg_get_serial_sequence('pgipam.address_range', 'id')::regclass as seq) x`,
      [o.id],
    );
  }
  return Number(rows[0]!.id);
}

// The AR as pgipam replied it to oned.
export async function setRangeAttrs(db: Db, id: number, attrs: Record<string, string>): Promise<void> {
  await db.query('update pgipam.address_range set attrs = $2 where id = $1', [id, JSON.stringify(attrs)]);
}

// A new range is free from its first index to its last.
export async function initFreeSpace(db: Db, id: number, size: number): Promise<void> {
  await db.query('insert into pgipam.free_extent (range_id, first_idx, last_idx) values ($1, 0, $2)', [id, size - 1]);
}

// Records the MAC oned gave a range after registration, unless another range of the space holds
// that MAC span or the range's pool is no longer granted; returns whether it was recorded.
export async function recordRangeMacOnce(db: Db, range: RangeRow, mac: number): Promise<boolean> {
  await db.query('savepoint record_mac');
  try {
    const { rowCount } = await db.query(
      `update pgipam.address_range r set mac_first = $2 where r.id = $1 and r.mac_first is null
          and (r.pool_id is null or pgipam.pool_allowed(r.pool_id))
          and not exists (select 1 from pgipam.address_range o where o.space_id = r.space_id and o.id <> r.id
                           and o.mac_span && int8range($2::int8, $2::int8 + r.size))`,
      [range.id, mac],
    );
    await db.query('release savepoint record_mac');
    return (rowCount ?? 0) > 0;
  } catch (e) {
    // a concurrent registration took the MAC span first, or this role may not update ranges
    if (!['23P01', '42501'].includes((e as { code?: string }).code ?? '')) throw e;
    await db.query('rollback to savepoint record_mac');
    return false;
  }
}

export async function deleteRange(db: Db, id: number): Promise<void> {
  await db.query('delete from pgipam.address_range where id = $1', [id]);
}

// Used and free counts of a range, for messages and the CLI (sums the range's lease rows).
export async function rangeUsage(db: Db, rangeId: number): Promise<{ used: number; byKind: Record<string, number> }> {
  const { rows } = await db.query<{ kind: string; n: string }>(
    `select kind, sum(last_idx - first_idx + 1)::text as n from pgipam.lease where range_id = $1 group by kind`,
    [rangeId],
  );
  const byKind: Record<string, number> = {};
  let used = 0;
  for (const r of rows) {
    byKind[r.kind] = Number(r.n);
    used += Number(r.n);
  }
  return { used, byKind };
}
