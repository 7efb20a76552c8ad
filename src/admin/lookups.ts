// Lookups for the operator: where an address lives (find) and the history of changes.
import type { Db } from '../db/client';
import { withTransaction } from '../db/client';
import { IpamError } from '../errors';
import { parseIPv4, parseIPv6, parseMac } from '../address';
import type { ActionContext } from '../allocator/context';
import { type Family, formatAddress, getPoolById } from '../allocator/pool-space';
import { addressAt, getRange } from '../allocator/range-queries';
import { leasesOverlapping } from '../allocator/lease-queries';
import { recordHistory } from '../allocator/history';

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

type RawHistory = {
  id: string;
  at: Date;
  event: string;
  space: string | null;
  range_id: string | null;
  address: string | null;
  size: string | null;
  platform: string | null;
  request_id: string | null;
  actor: string;
  detail: Record<string, unknown>;
};

const HISTORY_SELECT = `select h.id::text, h.at, h.event, s.name as space, h.range_id::text, h.address, h.size::text, h.platform, h.request_id,
    h.actor, h.detail from pgipam.history h left join pgipam.space s on s.id = h.space_id`;

const toHistoryRow = (r: RawHistory): HistoryRow => ({
  id: Number(r.id),
  at: r.at,
  event: r.event,
  space: r.space,
  rangeId: r.range_id === null ? null : Number(r.range_id),
  address: r.address,
  size: r.size === null ? null : Number(r.size),
  platform: r.platform,
  requestId: r.request_id,
  actor: r.actor,
  detail: r.detail,
});

// address: events touching one index of a range; addressText: events recorded under that address.
export async function history(
  db: Db,
  f: {
    since?: Date;
    rangeId?: number;
    platform?: string;
    event?: string;
    address?: { rangeId: number; index: number };
    addressText?: string;
    limit?: number;
  },
): Promise<HistoryRow[]> {
  const { rows } = await db.query<RawHistory>(
    `${HISTORY_SELECT}
      where ($1::timestamptz is null or h.at >= $1) and ($2::int8 is null or h.range_id = $2)
        and ($3::text is null or h.platform = $3) and ($4::text is null or h.event = $4)
        and ($5::int8 is null or (h.range_id = $5 and h.first_idx <= $6::int8 and h.first_idx + coalesce(h.size, 1) > $6::int8))
        and ($8::text is null or h.address = $8)
      order by h.at desc, h.id desc limit $7`,
    [
      f.since ?? null,
      f.rangeId ?? f.address?.rangeId ?? null,
      f.platform ?? null,
      f.event ?? null,
      f.address?.rangeId ?? null,
      f.address?.index ?? null,
      f.limit ?? 100,
      f.addressText ?? null,
    ],
  );
  return rows.map(toHistoryRow);
}

export interface FindResult {
  query: string;
  matches: Array<{
    space: string;
    pool: string | null;
    range: { id: number; type: string; first: string; last: string; platform: string } | null;
    index: number | null;
    lease: {
      kind: string;
      first: string;
      last: string;
      since: Date;
      requestId: string | null;
      note: string | null;
      heldUntil: Date | null;
    } | null;
    poolReservation: string | null;
    history: HistoryRow[];
  }>;
}

// Every history row after `after`, oldest first: the events other systems follow (GET /events,
// the webhooks). Row-level security gives a platform's role its own rows only.
// platform: only its rows (for a session row-level security does not confine).
export async function events(db: Db, after: number, limit: number, platform?: string): Promise<HistoryRow[]> {
  const { rows } = await db.query<RawHistory>(
    `${HISTORY_SELECT}
      where h.id > $1 and ($3::text is null or h.platform = $3) order by h.id limit $2`,
    [after, limit, platform ?? null],
  );
  return rows.map(toHistoryRow);
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
  const { rows } = await db.query<{ id: string }>(`select r.id::text as id from pgipam.address_range r where ${col} order by r.id`, [
    value.toString(),
  ]);
  const seenSpaces = new Set<number>();
  for (const r of rows) {
    const range = (await getRange(db, Number(r.id)))!;
    seenSpaces.add(range.spaceId);
    const base = family === 4 ? BigInt(range.ip4First!) : family === 6 ? range.ip6First! : BigInt(range.macFirst!);
    const index = Number(value - base);
    const lease = (await leasesOverlapping(db, range.id, index, index))[0] ?? null;
    const pool = range.poolId !== null ? ((await getPoolById(db, range.poolId))?.name ?? null) : null;
    result.matches.push({
      space: range.spaceName,
      pool,
      range: {
        id: range.id,
        type: range.type,
        first: addressAt(range, 0),
        last: addressAt(range, range.size - 1),
        platform: range.platform,
      },
      index,
      lease: lease && {
        kind: lease.kind,
        first: addressAt(range, lease.firstIdx),
        last: addressAt(range, lease.lastIdx),
        since: lease.createdAt,
        requestId: lease.requestId,
        note: lease.note,
        heldUntil: lease.heldUntil,
      },
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
        result.matches.push({
          space: p.space,
          pool: p.pool,
          range: null,
          index: null,
          lease: null,
          poolReservation: p.reason,
          history: await history(db, { addressText: formatAddress(family, value), limit: 20 }),
        });
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
    await db.query('delete from pgipam.refusal where at < $1', [before]);
    await db.query('delete from pgipam.reconcile_run where at < $1', [before]);
    await db.query('alter table pgipam.history enable trigger history_append_only');
    await recordHistory(db, ctx, {
      event: 'history_pruned',
      spaceId: null,
      rangeId: null,
      detail: { before: before.toISOString(), rows: rowCount ?? 0 },
    });
    return rowCount ?? 0;
  }).catch((e) => {
    if ((e as { code?: string }).code === '42501')
      throw new IpamError('PERMISSION_DENIED', 'only the owner of the pgipam schema can prune the history');
    throw e;
  });
}
