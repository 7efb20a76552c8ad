// Ranges as the operator sees them: lists with their use, one range with its leases, removal by hand.
import type { Db } from '../db/client';
import { withTransaction } from '../db/client';
import { IpamError } from '../errors';
import type { ActionContext } from '../allocator/context';
import { type RangeRow, addressAt, describeRange, getRange, rangeUsage } from '../allocator/range-queries';
import { lockPools, lockRange } from '../allocator/locks';
import { rangePoolIds } from '../allocator/pool-space';
import { dropRange } from '../allocator/unregister';

export interface RangeInfo {
  range: RangeRow;
  used: number;
  byKind: Record<string, number>;
  first: string;
  last: string;
}

export async function rangeInfo(db: Db, range: RangeRow): Promise<RangeInfo> {
  const usage = await rangeUsage(db, range.id);
  return { range, used: usage.used, byKind: usage.byKind, first: addressAt(range, 0), last: addressAt(range, range.size - 1) };
}

export async function listRanges(db: Db, filter: { space?: string } = {}): Promise<RangeInfo[]> {
  const { rows } = await db.query<{ id: string }>(
    `select r.id::text from pgipam.address_range r join pgipam.space s on s.id = r.space_id
      where $1::text is null or s.name = $1 order by s.name, r.ip4_first nulls last, r.ip6_first nulls last, r.id`,
    [filter.space ?? null],
  );
  const out: RangeInfo[] = [];
  for (const r of rows) {
    const range = await getRange(db, Number(r.id));
    if (range) out.push(await rangeInfo(db, range));
  }
  return out;
}

export async function showRange(db: Db, id: number): Promise<RangeInfo> {
  const range = await getRange(db, id);
  if (!range) throw new IpamError('NOT_FOUND', `no range ${id}`);
  return rangeInfo(db, range);
}

export interface LeaseInfo {
  rangeId: number;
  first: string;
  last: string;
  size: number;
  kind: string;
  since: Date;
  requestId: string | null;
  note: string | null;
  heldUntil: Date | null;
  // "kind/name" of a lease for something that is not OpenNebula; null: OpenNebula's or an operator's
  owner: string | null;
}

export async function listLeases(
  db: Db,
  filter: { rangeId?: number; kind?: string; owner?: string; limit?: number } = {},
): Promise<LeaseInfo[]> {
  const { rows } = await db.query<{
    range_id: string;
    first_idx: string;
    last_idx: string;
    kind: string;
    created_at: Date;
    request_id: string | null;
    note: string | null;
    held_until: Date | null;
    owner: string | null;
  }>(
    `select l.range_id::text, l.first_idx::text, l.last_idx::text, l.kind, l.created_at, l.request_id, l.note, l.held_until, l.owner
       from pgipam.lease l
      where ($1::int8 is null or l.range_id = $1) and ($2::text is null or l.kind = $2) and ($4::text is null or l.owner = $4)
      order by l.range_id, l.first_idx limit $3`,
    [filter.rangeId ?? null, filter.kind ?? null, filter.limit ?? 1000, filter.owner ?? null],
  );
  const ranges = new Map<number, RangeRow | null>();
  const out: LeaseInfo[] = [];
  for (const r of rows) {
    const id = Number(r.range_id);
    if (!ranges.has(id)) ranges.set(id, await getRange(db, id));
    const range = ranges.get(id)!;
    if (!range) continue;
    out.push({
      rangeId: id,
      first: addressAt(range, Number(r.first_idx)),
      last: addressAt(range, Number(r.last_idx)),
      size: Number(r.last_idx) - Number(r.first_idx) + 1,
      kind: r.kind,
      since: r.created_at,
      requestId: r.request_id,
      note: r.note,
      heldUntil: r.held_until,
      owner: r.owner,
    });
  }
  return out;
}

// Removes a range by hand (a stale registration left behind when oned gave up on a request).
export async function removeRange(db: Db, id: number, force: boolean, ctx: ActionContext): Promise<{ released: number }> {
  return withTransaction(db, async () => {
    await lockPools(db, await rangePoolIds(db, id));
    const range = await lockRange(db, id, 'update');
    if (!range) throw new IpamError('NOT_FOUND', `no range ${id}`);
    const usage = await rangeUsage(db, id);
    const active = (usage.byKind.lease ?? 0) + (usage.byKind.allocation ?? 0);
    if (active > 0 && !force)
      throw new IpamError('CONFLICT', `${describeRange(range)} still has ${active} leased addresses: use --force to remove it anyway`);
    await dropRange(db, range, ctx, 'range_removed', { released: usage.byKind, forced: force });
    return { released: usage.used };
  });
}

// How a range's addresses are used, in `cells` equal parts (fewer for a smaller range): what the
// CLI draws as a map (cli/render.ts).
export interface RangeCell {
  width: number;
  used: number;
  reservation: number;
  hold: number;
}

export async function rangeCells(db: Db, range: RangeRow, cells = 64): Promise<RangeCell[]> {
  const n = Math.min(cells, range.size);
  const cell = range.size / n;
  const { rows } = await db.query<{ c: number; kind: string; used: string }>(
    `with cells as (select c, floor(c * $2::float8)::int8 as lo, floor((c + 1) * $2::float8)::int8 - 1 as hi from generate_series(0, $3::int - 1) c)
     select c, l.kind, sum(least(l.last_idx, hi) - greatest(l.first_idx, lo) + 1)::text as used
       from cells join pgipam.lease l on l.range_id = $1 and l.span && int8range(lo, hi, '[]') group by c, l.kind`,
    [range.id, cell, n],
  );
  const by: RangeCell[] = Array.from({ length: n }, (_, i) => ({
    width: Math.floor((i + 1) * cell) - Math.floor(i * cell),
    used: 0,
    reservation: 0,
    hold: 0,
  }));
  for (const r of rows) {
    const b = by[r.c]!;
    if (r.kind === 'reservation') b.reservation += Number(r.used);
    else if (r.kind === 'hold') b.hold += Number(r.used);
    else b.used += Number(r.used);
  }
  return by;
}
