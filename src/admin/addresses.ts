// Reservations, lookups and the history, for the operator.
import type { Db } from '../db/client';
import { withTransaction } from '../db/client';
import { IpamError } from '../errors';
import { parseIPv4, parseIPv6, parseMac } from '../address';
import type { ActionContext } from '../allocator/context';
import { type Family, blockSize, formatAddress, lockPool, getPoolById } from '../allocator/pools';
import { type RangeRow, addressAt, cutLeases, describeRange, getRange, giveFree, insertLease, leasesOverlapping, lockRange, recordHistory, spaceIdByName, takeFree } from '../allocator/store';
import { parsePrefix } from './pools';

export interface Target {
  family: Family;
  first: bigint;
  last: bigint;
  text: string;
}

// An address, "first-last", or a CIDR prefix.
export function parseTarget(text: string): Target {
  if (text.includes('/')) {
    const b = parsePrefix(text);
    return { family: b.family, first: b.network, last: b.network + blockSize(b.family, b.prefixLength) - 1n, text };
  }
  const [a, b, ...rest] = text.split('-');
  if (rest.length) throw new IpamError('BAD_REQUEST', `"${text}" is not an address, a first-last span or a prefix`);
  const parse = (s: string): { family: Family; n: bigint } => (s.includes(':') ? { family: 6, n: parseIPv6(s, 'address') } : { family: 4, n: BigInt(parseIPv4(s, 'address')) });
  const first = parse(a!);
  const last = b === undefined ? first : parse(b);
  if (first.family !== last.family || last.n < first.n) throw new IpamError('BAD_REQUEST', `"${text}" is not an ascending span of one address family`);
  return { family: first.family, first: first.n, last: last.n, text };
}

// Ranges of a space overlapping the target, with the target as index spans of each.
async function rangesOverlapping(db: Db, spaceId: number, t: Target): Promise<Array<{ range: RangeRow; first: number; last: number }>> {
  const col = t.family === 4 ? 'ip4' : 'ip6';
  const cast = t.family === 4 ? 'int8range($2::int8, $3::int8, \'[]\')' : 'numrange($2::numeric, $3::numeric, \'[]\')';
  const { rows } = await db.query<{ id: string }>(`select id::text from pgipam.address_range where space_id = $1 and ${col}_span && ${cast} order by id`, [spaceId, t.first.toString(), t.last.toString()]);
  const out = [];
  for (const r of rows) {
    const range = (await lockRange(db, Number(r.id)))!;
    const base = t.family === 4 ? BigInt(range.ip4First!) : range.ip6First!;
    const lastIdx = base + BigInt(range.size) - 1n;
    const f = t.first > base ? t.first : base;
    const l = t.last < lastIdx ? t.last : lastIdx;
    out.push({ range, first: Number(f - base), last: Number(l - base) });
  }
  return out;
}

async function poolsOverlapping(db: Db, spaceId: number, t: Target): Promise<Array<{ poolId: number; first: bigint; last: bigint }>> {
  const { rows } = await db.query<{ pool_id: string; network: string; last: string }>(
    `select pool_id::text, network::text, last::text from pgipam.pool_prefix where space_id = $1 and family = $2 and span && numrange($3::numeric, $4::numeric, '[]') order by network`,
    [spaceId, t.family, t.first.toString(), t.last.toString()],
  );
  return rows.map((r) => {
    const n = BigInt(r.network);
    const l = BigInt(r.last);
    return { poolId: Number(r.pool_id), first: t.first > n ? t.first : n, last: t.last < l ? t.last : l };
  });
}

export interface ReserveResult {
  inRanges: Array<{ rangeId: number; count: number }>;
  inPools: Array<{ pool: string; count: string }>;
}

// Keeps addresses out of allocation, with a reason: inside ranges as reservation leases (refused
// when an address is leased), inside pools as pool reservations that ranges carved later inherit.
export async function reserve(db: Db, target: string, reason: string, space: string, ctx: ActionContext): Promise<ReserveResult> {
  const t = parseTarget(target);
  if (!reason.trim() || /[\x00-\x1f\x7f"\\]/.test(reason) || reason.includes(']]>')) throw new IpamError('BAD_REQUEST', 'give a --reason without quotes, backslashes or control characters');
  return withTransaction(db, async () => {
    const spaceId = await spaceIdByName(db, space);
    const result: ReserveResult = { inRanges: [], inPools: [] };
    for (const { range, first, last } of await rangesOverlapping(db, spaceId, t)) {
      const taken = (await leasesOverlapping(db, range.id, first, last)).filter((l) => l.kind === 'lease' || l.kind === 'allocation');
      if (taken.length) throw new IpamError('ADDRESS_IN_USE', `cannot reserve ${addressAt(range, Math.max(taken[0]!.firstIdx, first))}: it is ${taken[0]!.kind === 'lease' ? 'leased' : 'allocated'} since ${taken[0]!.createdAt.toISOString()} in ${describeRange(range)}`);
      // holds and older reservations inside the span give way to the new reservation
      const old = await leasesOverlapping(db, range.id, first, last);
      await cutLeases(db, range.id, old, first, last);
      for (const l of old) await giveFree(db, range.id, Math.max(l.firstIdx, first), Math.min(l.lastIdx, last));
      if (!(await takeFree(db, range.id, first, last))) throw new IpamError('INTERNAL', `free space of range ${range.id} is inconsistent`);
      await insertLease(db, range.id, first, last, 'reservation', ctx, { note: reason, operator: true });
      await recordHistory(db, ctx, { event: 'address_reserved', spaceId, rangeId: range.id, firstIdx: first, size: last - first + 1, address: addressAt(range, first), detail: { reason } });
      result.inRanges.push({ rangeId: range.id, count: last - first + 1 });
    }
    for (const p of await poolsOverlapping(db, spaceId, t)) {
      const pool = (await getPoolById(db, p.poolId))!;
      await lockPool(db, pool.id);
      await db.query(`delete from pgipam.pool_reservation where pool_id = $1 and family = $2 and span <@ numrange($3::numeric, $4::numeric, '[]')`, [pool.id, t.family, p.first.toString(), p.last.toString()]);
      try {
        await db.query('savepoint res');
        await db.query(`insert into pgipam.pool_reservation (pool_id, space_id, family, first, last, reason) values ($1, $2, $3, $4::numeric, $5::numeric, $6)`, [pool.id, spaceId, t.family, p.first.toString(), p.last.toString(), reason]);
      } catch (e) {
        if ((e as { code?: string }).code !== '23P01') throw e;
        await db.query('rollback to savepoint res');
        throw new IpamError('CONFLICT', `${t.text} overlaps an existing reservation of pool "${pool.name}" that it does not cover: unreserve that one first`);
      }
      await recordHistory(db, ctx, { event: 'address_reserved', spaceId, rangeId: null, address: formatAddress(t.family, p.first), size: Number(p.last - p.first + 1n), detail: { reason, pool: pool.name, last: formatAddress(t.family, p.last) } });
      result.inPools.push({ pool: pool.name, count: (p.last - p.first + 1n).toString() });
    }
    if (!result.inRanges.length && !result.inPools.length) throw new IpamError('NOT_FOUND', `${t.text} is in no range and no pool of space ${space}`);
    return result;
  });
}

export async function unreserve(db: Db, target: string, space: string, ctx: ActionContext): Promise<{ released: number; poolReservations: number }> {
  const t = parseTarget(target);
  return withTransaction(db, async () => {
    const spaceId = await spaceIdByName(db, space);
    let released = 0;
    for (const { range, first, last } of await rangesOverlapping(db, spaceId, t)) {
      const res = (await leasesOverlapping(db, range.id, first, last)).filter((l) => l.kind === 'reservation');
      await cutLeases(db, range.id, res, first, last);
      for (const l of res) {
        const f = Math.max(l.firstIdx, first);
        const la = Math.min(l.lastIdx, last);
        await giveFree(db, range.id, f, la);
        released += la - f + 1;
        await recordHistory(db, ctx, { event: 'address_unreserved', spaceId, rangeId: range.id, firstIdx: f, size: la - f + 1, address: addressAt(range, f), detail: { reason: l.note } });
      }
    }
    const { rows } = await db.query<{ id: string; pool_id: string; first: string; reason: string }>(
      `delete from pgipam.pool_reservation where space_id = $1 and family = $2 and span && numrange($3::numeric, $4::numeric, '[]') returning id::text, pool_id::text, first::text, reason`,
      [spaceId, t.family, t.first.toString(), t.last.toString()],
    );
    for (const r of rows) await recordHistory(db, ctx, { event: 'address_unreserved', spaceId, rangeId: null, address: formatAddress(t.family, BigInt(r.first)), detail: { reason: r.reason, pool_id: Number(r.pool_id) } });
    if (!released && !rows.length) throw new IpamError('NOT_FOUND', `nothing is reserved in ${t.text} (space ${space})`);
    return { released, poolReservations: rows.length };
  });
}

export interface HistoryRow {
  id: number;
  at: Date;
  event: string;
  space: string | null;
  rangeId: number | null;
  address: string | null;
  size: number | null;
  platform: string | null;
  requestId: string | null;
  actor: string;
  detail: Record<string, unknown>;
}

// address: events touching one index of a range; addressText: events recorded under that address.
export async function history(db: Db, f: { since?: Date; rangeId?: number; platform?: string; event?: string; address?: { rangeId: number; index: number }; addressText?: string; limit?: number }): Promise<HistoryRow[]> {
  const { rows } = await db.query<{ id: string; at: Date; event: string; space: string | null; range_id: string | null; address: string | null; size: string | null; platform: string | null; request_id: string | null; actor: string; detail: Record<string, unknown> }>(
    `select h.id::text, h.at, h.event, s.name as space, h.range_id::text, h.address, h.size::text, h.platform, h.request_id, h.actor, h.detail
       from pgipam.history h left join pgipam.space s on s.id = h.space_id
      where ($1::timestamptz is null or h.at >= $1) and ($2::int8 is null or h.range_id = $2)
        and ($3::text is null or h.platform = $3) and ($4::text is null or h.event = $4)
        and ($5::int8 is null or (h.range_id = $5 and h.first_idx <= $6::int8 and h.first_idx + coalesce(h.size, 1) > $6::int8))
        and ($8::text is null or h.address = $8)
      order by h.at desc, h.id desc limit $7`,
    [f.since ?? null, f.rangeId ?? f.address?.rangeId ?? null, f.platform ?? null, f.event ?? null, f.address?.rangeId ?? null, f.address?.index ?? null, f.limit ?? 100, f.addressText ?? null],
  );
  return rows.map((r) => ({
    id: Number(r.id), at: r.at, event: r.event, space: r.space, rangeId: r.range_id === null ? null : Number(r.range_id), address: r.address,
    size: r.size === null ? null : Number(r.size), platform: r.platform, requestId: r.request_id, actor: r.actor, detail: r.detail,
  }));
}

export interface FindResult {
  query: string;
  matches: Array<{
    space: string;
    pool: string | null;
    range: { id: number; type: string; first: string; last: string; platform: string } | null;
    index: number | null;
    lease: { kind: string; first: string; last: string; since: Date; requestId: string | null; note: string | null; heldUntil: Date | null } | null;
    poolReservation: string | null;
    history: HistoryRow[];
  }>;
}

// Where an address (or MAC) lives: space, pool, range, platform, the lease that holds it, and its history.
export async function find(db: Db, text: string): Promise<FindResult> {
  const result: FindResult = { query: text, matches: [] };
  let family: Family | 'mac';
  let value: bigint;
  if (/^([0-9a-fA-F]{1,2}:){5}[0-9a-fA-F]{1,2}$/.test(text)) {
    family = 'mac';
    value = BigInt(parseMac(text));
  } else if (text.includes(':')) {
    family = 6;
    value = parseIPv6(text, 'address');
  } else {
    family = 4;
    value = BigInt(parseIPv4(text, 'address'));
  }
  const col = family === 4 ? 'ip4_span @> $1::int8' : family === 6 ? 'ip6_span @> $1::numeric' : 'mac_span @> $1::int8';
  const { rows } = await db.query<{ id: string }>(`select id::text from pgipam.address_range where ${col} order by id`, [value.toString()]);
  const seenSpaces = new Set<number>();
  for (const r of rows) {
    const range = (await getRange(db, Number(r.id)))!;
    seenSpaces.add(range.spaceId);
    const base = family === 4 ? BigInt(range.ip4First!) : family === 6 ? range.ip6First! : BigInt(range.macFirst!);
    const index = Number(value - base);
    const lease = (await leasesOverlapping(db, range.id, index, index))[0] ?? null;
    const pool = range.poolId !== null ? (await getPoolById(db, range.poolId))?.name ?? null : null;
    result.matches.push({
      space: range.spaceName, pool,
      range: { id: range.id, type: range.type, first: addressAt(range, 0), last: addressAt(range, range.size - 1), platform: range.platform },
      index,
      lease: lease && { kind: lease.kind, first: addressAt(range, lease.firstIdx), last: addressAt(range, lease.lastIdx), since: lease.createdAt, requestId: lease.requestId, note: lease.note, heldUntil: lease.heldUntil },
      poolReservation: null,
      history: await history(db, { address: { rangeId: range.id, index }, limit: 20 }),
    });
  }
  if (family !== 'mac') {
    const { rows: pools } = await db.query<{ space_id: string; space: string; pool: string; reason: string | null }>(
      `select x.space_id::text, s.name as space, p.name as pool,
          (select reason from pgipam.pool_reservation r where r.pool_id = p.id and r.family = $2 and r.span @> $1::numeric) as reason
         from pgipam.pool_prefix x join pgipam.pool p on p.id = x.pool_id join pgipam.space s on s.id = x.space_id
        where x.family = $2 and x.span @> $1::numeric`,
      [value.toString(), family],
    );
    for (const p of pools) {
      const m = result.matches.find((x) => x.space === p.space);
      if (m) {
        m.pool = m.pool ?? p.pool;
        m.poolReservation = p.reason;
      } else {
        result.matches.push({ space: p.space, pool: p.pool, range: null, index: null, lease: null, poolReservation: p.reason, history: await history(db, { addressText: formatAddress(family, value), limit: 20 }) });
      }
    }
  }
  return result;
}

// Retention: deletes history older than `before`. The append-only trigger refuses deletes for
// everyone; only the schema owner can switch it off, and only inside this one transaction, which
// itself leaves a row saying what was pruned.
export async function pruneHistory(db: Db, before: Date, ctx: ActionContext): Promise<number> {
  return withTransaction(db, async () => {
    await db.query('alter table pgipam.history disable trigger history_append_only');
    const { rowCount } = await db.query('delete from pgipam.history where at < $1', [before]);
    await db.query('alter table pgipam.history enable trigger history_append_only');
    await recordHistory(db, ctx, { event: 'history_pruned', spaceId: null, rangeId: null, detail: { before: before.toISOString(), rows: rowCount ?? 0 } });
    return rowCount ?? 0;
  }).catch((e) => {
    if ((e as { code?: string }).code === '42501') throw new IpamError('PERMISSION_DENIED', 'only the owner of the pgipam schema can prune the history');
    throw e;
  });
}
