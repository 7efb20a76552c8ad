// `pgipam metrics`: the state of the address space in Prometheus' text exposition format, for
// node_exporter's textfile collector (or any scraper of a file). prom-client writes the format
// (names, HELP and TYPE lines, label escaping); this module only reads the database.
import { Gauge, Registry } from 'prom-client';
import type { Db } from '../db/client';
import { SCHEMA_VERSION, schemaVersion } from '../db/migrate';
import { formatAddress, type Family } from '../allocator/pool-space';
import { lastReconcileRuns } from './reconcile';

export interface MetricsOptions {
  // the window for the action counts, in seconds
  intervalSeconds: number;
}

export async function collectMetrics(db: Db, o: MetricsOptions): Promise<string> {
  const registry = new Registry();
  const gauge = (name: string, help: string, labelNames: string[] = []) => new Gauge({ name, help, labelNames, registers: [registry] });
  await db.query('begin isolation level repeatable read read only');
  try {
    await rangeMetrics(db, gauge);
    await poolMetrics(db, gauge);
    await activityMetrics(db, gauge, o.intervalSeconds);
    await reconcileMetrics(db, gauge);
    gauge('pgipam_schema_version', 'schema version of the database').set(await schemaVersion(db));
    gauge('pgipam_schema_version_expected', 'schema version this pgipam expects').set(SCHEMA_VERSION);
    gauge('pgipam_metrics_generated_timestamp_seconds', 'when these metrics were read from the database').set(Date.now() / 1000);
  } finally {
    await db.query('rollback');
  }
  return registry.metrics();
}

type GaugeOf = (name: string, help: string, labelNames?: string[]) => Gauge;

async function rangeMetrics(db: Db, gauge: GaugeOf): Promise<void> {
  const size = gauge('pgipam_range_size', 'addresses of a range', ['range', 'space', 'pool', 'platform', 'type']);
  const addresses = gauge('pgipam_range_addresses', 'addresses of a range by state (lease, allocation, reservation, hold, free)', [
    'range',
    'space',
    'state',
  ]);
  const space = gauge('pgipam_space_addresses', 'addresses of all ranges of an address space by state', ['space', 'state']);
  const { rows } = await db.query<{
    id: string;
    space: string;
    pool: string | null;
    platform: string;
    type: string;
    size: string;
    lease: string;
    allocation: string;
    reservation: string;
    hold: string;
  }>(
    `select r.id::text, s.name as space, p.name as pool, r.platform, r.ar_type as type, r.size::text,
            coalesce(sum(l.last_idx - l.first_idx + 1) filter (where l.kind = 'lease'), 0)::text as lease,
            coalesce(sum(l.last_idx - l.first_idx + 1) filter (where l.kind = 'allocation'), 0)::text as allocation,
            coalesce(sum(l.last_idx - l.first_idx + 1) filter (where l.kind = 'reservation'), 0)::text as reservation,
            coalesce(sum(l.last_idx - l.first_idx + 1) filter (where l.kind = 'hold'), 0)::text as hold
       from pgipam.address_range r join pgipam.space s on s.id = r.space_id left join pgipam.pool p on p.id = r.pool_id
       left join pgipam.lease l on l.range_id = r.id
      group by r.id, s.name, p.name order by r.id`,
  );
  const bySpace = new Map<string, Record<string, number>>();
  for (const r of rows) {
    size.set({ range: r.id, space: r.space, pool: r.pool ?? '', platform: r.platform, type: r.type }, Number(r.size));
    const states = { lease: Number(r.lease), allocation: Number(r.allocation), reservation: Number(r.reservation), hold: Number(r.hold) };
    const all = { ...states, free: Number(r.size) - states.lease - states.allocation - states.reservation - states.hold };
    const sum = bySpace.get(r.space) ?? { lease: 0, allocation: 0, reservation: 0, hold: 0, free: 0 };
    for (const [state, n] of Object.entries(all)) {
      addresses.set({ range: r.id, space: r.space, state }, n);
      sum[state] = (sum[state] ?? 0) + n;
    }
    bySpace.set(r.space, sum);
  }
  for (const [name, states] of bySpace) for (const [state, n] of Object.entries(states)) space.set({ space: name, state }, n);
}

async function poolMetrics(db: Db, gauge: GaugeOf): Promise<void> {
  const size = gauge('pgipam_pool_prefix_size', 'addresses of a pool prefix', ['pool', 'space', 'prefix']);
  const addresses = gauge('pgipam_pool_prefix_addresses', 'addresses of a pool prefix by state (carved, reserved, free)', [
    'pool',
    'space',
    'prefix',
    'state',
  ]);
  const subnets = gauge('pgipam_pool_subnets', 'subnets carved from a pool (or taken by explicit ranges)', ['pool', 'space', 'family']);
  const free = gauge(
    'pgipam_pool_free_blocks',
    'free aligned blocks of a pool by prefix length: a /n can still be carved while a block of length <= n is free',
    ['pool', 'space', 'family', 'prefix_length'],
  );
  const { rows } = await db.query<{
    pool: string;
    space: string;
    family: number;
    network: string;
    len: number;
    size: string;
    carved: string;
    reserved: string;
    free: string;
  }>(
    `select p.name as pool, s.name as space, x.family, x.network::text, x.prefix_length as len, (x.last - x.network + 1)::text as size,
            coalesce((select sum(a.last - a.network + 1) from pgipam.pool_allocation a where a.pool_id = p.id and a.family = x.family and a.span <@ x.span), 0)::text as carved,
            coalesce((select sum(r.last - r.first + 1) from pgipam.pool_reservation r where r.pool_id = p.id and r.family = x.family and r.span <@ x.span), 0)::text as reserved,
            trunc(coalesce((select sum(power(2::numeric, (case f.family when 4 then 32 else 128 end) - f.prefix_length)) from pgipam.pool_free_block f
              where f.pool_id = p.id and f.family = x.family and f.network between x.network and x.last), 0))::text as free
       from pgipam.pool p join pgipam.space s on s.id = p.space_id join pgipam.pool_prefix x on x.pool_id = p.id
      order by p.name, x.family, x.network`,
  );
  for (const r of rows) {
    const prefix = `${formatAddress(Number(r.family) as Family, BigInt(r.network))}/${r.len}`;
    // IPv6 prefixes are far larger than a float64 counts exactly; Prometheus values are float64 anyway
    size.set({ pool: r.pool, space: r.space, prefix }, Number(r.size));
    for (const state of ['carved', 'reserved', 'free'] as const)
      addresses.set({ pool: r.pool, space: r.space, prefix, state }, Number(r[state]));
  }
  const counts = await db.query<{ pool: string; space: string; family: number; what: string; len: number | null; n: number }>(
    `select p.name as pool, s.name as space, a.family, 'subnets' as what, null::int as len, count(*)::int as n
       from pgipam.pool_allocation a join pgipam.pool p on p.id = a.pool_id join pgipam.space s on s.id = p.space_id group by 1, 2, 3
     union all
     select p.name, s.name, f.family, 'free', f.prefix_length, count(*)::int
       from pgipam.pool_free_block f join pgipam.pool p on p.id = f.pool_id join pgipam.space s on s.id = p.space_id group by 1, 2, 3, 5`,
  );
  for (const c of counts.rows) {
    const labels = { pool: c.pool, space: c.space, family: String(c.family) };
    if (c.what === 'subnets') subnets.set(labels, c.n);
    else free.set({ ...labels, prefix_length: String(c.len) }, c.n);
  }
}

async function activityMetrics(db: Db, gauge: GaugeOf, intervalSeconds: number): Promise<void> {
  const events = gauge('pgipam_history_events', `changes recorded in the history over the last interval (pgipam_interval_seconds)`, [
    'event',
    'platform',
  ]);
  const refusals = gauge('pgipam_refusals', 'actions the driver refused over the last interval, by action and reason', [
    'action',
    'code',
    'platform',
  ]);
  const oldest = gauge('pgipam_oldest_lease_timestamp_seconds', 'when the oldest lease of each kind was made', ['kind']);
  gauge('pgipam_interval_seconds', 'the window of pgipam_history_events and pgipam_refusals').set(intervalSeconds);
  const ev = await db.query<{ event: string; platform: string | null; n: number }>(
    `select event, platform, count(*)::int as n from pgipam.history where at > now() - $1::int8 * interval '1 second' group by 1, 2`,
    [intervalSeconds],
  );
  for (const r of ev.rows) events.set({ event: r.event, platform: r.platform ?? '' }, r.n);
  const rf = await db.query<{ action: string; code: string; platform: string; n: number }>(
    `select action, code, platform, count(*)::int as n from pgipam.refusal where at > now() - $1::int8 * interval '1 second' group by 1, 2, 3`,
    [intervalSeconds],
  );
  for (const r of rf.rows) refusals.set({ action: r.action, code: r.code, platform: r.platform }, r.n);
  const ol = await db.query<{ kind: string; t: number }>(
    `select kind, extract(epoch from min(created_at))::float8 as t from pgipam.lease where kind in ('lease', 'allocation') group by 1`,
  );
  for (const r of ol.rows) oldest.set({ kind: r.kind }, r.t);
}

// The last `pgipam reconcile` of each platform: what it found and repaired per kind of drift.
// Alert on pgipam_reconcile_drift - pgipam_reconcile_repaired > 0 (unknown leases above all), and
// on a last run that is too old.
async function reconcileMetrics(db: Db, gauge: GaugeOf): Promise<void> {
  const found = gauge('pgipam_reconcile_drift', 'drift between oned and pgipam the last reconcile found, by kind', ['platform', 'kind']);
  const repaired = gauge('pgipam_reconcile_repaired', 'drift the last reconcile repaired (--fix), by kind', ['platform', 'kind']);
  const at = gauge('pgipam_reconcile_last_run_timestamp_seconds', 'when the last reconcile ran', ['platform']);
  const took = gauge('pgipam_reconcile_duration_seconds', 'how long the last reconcile took', ['platform']);
  const rows = await lastReconcileRuns(db);
  for (const r of rows) {
    at.set({ platform: r.platform }, r.at.getTime() / 1000);
    took.set({ platform: r.platform }, r.durationMs / 1000);
    for (const [kind, n] of Object.entries(r.found)) found.set({ platform: r.platform, kind }, n);
    for (const [kind, n] of Object.entries(r.repaired)) repaired.set({ platform: r.platform, kind }, n);
  }
}
