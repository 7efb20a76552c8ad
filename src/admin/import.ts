// `pgipam import`: records an existing cloud's networks in pgipam, so that pools and new ranges
// never collide with them (issue 11). From oned's own view (admin/oned-input.ts):
//   * an IPAM AR of pgipam's whose range pgipam lacks is registered again under the id the AR
//     stores, with oned's leases (as `reconcile --fix` does);
//   * every other AR -- oned's internal IPAM, another IPAM driver -- becomes an *observed* range
//     with oned's leases: in find, range list and the pool maps, taken out of the pool it lies in
//     (so carving goes around it), never leased from by the driver (migration 8);
//   * a reservation vnet (PARENT_NETWORK_ID) is part of its parent: its addresses are the
//     parent AR's leases to VNET <id>, recorded there.
// Every conflict is found before anything is written: an AR overlapping a pgipam range of its
// space or another AR of the input (with the addresses leased on both sides), an AR pgipam
// cannot record. One conflict writes nothing, unless --skip-conflicts. Running it again changes
// nothing; an observed range whose leases changed in oned gets them updated.
import type { Db } from '../db/client';
import { withTransaction } from '../db/client';
import { IpamError } from '../errors';
import type { ActionContext } from '../allocator/context';
import { recordHistory } from '../allocator/history';
import { cutLeases, giveFree, insertLease, leasesOverlapping, takeFree } from '../allocator/lease-queries';
import { lockRange } from '../allocator/locks';
import { addressAt, describeRange, getRange, overlappingRanges, spaceIdByName } from '../allocator/range-queries';
import { registerAddressRange } from '../allocator/register';
import { type RangeSpec, rangeSpecFromAr } from '../allocator/range-spec';
import { arAddressMismatch } from '../oned-drift';
import type { OnedAddressRange, OnedNetwork } from '../oned-view';
import type { OnedView } from './oned-input';
import { checkNamedRanges, resolveUnnamedArs } from './reconcile';
import { arAsRequest, onedLeasesOf } from './reconcile-repairs';

export type ImportStep = 'known' | 'register' | 'observe' | 'observed' | 'update' | 'reservation' | 'conflict';

export interface ImportItem {
  networkId: number;
  networkName: string;
  arId: number | null; // null: the whole reservation vnet
  type: string;
  step: ImportStep;
  rangeId: number | null;
  where: string;
  leases: number;
  detail: string;
}

export interface ImportReport {
  platform: string;
  dryRun: boolean;
  items: ImportItem[];
  conflicts: string[];
  written: number; // ranges registered, recorded or updated
}

export interface ImportOptions {
  mad: string;
  dryRun: boolean;
  skipConflicts: boolean;
}

interface Planned {
  item: ImportItem;
  network: OnedNetwork;
  ar: OnedAddressRange;
  spec?: RangeSpec;
  spaceId?: number;
  request?: Record<string, string>;
}

export async function importCloud(db: Db, given: OnedView, o: ImportOptions, ctx: ActionContext): Promise<ImportReport> {
  if (!given.networks.length) throw new IpamError('BAD_REQUEST', 'the input names no network');
  // an IPAM AR that lost its PGIPAM_RANGE_ID is found by its first address, as the driver finds it
  const view = { ...given, networks: (await resolveUnnamedArs(db, given.networks, o.mad, ctx.platform)).networks };
  await checkNamedRanges(db, view.networks, o.mad, ctx.platform);
  const planned: Planned[] = [];
  const items: ImportItem[] = [];
  for (const network of view.networks) {
    if (network.parentNetworkId !== undefined) {
      items.push(reservationItem(network));
      continue;
    }
    for (const ar of network.addressRanges) {
      const p = await planAr(db, network, ar, o, ctx.platform);
      items.push(p.item);
      if (p.item.step === 'register' || p.item.step === 'observe' || p.item.step === 'update') planned.push(p);
    }
  }
  findOverlapsWithin(planned);
  const conflicts = items.filter((i) => i.step === 'conflict').map((i) => `AR ${i.arId} of network ${i.networkId}: ${i.detail}`);
  const report: ImportReport = { platform: ctx.platform, dryRun: o.dryRun, items, conflicts, written: 0 };
  if (o.dryRun || (conflicts.length && !o.skipConflicts)) return report;
  // ranges registered again under their ids first: a new observed range takes the next id of the
  // sequence, which must already be past them
  const order = (p: Planned) => (p.item.step !== 'register' ? 2 : p.ar.pgipamRangeId !== undefined ? 0 : 1);
  for (const p of planned.filter((x) => x.item.step !== 'conflict').sort((a, b) => order(a) - order(b))) {
    await write(db, p, ctx);
    report.written++;
  }
  return report;
}

function reservationItem(network: OnedNetwork): ImportItem {
  return {
    networkId: network.id,
    networkName: network.name,
    arId: null,
    type: 'RESERVATION',
    step: 'reservation',
    rangeId: null,
    where: `of network ${network.parentNetworkId}`,
    leases: 0,
    detail: `its addresses are leases of network ${network.parentNetworkId} to VNET ${network.id}, recorded with that network's AR`,
  };
}

async function planAr(db: Db, network: OnedNetwork, ar: OnedAddressRange, o: ImportOptions, platform: string): Promise<Planned> {
  const item: ImportItem = {
    networkId: network.id,
    networkName: network.name,
    arId: ar.arId,
    type: ar.type,
    step: 'known',
    rangeId: null,
    where: arWhere(ar),
    leases: ar.leases?.length ?? 0,
    detail: '',
  };
  const p: Planned = { item, network, ar };
  const ours = ar.ipamMad === o.mad;
  if (ours && ar.pgipamRangeId !== undefined) {
    item.rangeId = ar.pgipamRangeId;
    const range = await getRange(db, ar.pgipamRangeId);
    if (range) {
      const problems = arAddressMismatch(ar.type, ar.attributes, range);
      if (problems.length) return conflict(p, `names pgipam range ${range.id}, which lies elsewhere: ${problems.join(', ')}`);
      item.detail = 'pgipam holds it ("pgipam reconcile" compares its leases)';
      return p;
    }
  }
  if (!ours) {
    const existing = await observedRange(db, network.id, ar.arId, platform);
    if (existing !== null) {
      item.rangeId = existing;
      const range = (await getRange(db, existing))!;
      const problems = arAddressMismatch(ar.type, ar.attributes, range);
      if (range.size !== ar.size) problems.push(`SIZE ${ar.size} is not ${range.size}`);
      if (problems.length)
        return conflict(
          p,
          `recorded as observed range ${existing}, which no longer matches: ${problems.join(', ')}; "pgipam range rm ${existing} --force" and import again`,
        );
      const held = await observedLeases(db, existing);
      const now = new Set(onedLeasesOf(network, ar, '').map((l) => l.index));
      const same = held.size === now.size && [...now].every((i) => held.has(i));
      item.step = same ? 'observed' : 'update';
      item.detail = same ? `recorded as observed range ${existing}` : `observed range ${existing}: its leases changed in oned`;
      return p;
    }
  }
  // a new range: pgipam must be able to record it where it lies
  const request = arAsRequest(ar);
  if (!ours) {
    // an observed range takes only its own addresses out of a pool, not the network around them
    delete request.NETWORK_ADDRESS;
    delete request.NETWORK_MASK;
    delete request.IPAM_MAD;
  }
  try {
    p.spec = rangeSpecFromAr(request);
    p.spaceId = await spaceIdByName(db, request.PGIPAM_SPACE ?? 'default');
  } catch (e) {
    return conflict(p, `pgipam cannot record it: ${(e as Error).message}`);
  }
  p.request = request;
  const spans: Parameters<typeof overlappingRanges>[2] = {};
  if (p.spec.ip4First !== null) spans.ip4 = [p.spec.ip4First, p.spec.ip4First + p.spec.size];
  if (p.spec.ip6First !== null) spans.ip6 = [p.spec.ip6First, p.spec.ip6First + BigInt(p.spec.size)];
  if (p.spec.macFirst !== null) spans.mac = [p.spec.macFirst, p.spec.macFirst + p.spec.size];
  const others = await overlappingRanges(db, p.spaceId, spans);
  if (others.length) return conflict(p, `overlaps pgipam ${others.map(describeRange).join('; ')}`);
  item.step = ours ? 'register' : 'observe';
  item.detail = ours
    ? `pgipam lacks range ${ar.pgipamRangeId ?? '(no PGIPAM_RANGE_ID)'}: registered again with oned's leases`
    : `${ar.ipamMad ? `IPAM_MAD ${ar.ipamMad}` : "oned's internal IPAM"}: recorded as an observed range with oned's leases`;
  return p;
}

function conflict(p: Planned, detail: string): Planned {
  p.item.step = 'conflict';
  p.item.detail = detail;
  return p;
}

function arWhere(ar: OnedAddressRange): string {
  const a = ar.attributes;
  const first = a['IP'] ?? a['IP6'] ?? a['MAC'] ?? '';
  const last = a['IP_END'] ?? a['IP6_END'] ?? a['MAC_END'] ?? '';
  return first && last ? `${first} - ${last}` : `${ar.size} addresses`;
}

async function observedRange(db: Db, networkId: number, arId: number, platform: string): Promise<number | null> {
  const { rows } = await db.query<{ id: string }>(
    `select id::text from pgipam.address_range
      where observed and platform = $3 and attrs->>'PGIPAM_ONED_NETWORK_ID' = $1 and attrs->>'PGIPAM_ONED_AR_ID' = $2`,
    [String(networkId), String(arId), platform],
  );
  return rows[0] ? Number(rows[0].id) : null;
}

async function observedLeases(db: Db, rangeId: number): Promise<Set<number>> {
  const { rows } = await db.query<{ i: string }>(
    `select generate_series(first_idx, last_idx)::text as i from pgipam.lease where range_id = $1 and kind in ('lease', 'allocation')`,
    [rangeId],
  );
  return new Set(rows.map((r) => Number(r.i)));
}

// Two ARs of the input that overlap in one space (oned allows it across networks; pgipam's one
// address space cannot hold both): a conflict for each, naming the addresses leased on both.
function findOverlapsWithin(planned: Planned[]): void {
  const fresh = planned.filter((p) => p.spec && p.item.step !== 'update');
  const keys: Array<[string, (s: RangeSpec) => [bigint, bigint] | null]> = [
    ['ip4', (s) => (s.ip4First === null ? null : [BigInt(s.ip4First), BigInt(s.ip4First + s.size)])],
    ['ip6', (s) => (s.ip6First === null ? null : [s.ip6First, s.ip6First + BigInt(s.size)])],
    ['mac', (s) => (s.macFirst === null ? null : [BigInt(s.macFirst), BigInt(s.macFirst + s.size)])],
  ];
  for (const [, span] of keys) {
    const list = fresh
      .map((p) => ({ p, s: span(p.spec!) }))
      .filter((x): x is { p: Planned; s: [bigint, bigint] } => x.s !== null)
      .sort((a, b) => a.p.spaceId! - b.p.spaceId! || (a.s[0] < b.s[0] ? -1 : a.s[0] > b.s[0] ? 1 : 0));
    // the span reaching furthest so far: a big AR overlaps every small one inside it
    let reach = list[0];
    for (let i = 1; i < list.length; i++) {
      const a = reach!;
      const b = list[i]!;
      if (a.p.spaceId !== b.p.spaceId || b.s[1] > a.s[1]) reach = b;
      if (a.p.spaceId !== b.p.spaceId || b.s[0] >= a.s[1]) continue;
      const both = leasedOnBoth(a.p, b.p);
      const tail = both.length
        ? `; leased on both sides: ${both.slice(0, 5).join(', ')}${both.length > 5 ? ` and ${both.length - 5} more` : ''}`
        : '';
      for (const [x, y] of [
        [a, b],
        [b, a],
      ] as const) {
        if (x.p.item.step === 'conflict') continue;
        conflict(x.p, `overlaps AR ${y.p.ar.arId} of network ${y.p.network.id} (${y.p.item.where})${tail}`);
      }
    }
  }
}

function leasedOnBoth(a: Planned, b: Planned): string[] {
  const ips = (p: Planned) =>
    new Map((p.ar.leases ?? []).map((l) => [l.ip ?? l.ip6 ?? l.mac, `${l.owner.kind} ${l.owner.id} in network ${p.network.id}`]));
  const left = ips(a);
  const out: string[] = [];
  for (const [ip, owner] of ips(b)) if (left.has(ip)) out.push(`${ip} (${left.get(ip)}, ${owner})`);
  return out;
}

async function write(db: Db, p: Planned, ctx: ActionContext): Promise<void> {
  const { network, ar, item } = p;
  const why = item.step === 'register' ? 'imported' : 'observed';
  if (item.step === 'update') return updateObserved(db, p, ctx);
  const extra: Record<string, string> = { PGIPAM_ONED_NETWORK_ID: String(network.id), PGIPAM_ONED_AR_ID: String(ar.arId) };
  for (const k of ['NETWORK_ADDRESS', 'NETWORK_MASK']) if (ar.attributes[k]) extra[k] = ar.attributes[k];
  const { rangeId } = await registerAddressRange(db, { ar: p.request!, address: {} }, ctx, {
    ...(item.step === 'register' && ar.pgipamRangeId !== undefined && { rangeId: ar.pgipamRangeId }),
    observed: item.step === 'observe',
    event: 'range_imported',
    detail: { oned_network: network.id, oned_ar: ar.arId, observed: item.step === 'observe' },
    attrs: extra,
    leases: onedLeasesOf(network, ar, why),
    leaseEvent: 'lease_imported',
  });
  item.rangeId = rangeId;
}

// oned's leases of an observed range changed since the last import: the range follows them.
async function updateObserved(db: Db, p: Planned, ctx: ActionContext): Promise<void> {
  const wanted = new Map(onedLeasesOf(p.network, p.ar, 'observed').map((l) => [l.index, l]));
  await withTransaction(db, async () => {
    const range = (await lockRange(db, p.item.rangeId!, 'no key update'))!;
    const held = await observedLeases(db, range.id);
    for (const index of held) {
      if (wanted.has(index)) continue;
      await cutLeases(db, range.id, await leasesOverlapping(db, range.id, index, index), index, index);
      await giveFree(db, range.id, index, index);
      await recordHistory(db, ctx, {
        event: 'lease_import_removed',
        spaceId: range.spaceId,
        rangeId: range.id,
        firstIdx: index,
        size: 1,
        address: addressAt(range, index),
        detail: { oned_network: p.network.id, oned_ar: p.ar.arId },
      });
    }
    for (const [index, l] of wanted) {
      if (held.has(index) || !(await takeFree(db, range.id, index, index))) continue;
      await insertLease(db, range.id, [index, index], l.kind, ctx, { note: l.note });
      await recordHistory(db, ctx, {
        event: 'lease_imported',
        spaceId: range.spaceId,
        rangeId: range.id,
        firstIdx: index,
        size: 1,
        address: addressAt(range, index),
        detail: { kind: l.kind, ...l.detail },
      });
    }
  });
}
