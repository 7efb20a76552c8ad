// Where oned's lease map and pgipam's disagree (issue 11), decided from two snapshots and nothing
// else: oned's networks as onevnet printed them (src/oned-view.ts) and pgipam's ranges with their
// occupied spans. Pure, so that the rules are tested on the real oned samples without a database;
// reading pgipam's side under the actions' locks and repairing are the callers' business.
//
// Positions are indexes inside an AR, taken from the MAC: every AR type has one, every lease
// carries one, and oned numbers the MAC, IPv4 and IPv6 of a lease by the same offset.
import { formatIPv4, formatIPv6, formatMac, macIndex, parseIPv4, parseIPv6, parseMac } from './address';
import { badRequest } from './errors';
import type { OnedLeaseOwner, OnedNetwork } from './oned-view';

export type PgipamSpanKind = 'lease' | 'allocation' | 'reservation' | 'hold';

export interface PgipamRangeSnapshot {
  rangeId: number;
  size: number;
  createdAt: Date;
  // where the range lies, to tell an AR that names the range but not its addresses (mismatched)
  type: string;
  ip4First: number | null;
  ip6First: bigint | null;
  macFirst: number | null;
  spans: readonly { first: number; last: number; kind: PgipamSpanKind; createdAt: Date }[];
}

export type Drift =
  // leased in pgipam, not in oned: a get_address that outlived oned's wait, a free that failed
  | { kind: 'leaked'; rangeId: number; first: number; last: number; since: Date; networkId: number; arId: number }
  // leased in oned, free (or only cooling) in pgipam: the dangerous one, pgipam could hand it out again
  | {
      kind: 'unknown';
      rangeId: number;
      index: number;
      owner: OnedLeaseOwner;
      networkId: number;
      arId: number;
      pgipam: 'free' | 'hold' | 'reservation';
    }
  // an IPAM AR whose PGIPAM_RANGE_ID pgipam does not hold
  | { kind: 'missing-range'; rangeId: number; networkId: number; arId: number }
  // a pgipam range no AR points at (a registration oned refused or timed out, an AR removed by hand)
  | { kind: 'orphan-range'; rangeId: number; since: Date }
  // an AR whose PGIPAM_RANGE_ID names a range at other addresses (a restored or edited database,
  // an AR copied between networks): its leases are not compared, their positions would mean nothing
  | { kind: 'mismatched'; rangeId: number; networkId: number; arId: number; problems: string[] }
  // onevnet updatear changed SIZE without calling the driver
  | { kind: 'resized'; rangeId: number; networkId: number; arId: number; onedSize: number; pgipamSize: number };

const OCCUPIED_BY_ONED: ReadonlySet<PgipamSpanKind> = new Set(['lease', 'allocation']);

// Every drift between the two snapshots, in a stable order (by range, then position).
// `ranges` are the pgipam ranges this oned could point at (registered through `mad`, of the
// platform the caller acts for); `mad` is the IPAM_MAD name the operator installed pgipam under: ARs of other drivers and of
// oned's internal IPAM are none of pgipam's business here (import records them separately).
export function findDrift(networks: readonly OnedNetwork[], ranges: readonly PgipamRangeSnapshot[], mad: string): Drift[] {
  const drift: Drift[] = [];
  const byId = new Map(ranges.map((r) => [r.rangeId, r]));
  const pointedAt = new Set<number>();
  for (const net of networks) {
    if (!net.withLeases) throw badRequest(`network ${net.id} was read without its leases (onevnet list -x): read onevnet show -x`);
    // a reservation vnet's AR repeats its parent's PGIPAM_RANGE_ID; the parent's AR lists those
    // addresses as leased to VNET <id>, which is the lease pgipam must agree with
    if (net.parentNetworkId !== undefined) continue;
    for (const ar of net.addressRanges) {
      if (ar.ipamMad !== mad || ar.pgipamRangeId === undefined) continue;
      const range = byId.get(ar.pgipamRangeId);
      if (range === undefined) {
        drift.push({ kind: 'missing-range', rangeId: ar.pgipamRangeId, networkId: net.id, arId: ar.arId });
        continue;
      }
      pointedAt.add(range.rangeId);
      const problems = arAddressMismatch(ar.type, ar.attributes, range);
      if (problems.length) {
        drift.push({ kind: 'mismatched', rangeId: range.rangeId, networkId: net.id, arId: ar.arId, problems });
        continue;
      }
      if (ar.size !== range.size) {
        drift.push({
          kind: 'resized',
          rangeId: range.rangeId,
          networkId: net.id,
          arId: ar.arId,
          onedSize: ar.size,
          pgipamSize: range.size,
        });
      }
      const firstMac = parseMac(ar.attributes['MAC'] ?? '', `AR ${ar.arId} of network ${net.id} MAC`);
      const onedAt = new Map<number, OnedLeaseOwner>();
      for (const lease of ar.leases ?? []) {
        const index = macIndex(firstMac, parseMac(lease.mac, `lease MAC of AR ${ar.arId} of network ${net.id}`));
        if (index === null || index >= ar.size)
          throw badRequest(`a lease MAC ${lease.mac} of AR ${ar.arId} of network ${net.id} is outside the AR`);
        onedAt.set(index, lease.owner);
      }
      // one walk over both sorted lists (spans never overlap): a /16 with every address leased
      // would otherwise cost leases x spans lookups
      const spans = [...range.spans].sort((a, b) => a.first - b.first);
      let next = 0;
      for (const [index, owner] of [...onedAt].sort((a, b) => a[0] - b[0])) {
        while (next < spans.length && spans[next]!.last < index) next++;
        const span = next < spans.length && spans[next]!.first <= index ? spans[next] : undefined;
        if (span !== undefined && OCCUPIED_BY_ONED.has(span.kind)) continue;
        // beyond the end of pgipam's range (an AR grown by updatear): reported as resized, and
        // adopted once the operator has resized the range
        if (index >= range.size) continue;
        const pgipam = span === undefined ? 'free' : (span.kind as 'hold' | 'reservation');
        drift.push({ kind: 'unknown', rangeId: range.rangeId, index, owner, networkId: net.id, arId: ar.arId, pgipam });
      }
      for (const span of range.spans) {
        if (OCCUPIED_BY_ONED.has(span.kind)) drift.push(...leakedRuns(range.rangeId, span, onedAt, net.id, ar.arId));
      }
    }
  }
  for (const range of ranges) {
    if (!pointedAt.has(range.rangeId)) drift.push({ kind: 'orphan-range', rangeId: range.rangeId, since: range.createdAt });
  }
  const position = (d: Drift) => ('index' in d ? d.index : 'first' in d ? d.first : -1);
  return drift.sort((a, b) => a.rangeId - b.rangeId || position(a) - position(b));
}

// What differs between where the AR says its addresses are and where pgipam's range lies.
export function arAddressMismatch(
  type: string,
  attrs: Readonly<Record<string, string>>,
  range: Pick<PgipamRangeSnapshot, 'type' | 'ip4First' | 'ip6First' | 'macFirst'>,
): string[] {
  const problems: string[] = [];
  if (type.toUpperCase() !== range.type) problems.push(`TYPE ${type} is not ${range.type}`);
  const ip = attrs['IP'];
  if (range.ip4First !== null && ip !== undefined && safe(() => parseIPv4(ip)) !== range.ip4First)
    problems.push(`IP ${ip} is not ${formatIPv4(range.ip4First)}`);
  const ip6 = attrs['IP6'];
  if (range.ip6First !== null && ip6 !== undefined && safe(() => parseIPv6(ip6)) !== range.ip6First)
    problems.push(`IP6 ${ip6} is not ${formatIPv6(range.ip6First)}`);
  const mac = attrs['MAC'];
  if (range.macFirst !== null && mac !== undefined && safe(() => parseMac(mac)) !== range.macFirst)
    problems.push(`MAC ${mac} is not ${formatMac(range.macFirst)}`);
  return problems;
}

function safe<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch {
    return undefined;
  }
}

// The runs of a pgipam lease block that oned does not list: a block freed address by address in
// oned may be partly leaked, and each run is reported on its own.
function leakedRuns(
  rangeId: number,
  span: PgipamRangeSnapshot['spans'][number],
  onedAt: ReadonlyMap<number, unknown>,
  networkId: number,
  arId: number,
): Drift[] {
  const runs: Drift[] = [];
  let runStart: number | undefined;
  for (let i = span.first; i <= span.last + 1; i++) {
    const leaked = i <= span.last && !onedAt.has(i);
    if (leaked && runStart === undefined) runStart = i;
    if (!leaked && runStart !== undefined) {
      runs.push({ kind: 'leaked', rangeId, first: runStart, last: i - 1, since: span.createdAt, networkId, arId });
      runStart = undefined;
    }
  }
  return runs;
}
