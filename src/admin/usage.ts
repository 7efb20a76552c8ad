// `pgipam usage`: address-hours and peak use per period, from the history (CloudStack's usage
// records are the model: what was in use, for how long, by whom). Replays the history in order,
// address by address, so that it is right across the ways use ends:
//   * a block leased at once (a reservation's get_address of SIZE 4) freed address by address;
//   * a free that puts the address on hold: the hold is not use, the use ended at the free;
//   * a range removed or unregistered with addresses still leased: their use ends then;
//   * leases adopted by reconcile or recorded by import start when they were recorded.
// Operators' reservations are not use. History pruned away is not known: use that started before
// the oldest row left is not counted (the report says from when it is exact).
import type { Db } from '../db/client';
import { IpamError } from '../errors';

export type UsageGrouping = 'platform' | 'pool' | 'range' | 'space';
export type UsagePeriod = 'hour' | 'day' | 'month' | 'all';

export interface UsageOptions {
  since: Date;
  until: Date;
  by: UsageGrouping;
  period: UsagePeriod;
}

export interface UsageRow {
  periodStart: Date;
  group: string;
  addressHours: number;
  peak: number;
  // addresses whose use started in the period
  started: number;
}

export interface UsageReport {
  since: Date;
  until: Date;
  by: UsageGrouping;
  period: UsagePeriod;
  // the oldest history row: use before it is not known
  historyFrom: Date | null;
  rows: UsageRow[];
}

const STARTS = new Set(['address_leased', 'address_allocated', 'reconcile_adopted', 'lease_imported']);
const ENDS = new Set(['address_freed', 'reconcile_freed', 'lease_import_removed']);
const RANGE_ENDS = new Set(['range_unregistered', 'range_removed', 'reconcile_range_removed']);
const RANGE_STARTS = new Set(['range_registered', 'range_imported', 'reconcile_range_registered']);

interface HistoryRow {
  at: Date;
  event: string;
  range_id: string | null;
  first_idx: string | null;
  size: string | null;
  platform: string | null;
  space: string | null;
  pool: string | null;
}

export async function usage(db: Db, o: UsageOptions): Promise<UsageReport> {
  if (o.until <= o.since) throw new IpamError('BAD_REQUEST', '--until must be after --since');
  const { rows } = await db.query<HistoryRow>(
    `select h.at, h.event, h.range_id::text, h.first_idx::text, h.size::text, h.platform, s.name as space, h.detail->>'pool' as pool
       from pgipam.history h left join pgipam.space s on s.id = h.space_id
      where h.at < $1 and (h.event = any($2::text[]))
      order by h.at, h.id`,
    [o.until, [...STARTS, ...ENDS, ...RANGE_ENDS, ...RANGE_STARTS]],
  );
  const oldest = await db.query<{ at: Date | null }>('select min(at) as at from pgipam.history');
  const live = await db.query<{ id: string; pool: string | null; platform: string; space: string }>(
    `select r.id::text, p.name as pool, r.platform, s.name as space
       from pgipam.address_range r join pgipam.space s on s.id = r.space_id left join pgipam.pool p on p.id = r.pool_id`,
  );
  const meta = new Map<string, { pool: string | null; platform: string; space: string }>();
  for (const r of live.rows) meta.set(r.id, { pool: r.pool, platform: r.platform, space: r.space });
  const acc = new Accumulator(o);
  // per range: index -> [start, group]
  const active = new Map<string, Map<number, { start: Date; group: string }>>();
  for (const h of rows) {
    if (h.range_id === null) continue;
    if (RANGE_STARTS.has(h.event)) {
      if (!meta.has(h.range_id)) meta.set(h.range_id, { pool: h.pool, platform: h.platform ?? '', space: h.space ?? '' });
      continue;
    }
    const m = meta.get(h.range_id) ?? { pool: null, platform: h.platform ?? '', space: h.space ?? '' };
    let held = active.get(h.range_id);
    if (!held) active.set(h.range_id, (held = new Map()));
    if (RANGE_ENDS.has(h.event)) {
      for (const [, a] of held) acc.end(a.group, a.start, h.at);
      active.delete(h.range_id);
      continue;
    }
    const first = Number(h.first_idx ?? 0);
    const size = Number(h.size ?? 1);
    for (let i = first; i < first + size; i++) {
      const a = held.get(i);
      if (STARTS.has(h.event)) {
        if (a) continue;
        const group = groupOf(o.by, h.range_id, m, h.platform);
        held.set(i, { start: h.at, group });
        acc.start(group, h.at);
      } else if (a) {
        acc.end(a.group, a.start, h.at);
        held.delete(i);
      }
    }
  }
  for (const held of active.values()) for (const a of held.values()) acc.end(a.group, a.start, o.until);
  return { ...o, historyFrom: oldest.rows[0]?.at ?? null, rows: acc.rows() };
}

function groupOf(by: UsageGrouping, rangeId: string, m: { pool: string | null; platform: string; space: string }, platform: string | null) {
  switch (by) {
    case 'platform':
      return platform ?? m.platform;
    case 'pool':
      return m.pool ?? '(no pool)';
    case 'range':
      return rangeId;
    case 'space':
      return m.space;
  }
}

// The start of the period holding t, in UTC.
export function periodStart(t: Date, period: UsagePeriod, since: Date): Date {
  if (period === 'all') return since;
  const d = new Date(t);
  if (period === 'month') return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1));
  if (period === 'day') return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), d.getUTCHours()));
}

function nextPeriod(start: Date, period: UsagePeriod, until: Date): Date {
  if (period === 'all') return until;
  if (period === 'month') return new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + 1, 1));
  return new Date(start.getTime() + (period === 'day' ? 86_400_000 : 3_600_000));
}

// Address-hours split over the periods an interval spans, and the peak of concurrent use per
// period: a sweep over +1 / -1 changes, each group's count carried from period to period.
class Accumulator {
  private readonly cells = new Map<string, UsageRow>();
  private readonly changes: Array<{ t: number; group: string; delta: number }> = [];

  constructor(private readonly o: UsageOptions) {}

  start(group: string, at: Date): void {
    this.changes.push({ t: at.getTime(), group, delta: 1 });
    if (at >= this.o.since && at < this.o.until) this.cell(periodStart(at, this.o.period, this.o.since), group).started++;
  }

  end(group: string, start: Date, end: Date): void {
    this.changes.push({ t: end.getTime(), group, delta: -1 });
    let from = new Date(Math.max(start.getTime(), this.o.since.getTime()));
    const to = new Date(Math.min(end.getTime(), this.o.until.getTime()));
    while (from < to) {
      const p = periodStart(from, this.o.period, this.o.since);
      const next = new Date(Math.min(nextPeriod(p, this.o.period, this.o.until).getTime(), to.getTime()));
      this.cell(p, group).addressHours += (next.getTime() - from.getTime()) / 3_600_000;
      from = next;
    }
  }

  private cell(p: Date, group: string): UsageRow {
    const key = `${p.toISOString()}|${group}`;
    let c = this.cells.get(key);
    if (!c) this.cells.set(key, (c = { periodStart: p, group, addressHours: 0, peak: 0, started: 0 }));
    return c;
  }

  rows(): UsageRow[] {
    // ends before starts at the same instant: an address freed and leased again at once is one in use
    const changes = this.changes.sort((a, b) => a.t - b.t || a.delta - b.delta);
    const count = new Map<string, number>();
    const since = this.o.since.getTime();
    const until = this.o.until.getTime();
    const touch = (group: string, t: number) => {
      const n = count.get(group) ?? 0;
      const c = this.cell(periodStart(new Date(t), this.o.period, this.o.since), group);
      c.peak = Math.max(c.peak, n);
    };
    for (const ch of changes) {
      if (ch.t >= until) break;
      count.set(ch.group, (count.get(ch.group) ?? 0) + ch.delta);
      if (ch.t >= since) touch(ch.group, ch.t);
    }
    // what was in use when each period began counts towards its peak too
    const carried = new Map<string, number>();
    let i = 0;
    for (
      let p = periodStart(this.o.since, this.o.period, this.o.since);
      p.getTime() < until;
      p = nextPeriod(p, this.o.period, this.o.until)
    ) {
      const at = Math.max(p.getTime(), since);
      for (; i < changes.length && changes[i]!.t <= at; i++)
        carried.set(changes[i]!.group, (carried.get(changes[i]!.group) ?? 0) + changes[i]!.delta);
      for (const [group, n] of carried) if (n > 0) this.cell(p, group).peak = Math.max(this.cell(p, group).peak, n);
      if (this.o.period === 'all') break;
    }
    return [...this.cells.values()]
      .filter((c) => c.addressHours > 0 || c.peak > 0 || c.started > 0)
      .sort((a, b) => a.periodStart.getTime() - b.periodStart.getTime() || (a.group < b.group ? -1 : a.group > b.group ? 1 : 0));
  }
}
