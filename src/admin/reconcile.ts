// `pgipam reconcile`: compares oned's lease map (src/oned-view.ts) with pgipam's, says where they
// disagree (src/oned-drift.ts decides), and with --fix repairs what is safe to repair:
//   * unknown leases (oned's, free in pgipam) are adopted at once: pgipam could hand them out again;
//   * leaks (pgipam's, not in oned) are freed, and orphan ranges (no AR points at them) removed,
//     only when older than oned's read minus the grace period: a get_address or a registration
//     still on its way into oned's map (oned waits 90 s, then the MAD's serial queue) is never
//     undone. An orphan that still holds leases is left to the operator, and orphans are judged
//     only when the input included `onevnet list -x` (a partial input is not "no AR");
//   * missing ranges (an IPAM AR whose range pgipam lacks: a restored backup, an asynchronous
//     failover) are registered again under the id oned stores in the AR, with oned's leases.
// Mismatched and resized ARs are left to the operator, with the command that resolves them.
//
// Safe beside running actions: every repair is its own transaction, takes the locks the actions
// take in their order (pools, then one range: allocator/locks.ts) and looks again under the lock,
// so a lease made after oned's view was read is never freed and an address leased meanwhile is
// never adopted twice. Each repair is one history row; a second --fix finds nothing to do.
import type { Db } from '../db/client';
import { badRequest } from '../errors';
import type { ActionContext } from '../allocator/context';
import { addressAt } from '../allocator/range-queries';
import type { ArType, RangeAddresses } from '../allocator/range-spec';
import { type Drift, type PgipamRangeSnapshot, type PgipamSpanKind, findDrift } from '../oned-drift';
import type { OnedNetwork } from '../oned-view';
import { parseIPv4, parseIPv6, parseMac } from '../address';
import { adopt, arsByRange, freeLeaks, ownerText, reRegister, removeOrphan } from './reconcile-repairs';
import { PGIPAM_VERSION } from '../version';
import type { OnedView } from './oned-input';

export const DRIFT_KINDS = ['unknown', 'leaked', 'missing-range', 'orphan-range', 'mismatched', 'resized'] as const;
export type DriftKind = (typeof DRIFT_KINDS)[number];

// oned waits 90 s for a reply and its MAD runs one action at a time: a lease younger than this
// (before oned's view was read) may still be on its way into oned's map.
export const DEFAULT_GRACE_SECONDS = 15 * 60;

export interface ReconcileOptions {
  mad: string;
  fix: boolean;
  graceSeconds: number;
}

export interface Finding {
  drift: Drift;
  // where, as addresses: "10.70.0.40", "10.70.0.20 - 10.70.0.21", or the range's span
  where: string;
  // what --fix does about it (or did), and whether it did
  action: string;
  repaired: boolean;
}

export interface ReconcileReport {
  platform: string;
  mad: string;
  onedReadAt: Date;
  complete: boolean;
  networks: number;
  onedLeases: number;
  ranges: number;
  // IPAM ARs without PGIPAM_RANGE_ID ("onevnet updatear" can drop it) matched by first address
  matchedByAddress: Array<{ networkId: number; arId: number; rangeId: number }>;
  fix: boolean;
  graceSeconds: number;
  findings: Finding[];
  found: Record<DriftKind, number>;
  repaired: Record<DriftKind, number>;
  durationMs: number;
}

interface SnapshotRange extends PgipamRangeSnapshot {
  addresses: RangeAddresses;
}

export async function reconcile(db: Db, given: OnedView, o: ReconcileOptions, ctx: ActionContext): Promise<ReconcileReport> {
  const started = Date.now();
  const resolved = await resolveUnnamedArs(db, given.networks, o.mad, ctx.platform);
  const view = { ...given, networks: resolved.networks };
  await checkNamedRanges(db, view.networks, o.mad, ctx.platform);
  const ranges = await readPgipamRanges(db, ctx.platform);
  const findings: Finding[] = findDrift(view.networks, ranges, o.mad)
    .filter((d) => d.kind !== 'orphan-range' || view.complete)
    .map((drift) => ({ drift, where: where(drift, ranges), action: plannedAction(drift, view, o), repaired: false }));
  if (o.fix) {
    const cutoff = new Date(view.readAt.getTime() - o.graceSeconds * 1000);
    const ars = arsByRange(view.networks, o.mad);
    // a missing range comes back with oned's leases, in one transaction
    for (const f of findings.filter((x) => x.drift.kind === 'missing-range')) await reRegister(db, f, ars, ctx);
    await adopt(
      db,
      findings.filter((x) => x.drift.kind === 'unknown'),
      ctx,
    );
    await freeLeaks(
      db,
      findings.filter((x) => x.drift.kind === 'leaked'),
      cutoff,
      ctx,
    );
    for (const f of findings.filter((x) => x.drift.kind === 'orphan-range')) await removeOrphan(db, f, cutoff, ctx);
  }
  const count = (pick: (f: Finding) => boolean) =>
    Object.fromEntries(DRIFT_KINDS.map((k) => [k, findings.filter((f) => f.drift.kind === k && pick(f)).length])) as Record<
      DriftKind,
      number
    >;
  const report: ReconcileReport = {
    platform: ctx.platform,
    mad: o.mad,
    onedReadAt: view.readAt,
    complete: view.complete,
    networks: view.networks.length,
    onedLeases: view.networks.reduce((n, net) => n + net.addressRanges.reduce((m, ar) => m + (ar.leases?.length ?? 0), 0), 0),
    ranges: ranges.length,
    matchedByAddress: resolved.matched,
    fix: o.fix,
    graceSeconds: o.graceSeconds,
    findings,
    found: count(() => true),
    repaired: count((f) => f.repaired),
    durationMs: 0,
  };
  report.durationMs = Date.now() - started;
  await recordRun(db, report);
  return report;
}

// ---------------------------------------------------------------------------------------------
// pgipam's side: the platform's ranges (observed ones are oned's own) and their occupied spans,
// read in one snapshot.

async function readPgipamRanges(db: Db, platform: string): Promise<SnapshotRange[]> {
  await db.query('begin isolation level repeatable read read only');
  try {
    const { rows } = await db.query<{
      id: string;
      size: string;
      created_at: Date;
      ar_type: ArType;
      ip4_first: string | null;
      ip6_first: string | null;
      mac_first: string | null;
      prefix_length: number | null;
    }>(
      `select r.id::text, r.size::text, r.created_at, r.ar_type, r.ip4_first::text, r.ip6_first::text, r.mac_first::text, r.prefix_length
         from pgipam.address_range r where r.platform = $1 and not r.observed order by r.id`,
      [platform],
    );
    const { rows: spans } = await db.query<{ range_id: string; f: string; l: string; kind: PgipamSpanKind; created_at: Date }>(
      // a lease of another owner (pgipam lease, the API) is not oned's: reconcile takes it for a
      // reservation, never a leak to free nor an address oned may have
      `select l.range_id::text, l.first_idx::text as f, l.last_idx::text as l,
              case when l.owner is not null then 'reservation' else l.kind end as kind, l.created_at
         from pgipam.lease l join pgipam.address_range r on r.id = l.range_id
        where r.platform = $1 and not r.observed order by l.range_id, l.first_idx`,
      [platform],
    );
    const byRange = new Map<number, PgipamRangeSnapshot['spans'][number][]>();
    for (const s of spans) {
      const id = Number(s.range_id);
      let list = byRange.get(id);
      if (!list) byRange.set(id, (list = []));
      list.push({ first: Number(s.f), last: Number(s.l), kind: s.kind, createdAt: s.created_at });
    }
    return rows.map((r) => {
      const addresses: RangeAddresses = {
        type: r.ar_type,
        size: Number(r.size),
        ip4First: r.ip4_first === null ? null : Number(r.ip4_first),
        ip6First: r.ip6_first === null ? null : BigInt(r.ip6_first),
        macFirst: r.mac_first === null ? null : Number(r.mac_first),
        prefixLength: r.prefix_length,
      };
      return {
        rangeId: Number(r.id),
        size: addresses.size,
        createdAt: r.created_at,
        type: r.ar_type,
        ip4First: addresses.ip4First,
        ip6First: addresses.ip6First,
        macFirst: addresses.macFirst,
        spans: byRange.get(Number(r.id)) ?? [],
        addresses,
      };
    });
  } finally {
    await db.query('rollback');
  }
}

// An IPAM AR of pgipam's whose PGIPAM_RANGE_ID is gone -- `onevnet updatear` replaces the AR's
// attributes with the ones given, and a real oned showed one without it -- is found as the
// driver finds it (allocator/range-resolution.ts): by its first IP, IP6 or MAC in its space.
// Without this its range would look like an orphan, and --fix could remove it.
export async function resolveUnnamedArs(
  db: Db,
  networks: readonly OnedNetwork[],
  mad: string,
  platform: string,
): Promise<{ networks: OnedNetwork[]; matched: Array<{ networkId: number; arId: number; rangeId: number }> }> {
  const matched: Array<{ networkId: number; arId: number; rangeId: number }> = [];
  const out: OnedNetwork[] = [];
  for (const net of networks) {
    if (net.parentNetworkId !== undefined || !net.addressRanges.some((a) => a.ipamMad === mad && a.pgipamRangeId === undefined)) {
      out.push(net);
      continue;
    }
    const ars = [];
    for (const ar of net.addressRanges) {
      const id = ar.ipamMad === mad && ar.pgipamRangeId === undefined ? await rangeByFirstAddress(db, ar, platform) : null;
      if (id !== null) matched.push({ networkId: net.id, arId: ar.arId, rangeId: id });
      ars.push(id === null ? ar : { ...ar, pgipamRangeId: id });
    }
    out.push({ ...net, addressRanges: ars });
  }
  return { networks: out, matched };
}

async function rangeByFirstAddress(db: Db, ar: OnedNetwork['addressRanges'][number], platform: string): Promise<number | null> {
  const a = ar.attributes;
  const type = ar.type.toUpperCase();
  const [column, value] =
    a['IP'] && ['IP4', 'IP4_6', 'IP4_6_STATIC'].includes(type)
      ? ['ip4_first', String(parseIPv4(a['IP'], `AR ${ar.arId} IP`))]
      : a['IP6'] && ['IP6_STATIC', 'IP4_6_STATIC'].includes(type)
        ? ['ip6_first', parseIPv6(a['IP6'], `AR ${ar.arId} IP6`).toString()]
        : a['MAC']
          ? ['mac_first', String(parseMac(a['MAC'], `AR ${ar.arId} MAC`))]
          : [null, null];
  if (column === null) return null;
  const { rows } = await db.query<{ id: string }>(
    `select r.id::text as id from pgipam.address_range r join pgipam.space s on s.id = r.space_id
      where s.name = $1 and r.platform = $2 and not r.observed and r.${column} = $3::numeric order by r.id limit 1`,
    [a['PGIPAM_SPACE'] ?? 'default', platform, value],
  );
  return rows[0] ? Number(rows[0].id) : null;
}

// An AR that names a range of another platform, or one of the ranges import recorded for oned's
// own addresses, is not drift of this platform's: the input or the platform is wrong.
export async function checkNamedRanges(db: Db, networks: readonly OnedNetwork[], mad: string, platform: string): Promise<void> {
  const named = new Map<number, string>();
  for (const net of networks) {
    if (net.parentNetworkId !== undefined) continue;
    for (const ar of net.addressRanges) {
      if (ar.ipamMad !== mad || ar.pgipamRangeId === undefined) continue;
      const here = `AR ${ar.arId} of network ${net.id}`;
      const before = named.get(ar.pgipamRangeId);
      if (before)
        throw badRequest(`${here} and ${before} both name pgipam range ${ar.pgipamRangeId}: an AR copied by hand? remove one of them`);
      named.set(ar.pgipamRangeId, here);
    }
  }
  if (!named.size) return;
  const { rows } = await db.query<{ id: string; platform: string; observed: boolean }>(
    `select r.id::text as id, r.platform, r.observed from pgipam.address_range r where r.id = any($1::int8[]) and (r.platform <> $2 or r.observed) order by r.id`,
    [[...named.keys()], platform],
  );
  const r = rows[0];
  if (!r) return;
  const ar = named.get(Number(r.id))!;
  if (r.observed) throw badRequest(`${ar} names pgipam range ${r.id}, which pgipam import recorded for oned's own addresses`);
  throw badRequest(
    `${ar} names pgipam range ${r.id} of platform "${r.platform}", not of "${platform}": reconcile this oned as its own platform (--platform)`,
  );
}

// ---------------------------------------------------------------------------------------------
// What the report says.

function where(d: Drift, ranges: readonly SnapshotRange[]): string {
  const range = ranges.find((r) => r.rangeId === d.rangeId);
  if (!range) return '';
  const at = (i: number) => addressAt(range.addresses, i);
  switch (d.kind) {
    case 'unknown':
      return at(d.index);
    case 'leaked':
      return d.first === d.last ? at(d.first) : `${at(d.first)} - ${at(d.last)}`;
    default:
      return `${at(0)} - ${at(range.size - 1)}`;
  }
}

function plannedAction(d: Drift, view: OnedView, o: ReconcileOptions): string {
  const grace = `older than ${o.graceSeconds}s before oned was read`;
  switch (d.kind) {
    case 'unknown':
      return d.pgipam === 'reservation'
        ? `left: reserved in pgipam by an operator; "pgipam unreserve" it, or release it in oned`
        : `adopt (${ownerText(d.owner)}, ${d.pgipam} in pgipam)`;
    case 'leaked':
      return `free, if ${grace}`;
    case 'missing-range':
      return `register range ${d.rangeId} again from AR ${d.arId} of network ${d.networkId}, with oned's leases`;
    case 'orphan-range':
      return view.complete ? `remove, if ${grace} and nothing is leased in it` : 'left: the input has no onevnet list -x';
    case 'mismatched':
      return `left: ${d.problems.join(', ')}; the AR does not describe range ${d.rangeId}`;
    case 'resized':
      return `left: run "pgipam range resize ${d.rangeId} --size ${d.onedSize}"`;
  }
}

// The last run of each platform, as metrics and doctor report it.
export interface LastReconcileRun {
  platform: string;
  at: Date;
  ageSeconds: number; // on the database's clock
  durationMs: number;
  found: Record<string, number>;
  repaired: Record<string, number>;
}

export async function lastReconcileRuns(db: Db): Promise<LastReconcileRun[]> {
  const { rows } = await db.query<{
    platform: string;
    at: Date;
    age: number;
    ms: number;
    found: Record<string, number>;
    repaired: Record<string, number>;
  }>(
    `select distinct on (platform) platform, at, extract(epoch from now() - at)::float8 as age, duration_ms as ms, found, repaired
       from pgipam.reconcile_run order by platform, at desc`,
  );
  return rows.map((r) => ({ platform: r.platform, at: r.at, ageSeconds: r.age, durationMs: r.ms, found: r.found, repaired: r.repaired }));
}

async function recordRun(db: Db, r: ReconcileReport): Promise<void> {
  await db.query(
    `insert into pgipam.reconcile_run (platform, oned_read_at, networks, oned_leases, found, repaired, fix, grace_seconds, duration_ms, pgipam_version)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
    [
      r.platform,
      r.onedReadAt,
      r.networks,
      r.onedLeases,
      JSON.stringify(r.found),
      JSON.stringify(r.repaired),
      r.fix,
      r.graceSeconds,
      r.durationMs,
      PGIPAM_VERSION,
    ],
  );
}
