// SQL of the allocator: ranges, leases and free extents. All of it runs inside a transaction that
// first locks the one range row it works on (see lockRange), so per-range work is serialised and
// no transaction ever waits for a second range: no deadlock is possible between pgipam actions.
import type { Db } from '../db/client';
import { IpamError } from '../errors';
import { formatIPv4, formatIPv6, formatMac, ip6AtIndex, macAtIndex } from '../address';
import type { ArType, RangeAddresses } from './range-spec';
import type { ActionContext } from './context';

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
}

const RANGE_COLUMNS = `r.id::int8::text as id, r.space_id::text as space_id, s.name as space_name, r.ar_type, r.size::text as size,
  r.ip4_first::text as ip4_first, r.ip6_first::text as ip6_first, r.prefix_length, r.mac_first::text as mac_first,
  r.attrs, r.created_at, r.pool_id::text as pool_id, r.platform, r.hold_seconds, p.name as pool_name, coalesce(p.restricted, false) as pool_restricted`;
// every query that reads RANGE_COLUMNS joins these
const RANGE_JOINS = `pgipam.address_range r join pgipam.space s on s.id = r.space_id left join pgipam.pool p on p.id = r.pool_id`;

interface RawRange {
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
  pool_name: string | null;
  pool_restricted: boolean;
}

function toRange(r: RawRange): RangeRow {
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
  };
}

export async function spaceIdByName(db: Db, name: string): Promise<number> {
  const { rows } = await db.query<{ id: string }>('select id::text from pgipam.space where name = $1', [name]);
  if (!rows[0]) throw new IpamError('SPACE_NOT_FOUND', `address space "${name}" does not exist: create it with "pgipam space add ${name}" or fix PGIPAM_SPACE`);
  return Number(rows[0].id);
}

// Locks the range row for the rest of the transaction. FOR NO KEY UPDATE serialises allocators of
// one range but does not block the foreign-key checks of lease inserts.
export async function lockRange(db: Db, id: number, mode: 'no key update' | 'update' = 'no key update'): Promise<RangeRow | null> {
  const { rows } = await db.query<RawRange>(
    `select ${RANGE_COLUMNS} from ${RANGE_JOINS} where r.id = $1 for ${mode} of r`,
    [id],
  );
  return rows[0] ? toRange(rows[0]) : null;
}

export async function findRangeByFirst(
  db: Db,
  spaceId: number,
  key: { ip4?: number; ip6?: bigint; mac?: number },
): Promise<number | null> {
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
  const { rows } = await db.query<{ id: string }>(`select id::text from pgipam.address_range where space_id = $1 and ${where}`, [spaceId, value]);
  return rows[0] ? Number(rows[0].id) : null;
}

export async function getRange(db: Db, id: number): Promise<RangeRow | null> {
  const { rows } = await db.query<RawRange>(
    `select ${RANGE_COLUMNS} from ${RANGE_JOINS} where r.id = $1`,
    [id],
  );
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
      spans.ip4?.[0] ?? null, spans.ip4?.[1] ?? null,
      spans.ip6?.[0].toString() ?? null, spans.ip6?.[1].toString() ?? null,
      spans.mac?.[0] ?? null, spans.mac?.[1] ?? null,
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
  const first = range.ip4First !== null || range.ip6First !== null || range.macFirst !== null ? `${addressAt(range, 0)} - ${addressAt(range, range.size - 1)}` : `${range.size} addresses`;
  return `range ${range.id} (${range.type} ${first}, space ${range.spaceName})`;
}

export interface LeaseRow {
  firstIdx: number;
  lastIdx: number;
  kind: 'lease' | 'allocation' | 'reservation' | 'hold';
  createdAt: Date;
  requestId: string | null;
  note: string | null;
  heldUntil: Date | null;
  // made by an operator (pgipam reserve, or a pool reservation a range inherited): platforms cannot change it
  operator: boolean;
}

interface RawLease {
  first_idx: string;
  last_idx: string;
  kind: LeaseRow['kind'];
  created_at: Date;
  request_id: string | null;
  note: string | null;
  held_until: Date | null;
  operator: boolean;
}

const toLease = (r: RawLease): LeaseRow => ({
  firstIdx: Number(r.first_idx),
  lastIdx: Number(r.last_idx),
  kind: r.kind,
  createdAt: r.created_at,
  requestId: r.request_id,
  note: r.note,
  heldUntil: r.held_until,
  operator: r.operator,
});

// Leases that overlap [first, last]; uses the exclusion constraint's GiST index.
export async function leasesOverlapping(db: Db, rangeId: number, first: number, last: number): Promise<LeaseRow[]> {
  const { rows } = await db.query<RawLease>(
    `select l.first_idx::text, l.last_idx::text, l.kind, l.created_at, l.request_id, l.note, l.held_until, l.operator from pgipam.lease l
      where l.range_id = $1 and l.span && int8range($2, $3, '[]') order by l.first_idx`,
    [rangeId, first, last],
  );
  return rows.map(toLease);
}

// get_address's hot path in one statement: the lowest free extent that holds `count` addresses
// below `limit` (the primary key index is walked in address order and stops at the first that
// fits, so the cost does not depend on how many leases the range holds), shrunk or removed, the
// lease, and its history row. Returns the first index, or null when nothing fits.
export async function leaseFirstFit(db: Db, range: RangeRow, count: number, limit: number, ctx: ActionContext): Promise<number | null> {
  const { rows } = await db.query<{ first_idx: string }>(
    `with e as (
       select f.first_idx, f.last_idx from pgipam.free_extent f
        where f.range_id = $1 and f.last_idx - f.first_idx + 1 >= $2 and f.first_idx + $2 <= $3
        order by f.first_idx limit 1),
     gone as (delete from pgipam.free_extent f using e
        where f.range_id = $1 and f.first_idx = e.first_idx and e.last_idx - e.first_idx + 1 = $2),
     shrunk as (update pgipam.free_extent f set first_idx = e.first_idx + $2 from e
        where f.range_id = $1 and f.first_idx = e.first_idx and e.last_idx - e.first_idx + 1 > $2),
     leased as (insert into pgipam.lease (range_id, first_idx, last_idx, kind, request_id)
        select $1, e.first_idx, e.first_idx + $2 - 1, 'lease', $4 from e),
     logged as (insert into pgipam.history (event, space_id, range_id, first_idx, size, address, platform, request_id)
        select 'address_leased', $5, $1, e.first_idx, $2, host('0.0.0.0'::inet + ($6::int8 + e.first_idx)), $7, $4 from e)
     select e.first_idx::text from e`,
    [range.id, count, limit, ctx.requestId, range.spaceId, range.ip4First, ctx.platform],
  );
  return rows[0] ? Number(rows[0].first_idx) : null;
}

// Removes [first, last] from the free extents; returns false when it is not entirely free.
export async function takeFree(db: Db, rangeId: number, first: number, last: number): Promise<boolean> {
  const { rows } = await db.query<{ first_idx: string; last_idx: string }>(
    `delete from pgipam.free_extent f using (
        select first_idx from pgipam.free_extent where range_id = $1 and first_idx <= $2 order by first_idx desc limit 1
      ) e
      where f.range_id = $1 and f.first_idx = e.first_idx and f.last_idx >= $3
      returning f.first_idx::text, f.last_idx::text`,
    [rangeId, first, last],
  );
  const e = rows[0];
  if (!e) return false;
  const pieces: Array<[number, number]> = [];
  if (Number(e.first_idx) < first) pieces.push([Number(e.first_idx), first - 1]);
  if (last < Number(e.last_idx)) pieces.push([last + 1, Number(e.last_idx)]);
  if (pieces.length) {
    await db.query(
      `insert into pgipam.free_extent (range_id, first_idx, last_idx) select $1, f, l from unnest($2::int8[], $3::int8[]) as x(f, l)`,
      [rangeId, pieces.map((p) => p[0]), pieces.map((p) => p[1])],
    );
  }
  return true;
}

// Returns [first, last] to the free extents, merged with its free neighbours in one statement.
export async function giveFree(db: Db, rangeId: number, first: number, last: number): Promise<void> {
  await db.query(
    `with lo as (delete from pgipam.free_extent where range_id = $1 and last_idx = $2::int8 - 1 returning first_idx),
          hi as (delete from pgipam.free_extent where range_id = $1 and first_idx = $3::int8 + 1 returning last_idx)
     insert into pgipam.free_extent (range_id, first_idx, last_idx)
     values ($1, coalesce((select first_idx from lo), $2::int8), coalesce((select last_idx from hi), $3::int8))`,
    [rangeId, first, last],
  );
}

// holdSeconds: a hold's time, counted on the database's clock (the one that expires it), never
// the front-end's.
export async function insertLease(
  db: Db,
  rangeId: number,
  first: number,
  last: number,
  kind: LeaseRow['kind'],
  ctx: ActionContext,
  extra: { note?: string | null; holdSeconds?: number; operator?: boolean } = {},
): Promise<void> {
  await db.query(
    `insert into pgipam.lease (range_id, first_idx, last_idx, kind, request_id, note, held_until, operator)
     values ($1, $2, $3, $4, $5, $6, case when $7::int8 is null then null else now() + $7::int8 * interval '1 second' end, $8)`,
    [rangeId, first, last, kind, ctx.requestId, extra.note ?? null, extra.holdSeconds ?? null, extra.operator ?? false],
  );
}

// Cuts [first, last] out of the given leases, keeping the parts outside it under the same lease.
export async function cutLeases(db: Db, rangeId: number, leases: LeaseRow[], first: number, last: number): Promise<void> {
  for (const l of leases) {
    await db.query('delete from pgipam.lease where range_id = $1 and first_idx = $2', [rangeId, l.firstIdx]);
    const keep: Array<[number, number]> = [];
    if (l.firstIdx < first) keep.push([l.firstIdx, first - 1]);
    if (l.lastIdx > last) keep.push([last + 1, l.lastIdx]);
    for (const [f, la] of keep) {
      await db.query(
        `insert into pgipam.lease (range_id, first_idx, last_idx, kind, request_id, note, held_until, created_at, operator)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
        [rangeId, f, la, l.kind, l.requestId, l.note, l.heldUntil, l.createdAt, l.operator],
      );
    }
  }
}

export interface HistoryEvent {
  event: string;
  spaceId: number | null;
  rangeId: number | null;
  firstIdx?: number | null;
  size?: number | null;
  address?: string | null;
  detail?: Record<string, unknown>;
}

export async function recordHistory(db: Db, ctx: ActionContext, e: HistoryEvent): Promise<void> {
  await db.query(
    `insert into pgipam.history (event, space_id, range_id, first_idx, size, address, platform, request_id, detail)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
    [e.event, e.spaceId, e.rangeId, e.firstIdx ?? null, e.size ?? null, e.address ?? null, ctx.platform, ctx.requestId, JSON.stringify(e.detail ?? {})],
  );
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
