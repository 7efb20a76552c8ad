// The allocator's SQL about what a range holds: leases (lease, allocation, reservation, hold) and
// the index of free extents that makes first fit independent of how full a range is. Every
// function runs inside a transaction that holds the range's row lock (locks.ts).
import type { Db } from '../db/client';
import type { ActionContext } from './context';
import { PGIPAM_VERSION } from '../version';
import type { RangeRow } from './range-queries';

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
  // "kind/name" of a lease for something that is not OpenNebula (pgipam lease, the API); null: oned's
  owner: string | null;
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
  owner: string | null;
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
  owner: r.owner,
});

// Leases that overlap [first, last]; uses the exclusion constraint's GiST index.
export async function leasesOverlapping(db: Db, rangeId: number, first: number, last: number): Promise<LeaseRow[]> {
  const { rows } = await db.query<RawLease>(
    `select l.first_idx::text, l.last_idx::text, l.kind, l.created_at, l.request_id, l.note, l.held_until, l.operator, l.owner from pgipam.lease l
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
     leased as (insert into pgipam.lease (range_id, first_idx, last_idx, kind, request_id, owner)
        select $1, e.first_idx, e.first_idx + $2 - 1, 'lease', $4, $9 from e),
     logged as (insert into pgipam.history (event, space_id, range_id, first_idx, size, address, platform, request_id, pgipam_version, detail)
        select 'address_leased', $5, $1, e.first_idx, $2, host('0.0.0.0'::inet + ($6::int8 + e.first_idx)), $7, $4, $8,
               case when $9::text is null then '{}'::jsonb else jsonb_build_object('owner', $9::text) end from e)
     select e.first_idx::text from e`,
    [range.id, count, limit, ctx.requestId, range.spaceId, range.ip4First, ctx.platform, PGIPAM_VERSION, ctx.owner ?? null],
  );
  return rows[0] ? Number(rows[0].first_idx) : null;
}

// Removes [first, last] from the free extents; returns false when it is not entirely free.
// (The SQL is migration 11's, which the one-trip functions use too.)
export async function takeFree(db: Db, rangeId: number, first: number, last: number): Promise<boolean> {
  const { rows } = await db.query<{ taken: boolean }>('select pgipam.free_extent_take($1, $2, $3) as taken', [rangeId, first, last]);
  return rows[0]!.taken;
}

// Returns [first, last] to the free extents, merged with its free neighbours (migration 11).
export async function giveFree(db: Db, rangeId: number, first: number, last: number): Promise<void> {
  await db.query('select pgipam.free_extent_give($1, $2, $3)', [rangeId, first, last]);
}

// holdSeconds: a hold's time, counted on the database's clock (the one that expires it), never
// the front-end's.
export async function insertLease(
  db: Db,
  rangeId: number,
  [first, last]: [number, number],
  kind: LeaseRow['kind'],
  ctx: ActionContext,
  extra: { note?: string | null; holdSeconds?: number; operator?: boolean; owner?: string } = {},
): Promise<void> {
  await db.query(
    `insert into pgipam.lease (range_id, first_idx, last_idx, kind, request_id, note, held_until, operator, owner)
     values ($1, $2, $3, $4, $5, $6, case when $7::int8 is null then null else now() + $7::int8 * interval '1 second' end, $8, $9)`,
    [
      rangeId,
      first,
      last,
      kind,
      ctx.requestId,
      extra.note ?? null,
      extra.holdSeconds ?? null,
      extra.operator ?? false,
      extra.owner ?? null,
    ],
  );
}

// Cuts [first, last] out of the given leases, keeping the parts outside it under the same lease.
export async function cutLeases(db: Db, rangeId: number, leases: readonly LeaseRow[], first: number, last: number): Promise<void> {
  for (const l of leases) {
    await db.query('delete from pgipam.lease where range_id = $1 and first_idx = $2', [rangeId, l.firstIdx]);
    const keep: Array<[number, number]> = [];
    if (l.firstIdx < first) keep.push([l.firstIdx, first - 1]);
    if (l.lastIdx > last) keep.push([last + 1, l.lastIdx]);
    for (const [f, la] of keep) {
      await db.query(
        `insert into pgipam.lease (range_id, first_idx, last_idx, kind, request_id, note, held_until, created_at, operator, owner)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
        [rangeId, f, la, l.kind, l.requestId, l.note, l.heldUntil, l.createdAt, l.operator, l.owner],
      );
    }
  }
}

// Holds whose time is over become free again; called before looking for free space (migration 11).
export async function releaseExpiredHolds(db: Db, range: RangeRow): Promise<void> {
  // Holds are only made by ranges with a hold time, and a range's hold time never changes.
  if (range.holdSeconds === 0) return;
  await db.query('select pgipam.release_expired_holds($1)', [range.id]);
}

// The free sub-spans of [first, last] (reservations may overlap each other or leases).
export async function freeParts(db: Db, rangeId: number, first: number, last: number): Promise<Array<[number, number]>> {
  const { rows } = await db.query<{ f: string; l: string }>(
    `select greatest(first_idx, $2::int8)::text as f, least(last_idx, $3::int8)::text as l from pgipam.free_extent
      where range_id = $1 and last_idx >= $2::int8 and first_idx <= $3::int8 order by first_idx`,
    [rangeId, first, last],
  );
  return rows.map((r) => [Number(r.f), Number(r.l)]);
}
