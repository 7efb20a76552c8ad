// Reservations made by operators: addresses, spans and prefixes kept out of allocation, with a reason.
import type { Db } from '../db/client';
import { templateValueProblem } from '../template-value';
import { withTransaction } from '../db/client';
import { IpamError } from '../errors';
import { parseIPv4, parseIPv6 } from '../address';
import type { ActionContext } from '../allocator/context';
import { lockPools } from '../allocator/locks';
import { type Family, blockSize, formatAddress, getPoolById } from '../allocator/pool-space';
import { type RangeRow, addressAt, describeRange, spaceIdByName } from '../allocator/range-queries';
import { cutLeases, giveFree, insertLease, leasesOverlapping, takeFree } from '../allocator/lease-queries';
import { lockRange } from '../allocator/locks';
import { recordHistory } from '../allocator/history';
import { parsePrefix } from './pool-admin';

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
  const parse = (s: string): { family: Family; n: bigint } =>
    s.includes(':') ? { family: 6, n: parseIPv6(s, 'address') } : { family: 4, n: BigInt(parseIPv4(s, 'address')) };
  const first = parse(a!);
  const last = b === undefined ? first : parse(b);
  if (first.family !== last.family || last.n < first.n)
    throw new IpamError('BAD_REQUEST', `"${text}" is not an ascending span of one address family`);
  return { family: first.family, first: first.n, last: last.n, text };
}

// Ranges of a space overlapping the target, locked in id order, with the target as index spans of each.
async function rangesOverlapping(db: Db, spaceId: number, t: Target): Promise<Array<{ range: RangeRow; first: number; last: number }>> {
  const col = t.family === 4 ? 'ip4' : 'ip6';
  const cast = t.family === 4 ? "int8range($2::int8, $3::int8, '[]')" : "numrange($2::numeric, $3::numeric, '[]')";
  const { rows } = await db.query<{ id: string }>(
    `select r.id::text as id from pgipam.address_range r where r.space_id = $1 and r.${col}_span && ${cast} order by r.id`,
    [spaceId, t.first.toString(), t.last.toString()],
  );
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
    `select x.pool_id::text as pool_id, x.network::text as network, x.last::text as last from pgipam.pool_prefix x where x.space_id = $1 and x.family = $2 and x.span && numrange($3::numeric, $4::numeric, '[]') order by x.network`,
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
  if (!reason.trim()) throw new IpamError('BAD_REQUEST', 'give a --reason: it is shown wherever the addresses are refused');
  const problem = templateValueProblem(reason);
  if (problem) throw new IpamError('BAD_REQUEST', `--reason ${problem}`);
  return withTransaction(db, async () => {
    const spaceId = await spaceIdByName(db, space);
    const result: ReserveResult = { inRanges: [], inPools: [] };
    // the lock order of locks.ts: every pool the target touches, then every range
    const pools = await poolsOverlapping(db, spaceId, t);
    await lockPools(
      db,
      pools.map((p) => p.poolId),
    );
    for (const { range, first, last } of await rangesOverlapping(db, spaceId, t)) {
      const taken = (await leasesOverlapping(db, range.id, first, last)).filter((l) => l.kind === 'lease' || l.kind === 'allocation');
      if (taken.length)
        throw new IpamError(
          'ADDRESS_IN_USE',
          `cannot reserve ${addressAt(range, Math.max(taken[0]!.firstIdx, first))}: it is ${taken[0]!.kind === 'lease' ? 'leased' : 'allocated'} since ${taken[0]!.createdAt.toISOString()} in ${describeRange(range)}`,
        );
      // holds and older reservations inside the span give way to the new reservation
      const old = await leasesOverlapping(db, range.id, first, last);
      await cutLeases(db, range.id, old, first, last);
      for (const l of old) await giveFree(db, range.id, Math.max(l.firstIdx, first), Math.min(l.lastIdx, last));
      if (!(await takeFree(db, range.id, first, last))) throw new IpamError('INTERNAL', `free space of range ${range.id} is inconsistent`);
      await insertLease(db, range.id, [first, last], 'reservation', ctx, { note: reason, operator: true });
      await recordHistory(db, ctx, {
        event: 'address_reserved',
        spaceId,
        rangeId: range.id,
        firstIdx: first,
        size: last - first + 1,
        address: addressAt(range, first),
        detail: { reason },
      });
      result.inRanges.push({ rangeId: range.id, count: last - first + 1 });
    }
    for (const p of pools) {
      const pool = (await getPoolById(db, p.poolId))!;
      await db.query(
        `delete from pgipam.pool_reservation where pool_id = $1 and family = $2 and span <@ numrange($3::numeric, $4::numeric, '[]')`,
        [pool.id, t.family, p.first.toString(), p.last.toString()],
      );
      try {
        await db.query('savepoint res');
        await db.query(
          `insert into pgipam.pool_reservation (pool_id, space_id, family, first, last, reason) values ($1, $2, $3, $4::numeric, $5::numeric, $6)`,
          [pool.id, spaceId, t.family, p.first.toString(), p.last.toString(), reason],
        );
      } catch (e) {
        if ((e as { code?: string }).code !== '23P01') throw e;
        await db.query('rollback to savepoint res');
        throw new IpamError(
          'CONFLICT',
          `${t.text} overlaps an existing reservation of pool "${pool.name}" that it does not cover: unreserve that one first`,
        );
      }
      await recordHistory(db, ctx, {
        event: 'address_reserved',
        spaceId,
        rangeId: null,
        address: formatAddress(t.family, p.first),
        size: Number(p.last - p.first + 1n),
        detail: { reason, pool: pool.name, last: formatAddress(t.family, p.last) },
      });
      result.inPools.push({ pool: pool.name, count: (p.last - p.first + 1n).toString() });
    }
    if (!result.inRanges.length && !result.inPools.length)
      throw new IpamError('NOT_FOUND', `${t.text} is in no range and no pool of space ${space}`);
    return result;
  });
}

export async function unreserve(
  db: Db,
  target: string,
  space: string,
  ctx: ActionContext,
): Promise<{ released: number; poolReservations: number }> {
  const t = parseTarget(target);
  return withTransaction(db, async () => {
    const spaceId = await spaceIdByName(db, space);
    let released = 0;
    await lockPools(
      db,
      (await poolsOverlapping(db, spaceId, t)).map((p) => p.poolId),
    );
    for (const { range, first, last } of await rangesOverlapping(db, spaceId, t)) {
      const res = (await leasesOverlapping(db, range.id, first, last)).filter((l) => l.kind === 'reservation');
      await cutLeases(db, range.id, res, first, last);
      for (const l of res) {
        const f = Math.max(l.firstIdx, first);
        const la = Math.min(l.lastIdx, last);
        await giveFree(db, range.id, f, la);
        released += la - f + 1;
        await recordHistory(db, ctx, {
          event: 'address_unreserved',
          spaceId,
          rangeId: range.id,
          firstIdx: f,
          size: la - f + 1,
          address: addressAt(range, f),
          detail: { reason: l.note },
        });
      }
    }
    const { rows } = await db.query<{ id: string; pool_id: string; first: string; reason: string }>(
      `delete from pgipam.pool_reservation where space_id = $1 and family = $2 and span && numrange($3::numeric, $4::numeric, '[]') returning id::text, pool_id::text, first::text, reason`,
      [spaceId, t.family, t.first.toString(), t.last.toString()],
    );
    for (const r of rows)
      await recordHistory(db, ctx, {
        event: 'address_unreserved',
        spaceId,
        rangeId: null,
        address: formatAddress(t.family, BigInt(r.first)),
        detail: { reason: r.reason, pool_id: Number(r.pool_id) },
      });
    if (!released && !rows.length) throw new IpamError('NOT_FOUND', `nothing is reserved in ${t.text} (space ${space})`);
    return { released, poolReservations: rows.length };
  });
}
