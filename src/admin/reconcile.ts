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
import { withTransaction } from '../db/client';
import { badRequest } from '../errors';
import type { ActionContext } from '../allocator/context';
import { recordHistory } from '../allocator/history';
import { cutLeases, giveFree, insertLease, leasesOverlapping, takeFree } from '../allocator/lease-queries';
import { lockPools, lockRange } from '../allocator/locks';
import { rangePoolIds, releaseRangeBlocks } from '../allocator/pool-space';
import { type RangeRow, addressAt, deleteRange, rangeUsage } from '../allocator/range-queries';
import { registerAddressRange } from '../allocator/register';
import type { ArType, RangeAddresses } from '../allocator/range-spec';
import { ONED_COMPUTED_ATTRIBUTES } from '../ar-attributes';
import { type Drift, type PgipamRangeSnapshot, type PgipamSpanKind, findDrift } from '../oned-drift';
import type { OnedAddressRange, OnedLeaseOwner, OnedNetwork } from '../oned-view';
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

export async function reconcile(db: Db, view: OnedView, o: ReconcileOptions, ctx: ActionContext): Promise<ReconcileReport> {
  const started = Date.now();
  await checkNamedRanges(db, view.networks, o.mad, ctx.platform);
  let ranges = await readPgipamRanges(db, ctx.platform);
  const findings: Finding[] = findDrift(view.networks, ranges, o.mad)
    .filter((d) => d.kind !== 'orphan-range' || view.complete)
    .map((drift) => ({ drift, where: where(drift, ranges), action: plannedAction(drift, view, o), repaired: false }));
  if (o.fix) {
    const cutoff = new Date(view.readAt.getTime() - o.graceSeconds * 1000);
    const ars = arsByRange(view.networks, o.mad);
    const reRegistered: number[] = [];
    for (const f of findings.filter((x) => x.drift.kind === 'missing-range')) {
      if (await reRegister(db, f, ars, ctx)) reRegistered.push(f.drift.rangeId);
    }
    if (reRegistered.length) {
      // the re-registered ranges' leases are oned's: adopt them as part of that repair
      ranges = await readPgipamRanges(db, ctx.platform);
      const again = findDrift(view.networks, ranges, o.mad).filter((d) => d.kind === 'unknown' && reRegistered.includes(d.rangeId));
      await adopt(
        db,
        again.map((drift) => ({ drift, where: '', action: '', repaired: false })),
        ctx,
      );
    }
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
      `select l.range_id::text, l.first_idx::text as f, l.last_idx::text as l, l.kind, l.created_at
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

// An AR that names a range of another platform, or one of the ranges import recorded for oned's
// own addresses, is not drift of this platform's: the input or the platform is wrong.
async function checkNamedRanges(db: Db, networks: readonly OnedNetwork[], mad: string, platform: string): Promise<void> {
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
    `select id::text, platform, observed from pgipam.address_range where id = any($1::int8[]) and (platform <> $2 or observed) order by id`,
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

const ownerText = (o: OnedLeaseOwner) => (o.kind === 'VM' && o.id === -1 ? 'hold' : `${o.kind} ${o.id}`);

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

// ---------------------------------------------------------------------------------------------
// Repairs.

function arsByRange(networks: readonly OnedNetwork[], mad: string): Map<number, { network: OnedNetwork; ar: OnedAddressRange }> {
  const out = new Map<number, { network: OnedNetwork; ar: OnedAddressRange }>();
  for (const network of networks) {
    if (network.parentNetworkId !== undefined) continue;
    for (const ar of network.addressRanges) {
      if (ar.ipamMad === mad && ar.pgipamRangeId !== undefined) out.set(ar.pgipamRangeId, { network, ar });
    }
  }
  return out;
}

// The AR as a register request: what oned stored, without what oned computes itself.
export function arAsRequest(ar: OnedAddressRange): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(ar.attributes)) {
    if (v === '' || ONED_COMPUTED_ATTRIBUTES.has(k) || k === 'SHARED') continue;
    out[k] = v;
  }
  return out;
}

async function reRegister(
  db: Db,
  f: Finding,
  ars: Map<number, { network: OnedNetwork; ar: OnedAddressRange }>,
  ctx: ActionContext,
): Promise<boolean> {
  const d = f.drift as Extract<Drift, { kind: 'missing-range' }>;
  const { network, ar } = ars.get(d.rangeId)!;
  try {
    await registerAddressRange(db, { ar: arAsRequest(ar), address: {} }, ctx, {
      rangeId: d.rangeId,
      event: 'reconcile_range_registered',
      detail: { oned_network: network.id, oned_ar: ar.arId },
      attrs: { PGIPAM_ONED_NETWORK_ID: String(network.id), PGIPAM_ONED_AR_ID: String(ar.arId) },
    });
  } catch (e) {
    const code = (e as { code?: string }).code;
    const why =
      code === '23505'
        ? `range id ${d.rangeId} is taken by a range this platform cannot see`
        : code === '42501'
          ? 'only the owner of the pgipam schema may register a range under a given id: run as the operator'
          : (e as Error).message;
    f.action = `left: cannot register it again: ${why}`;
    return false;
  }
  f.action = `registered range ${d.rangeId} again, with oned's leases`;
  f.repaired = true;
  return true;
}

function byRange(findings: readonly Finding[]): Map<number, Finding[]> {
  const m = new Map<number, Finding[]>();
  for (const f of findings) {
    let list = m.get(f.drift.rangeId);
    if (!list) m.set(f.drift.rangeId, (list = []));
    list.push(f);
  }
  return m;
}

// Unknown leases become pgipam's, one range per transaction under its row lock, looked at again
// there: an address leased meanwhile is pgipam's already, and stays as it is.
async function adopt(db: Db, findings: readonly Finding[], ctx: ActionContext): Promise<void> {
  for (const [rangeId, list] of byRange(findings)) {
    await withTransaction(db, async () => {
      const range = await lockRange(db, rangeId);
      if (!range) {
        for (const f of list) f.action = 'left: the range is gone';
        return;
      }
      for (const f of list) {
        const d = f.drift as Extract<Drift, { kind: 'unknown' }>;
        if (d.pgipam === 'reservation') continue;
        f.action = await adoptOne(db, range, d, ctx);
        f.repaired = f.action.startsWith('adopted');
      }
    });
  }
}

async function adoptOne(db: Db, range: RangeRow, d: Extract<Drift, { kind: 'unknown' }>, ctx: ActionContext): Promise<string> {
  const [now] = await leasesOverlapping(db, range.id, d.index, d.index);
  const owner = ownerText(d.owner);
  const note = `adopted by reconcile: ${owner} in oned network ${d.networkId} AR ${d.arId}`;
  // an oned hold (VM -1) is what `onevnet hold` made with allocate_address
  const kind = owner === 'hold' ? 'allocation' : 'lease';
  let was: string;
  if (!now) {
    if (!(await takeFree(db, range.id, d.index, d.index))) return 'left: the address is neither free nor leased (run pgipam check)';
    was = 'free';
  } else if (now.kind === 'hold') {
    await cutLeases(db, range.id, [now], d.index, d.index);
    was = 'hold';
  } else if (now.kind === 'reservation') {
    return 'left: reserved in pgipam by an operator meanwhile';
  } else {
    return 'left: leased in pgipam meanwhile';
  }
  await insertLease(db, range.id, [d.index, d.index], kind, ctx, { note });
  await recordHistory(db, ctx, {
    event: 'reconcile_adopted',
    spaceId: range.spaceId,
    rangeId: range.id,
    firstIdx: d.index,
    size: 1,
    address: addressAt(range, d.index),
    detail: { oned_network: d.networkId, oned_ar: d.arId, owner, was },
  });
  return `adopted (${owner}, was ${was})`;
}

// Leaks are freed as free_address frees (on hold, when the range holds freed addresses), only
// the part of them older than the cut-off, looked at again under the range's lock.
async function freeLeaks(db: Db, findings: readonly Finding[], cutoff: Date, ctx: ActionContext): Promise<void> {
  for (const [rangeId, list] of byRange(findings)) {
    await withTransaction(db, async () => {
      const range = await lockRange(db, rangeId);
      if (!range) {
        for (const f of list) f.action = 'left: the range is gone';
        return;
      }
      for (const f of list) {
        const d = f.drift as Extract<Drift, { kind: 'leaked' }>;
        const freed = await freeOld(db, range, d, cutoff, ctx);
        f.repaired = freed === d.last - d.first + 1;
        f.action = f.repaired
          ? `freed${range.holdSeconds > 0 ? ` (on hold for ${range.holdSeconds}s)` : ''}`
          : freed > 0
            ? `freed ${freed} of ${d.last - d.first + 1}; the rest is younger than the grace period or leased anew`
            : `left: leased after ${cutoff.toISOString()} (oned read minus the grace period); a later run frees it`;
      }
    });
  }
}

async function freeOld(db: Db, range: RangeRow, d: Extract<Drift, { kind: 'leaked' }>, cutoff: Date, ctx: ActionContext): Promise<number> {
  const old = (await leasesOverlapping(db, range.id, d.first, d.last)).filter(
    (l) => (l.kind === 'lease' || l.kind === 'allocation') && l.createdAt < cutoff,
  );
  if (!old.length) return 0;
  await cutLeases(db, range.id, old, d.first, d.last);
  let freed = 0;
  for (const l of old) {
    const f = Math.max(l.firstIdx, d.first);
    const la = Math.min(l.lastIdx, d.last);
    freed += la - f + 1;
    if (range.holdSeconds > 0)
      await insertLease(db, range.id, [f, la], 'hold', ctx, { holdSeconds: range.holdSeconds, note: 'freed by reconcile' });
    else await giveFree(db, range.id, f, la);
    await recordHistory(db, ctx, {
      event: 'reconcile_freed',
      spaceId: range.spaceId,
      rangeId: range.id,
      firstIdx: f,
      size: la - f + 1,
      address: addressAt(range, f),
      detail: { oned_network: d.networkId, oned_ar: d.arId, was: l.kind, since: l.createdAt.toISOString() },
    });
  }
  return freed;
}

async function removeOrphan(db: Db, f: Finding, cutoff: Date, ctx: ActionContext): Promise<void> {
  const d = f.drift as Extract<Drift, { kind: 'orphan-range' }>;
  await withTransaction(db, async () => {
    await lockPools(db, await rangePoolIds(db, d.rangeId));
    const range = await lockRange(db, d.rangeId, 'update');
    if (!range) {
      f.action = 'left: the range is gone';
      return;
    }
    if (range.createdAt >= cutoff) {
      f.action = `left: registered after ${cutoff.toISOString()} (oned read minus the grace period); oned may not have stored it yet`;
      return;
    }
    const usage = await rangeUsage(db, range.id);
    const active = (usage.byKind.lease ?? 0) + (usage.byKind.allocation ?? 0);
    if (active > 0) {
      f.action = `left: ${active} addresses are leased in it; if no oned uses it, "pgipam range rm ${range.id} --force"`;
      return;
    }
    await releaseRangeBlocks(db, range.id);
    await deleteRange(db, range.id);
    await recordHistory(db, ctx, {
      event: 'reconcile_range_removed',
      spaceId: range.spaceId,
      rangeId: range.id,
      firstIdx: 0,
      size: range.size,
      address: addressAt(range, 0),
      detail: { released: usage.byKind, created_at: range.createdAt.toISOString() },
    });
    f.action = 'removed';
    f.repaired = true;
  });
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
