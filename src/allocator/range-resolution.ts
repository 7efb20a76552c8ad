// Which range of pgipam's a request's AR names, and whether the AR still describes it.
import { formatIPv4, formatMac, parseIPv6 } from '../address';
import type { Db } from '../db/client';
import { IpamError, badRequest } from '../errors';
import { checkName } from '../names';
import type { ActionContext } from './context';
import { lockRange } from './locks';
import { hasPoolGrant } from './pool-space';
import { hasIPv4, hasSlaac, hasStaticIPv6 } from './range-spec';
import type { ArReference } from './parsed-request';
import {
  type RangeRow,
  DEFAULT_SPACE,
  addressAt,
  describeRange,
  findRangeByFirst,
  recordRangeMacOnce,
  spaceIdByName,
} from './range-queries';

export function spaceName(ar: Record<string, string>): string {
  return checkName('AR PGIPAM_SPACE', ar.PGIPAM_SPACE ?? DEFAULT_SPACE);
}

// oned never sends the network id; the range is found by the PGIPAM_RANGE_ID that register put in
// the AR, or else by the AR's first address in its space. The AR must still describe that range.
// A range of another platform is not there for this one: row-level security hides it from a
// platform's own role, and this check does the same for front-ends connected as the schema owner.
export async function resolveRange(db: Db, ar: ArReference, mode: 'no key update' | 'update', platform: string): Promise<RangeRow | null> {
  const id = await findRangeId(db, ar);
  return id === null ? null : lockNamedRange(db, id, ar, mode, platform);
}

// How the AR names its range: by the PGIPAM_RANGE_ID register gave it, or by its first address
// in its space (IP on IPv4-bearing types, else IP6 on static IPv6 types, else MAC).
export type RangeLookup = { rangeId: number } | { space: string; ip4?: number; ip6?: bigint; mac?: number };

export function rangeLookup(ar: ArReference): RangeLookup {
  if (ar.rangeId) return { rangeId: ar.rangeId.value() };
  if (!ar.type) throw badRequest('AR has no TYPE: expected one of ETHER, IP4, IP6, IP6_STATIC, IP4_6, IP4_6_STATIC');
  const type = ar.type.value();
  const space = ar.space.value();
  if (hasIPv4(type) && ar.ip4) return { space, ip4: ar.ip4.value() };
  if (hasStaticIPv6(type) && ar.ip6) return { space, ip6: ar.ip6.value() };
  if (ar.mac) return { space, mac: ar.mac.value() };
  throw badRequest('AR has neither PGIPAM_RANGE_ID nor an IP, IP6 or MAC to find its pgipam range by');
}

// The id of the range the AR names, without locking it (null: no such range).
export async function findRangeId(db: Db, ar: ArReference): Promise<number | null> {
  const key = rangeLookup(ar);
  if ('rangeId' in key) return key.rangeId;
  return findRangeByFirst(db, await spaceIdByName(db, key.space), key);
}

// Locks the range and checks that the AR describes it and that it is the platform's.
export async function lockNamedRange(
  db: Db,
  id: number,
  ar: ArReference,
  mode: 'no key update' | 'update',
  platform: string,
): Promise<RangeRow | null> {
  const range = await lockRange(db, id, mode);
  // an observed range (pgipam import) records oned's own addresses: no action of the driver's
  // ever touches it
  if (range && (range.platform !== platform || range.observed)) return null;
  if (range) {
    verifyArMatches(range, ar);
    if (mode === 'no key update') await recordRangeMac(db, range, ar);
  }
  return range;
}

function verifyArMatches(range: RangeRow, ar: ArReference): void {
  const problems: string[] = [];
  if (ar.type && ar.type.text.toUpperCase() !== range.type) problems.push(`TYPE ${ar.type.text} is not ${range.type}`);
  if (range.ip4First !== null && ar.ip4 && ar.ip4.value() !== range.ip4First)
    problems.push(`IP ${ar.ip4.text} is not ${formatIPv4(range.ip4First)}`);
  if (range.ip6First !== null && ar.ip6 && ar.ip6.value() !== range.ip6First)
    problems.push(`IP6 ${ar.ip6.text} is not ${addressAt(range, 0)}`);
  // oned never changes an AR's MAC once chosen, nor a SLAAC AR's prefixes (updatear refuses MAC;
  // a prefix changed by updatear no longer describes the range pgipam holds): on ETHER and SLAAC
  // ARs these are all that ties the AR to its range.
  if (range.macFirst !== null && ar.mac && ar.mac.value() !== range.macFirst)
    problems.push(`MAC ${ar.mac.text} is not ${formatMac(range.macFirst)}`);
  if (hasSlaac(range.type)) {
    for (const key of ['GLOBAL_PREFIX', 'ULA_PREFIX'] as const) {
      const held = range.attrs[key];
      const sent = ar.prefixes[key];
      if (held === undefined && sent === undefined) continue;
      if (held === undefined || sent === undefined || sent.value() !== parseIPv6(held, key) >> 64n)
        problems.push(`${key} ${sent?.text ?? '(none)'} is not ${held ?? '(none)'}`);
    }
  }
  if (ar.spaceGiven && ar.space.text !== range.spaceName) problems.push(`PGIPAM_SPACE ${ar.space.text} is not ${range.spaceName}`);
  if (problems.length) {
    throw new IpamError('RANGE_MISMATCH', `the AR does not describe pgipam ${describeRange(range)}: ${problems.join(', ')}`);
  }
}

// oned may give an AR its MAC after registration (a random one for ETHER and IPv6 ARs, MAC_PREFIX
// + IP for IPv4): the first request that carries it records it, so that MAC lookups and the MAC
// checks above name the same addresses from then on. Skipped, never failed: when the MAC span
// would wrap or collide with another range's, or the range's pool is no longer granted (a free
// must still work then).
async function recordRangeMac(db: Db, range: RangeRow, ar: ArReference): Promise<void> {
  if (range.macFirst !== null || !ar.mac) return;
  const mac = ar.mac.value();
  if ((mac % 2 ** 32) + range.size > 2 ** 32) return;
  if (await recordRangeMacOnce(db, range, mac)) range.macFirst = mac;
}

// The range an address is leased or allocated from. A range carved from a pool that this platform
// may no longer use (its grant was revoked) hands out nothing more; freeing stays possible.
export async function requireRange(db: Db, ar: ArReference, ctx: ActionContext): Promise<RangeRow> {
  const range = await resolveRange(db, ar, 'no key update', ctx.platform);
  if (!range) {
    const what = ar.rangeId ? `range ${ar.rangeId.text}` : `a range starting at ${(ar.ip4 ?? ar.ip6 ?? ar.mac)?.text}`;
    throw new IpamError(
      'RANGE_NOT_FOUND',
      `pgipam has no ${what} for platform "${ctx.platform}": the AR was unregistered, never registered through pgipam, or belongs to another platform`,
    );
  }
  if (range.poolId !== null) {
    const allowed = range.poolName !== null && (!range.poolRestricted || (await hasPoolGrant(db, range.poolId, ctx.platform)));
    if (!allowed)
      throw new IpamError(
        'PERMISSION_DENIED',
        `platform "${ctx.platform}" may not use pool ${range.poolName !== null ? `"${range.poolName}"` : `#${range.poolId}`} of ${describeRange(range)}: grant it with "pgipam platform grant"`,
      );
  }
  return range;
}

// oned's SIZE for the AR bounds what it will accept; a SIZE shrunk with `onevnet updatear` wins.
export function indexLimit(range: RangeRow, ar: ArReference): number {
  return Math.min(range.size, ar.size ?? range.size);
}
