// The repairs of `pgipam reconcile --fix` (admin/reconcile.ts says which and when): each one
// transaction per range under the actions' locks (allocator/locks.ts), looking again under the
// lock at what the snapshot said, and one history row per repair.
import type { Db } from '../db/client';
import { withTransaction } from '../db/client';
import type { ActionContext } from '../allocator/context';
import { recordHistory } from '../allocator/history';
import { cutLeases, insertLease, leasesOverlapping, takeFree } from '../allocator/lease-queries';
import { lockPools, lockRange } from '../allocator/locks';
import { rangePoolIds } from '../allocator/pool-space';
import { type RangeRow, addressAt, rangeUsage } from '../allocator/range-queries';
import { dropRange } from '../allocator/unregister';
import { registerAddressRange } from '../allocator/register';
import { freeLeaseParts } from '../allocator/free-address';
import { ONED_COMPUTED_ATTRIBUTES } from '../ar-attributes';
import type { Drift } from '../oned-drift';
import type { OnedAddressRange, OnedLeaseOwner, OnedNetwork } from '../oned-view';
import type { Finding } from './reconcile';
import { macIndex, parseMac } from '../address';

export const ownerText = (o: OnedLeaseOwner) => (o.kind === 'VM' && o.id === -1 ? 'hold' : `${o.kind} ${o.id}`);

export function arsByRange(networks: readonly OnedNetwork[], mad: string): Map<number, { network: OnedNetwork; ar: OnedAddressRange }> {
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

export async function reRegister(
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
      leases: onedLeasesOf(network, ar, 'adopted by reconcile'),
      leaseEvent: 'reconcile_adopted',
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
  f.action = `registered range ${d.rangeId} again, with oned's ${ar.leases?.length ?? 0} leases`;
  f.repaired = true;
  return true;
}

// oned's leases of an AR as the leases of a range registered for it: an oned hold (VM -1) is what
// `onevnet hold` made with allocate_address.
export function onedLeasesOf(network: OnedNetwork, ar: OnedAddressRange, why: string) {
  const first = parseMac(ar.attributes['MAC'] ?? '', `AR ${ar.arId} of network ${network.id} MAC`);
  return (ar.leases ?? []).map((l) => {
    const owner = ownerText(l.owner);
    return {
      index: macIndex(first, parseMac(l.mac))!,
      kind: owner === 'hold' ? ('allocation' as const) : ('lease' as const),
      note: `${why}: ${owner} in oned network ${network.id} AR ${ar.arId}`,
      detail: { oned_network: network.id, oned_ar: ar.arId, owner },
    };
  });
}

// Each range of the findings in a transaction of its own, under its row lock (locks.ts), with its
// findings; a range removed meanwhile leaves them, saying so.
async function eachLockedRange(
  db: Db,
  findings: readonly Finding[],
  repair: (range: RangeRow, list: readonly Finding[]) => Promise<void>,
): Promise<void> {
  const byRange = new Map<number, Finding[]>();
  for (const f of findings) {
    let list = byRange.get(f.drift.rangeId);
    if (!list) byRange.set(f.drift.rangeId, (list = []));
    list.push(f);
  }
  for (const [rangeId, list] of byRange) {
    await withTransaction(db, async () => {
      const range = await lockRange(db, rangeId);
      if (range) return repair(range, list);
      for (const f of list) f.action = 'left: the range is gone';
    });
  }
}

// Unknown leases become pgipam's, looked at again under the range's lock: an address leased
// meanwhile is pgipam's already, and stays as it is.
export async function adopt(db: Db, findings: readonly Finding[], ctx: ActionContext): Promise<void> {
  await eachLockedRange(db, findings, async (range, list) => {
    for (const f of list) {
      const d = f.drift as Extract<Drift, { kind: 'unknown' }>;
      if (d.pgipam === 'reservation') continue;
      f.action = await adoptOne(db, range, d, ctx);
      f.repaired = f.action.startsWith('adopted');
    }
  });
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
export async function freeLeaks(db: Db, findings: readonly Finding[], cutoff: Date, ctx: ActionContext): Promise<void> {
  await eachLockedRange(db, findings, async (range, list) => {
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

async function freeOld(db: Db, range: RangeRow, d: Extract<Drift, { kind: 'leaked' }>, cutoff: Date, ctx: ActionContext): Promise<number> {
  const old = (await leasesOverlapping(db, range.id, d.first, d.last)).filter(
    (l) => (l.kind === 'lease' || l.kind === 'allocation') && l.createdAt < cutoff,
  );
  if (!old.length) return 0;
  const parts = await freeLeaseParts(db, range, old, [d.first, d.last], ctx, {
    note: () => 'freed by reconcile',
    event: 'reconcile_freed',
    detail: (l) => ({ oned_network: d.networkId, oned_ar: d.arId, was: l.kind, since: l.createdAt.toISOString() }),
  });
  return parts.reduce((n, [f, la]) => n + la - f + 1, 0);
}

export async function removeOrphan(db: Db, f: Finding, cutoff: Date, ctx: ActionContext): Promise<void> {
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
    await dropRange(db, range, ctx, 'reconcile_range_removed', { released: usage.byKind, created_at: range.createdAt.toISOString() });
    f.action = 'removed';
    f.repaired = true;
  });
}
