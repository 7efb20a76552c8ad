// Which range of pgipam's a request's AR names, and whether the AR still describes it.
import { formatIPv4, formatMac, parseCount, parseIPv4, parseIPv6, parseMac, MAX_AR_SIZE } from '../address';
import type { Db } from '../db/client';
import { IpamError, badRequest } from '../errors';
import { checkName } from '../names';
import type { ActionContext } from './context';
import { lockRange } from './locks';
import { hasPoolGrant } from './pool-space';
import { hasIPv4, hasSlaac, parseArType } from './range-spec';
import {
  type RangeRow,
  DEFAULT_SPACE,
  addressAt,
  describeRange,
  findRangeByFirst,
  recordRangeMacOnce,
  spaceIdByName,
} from './range-queries';
import { arSize } from './requested-address';

export function spaceName(ar: Record<string, string>): string {
  return checkName('AR PGIPAM_SPACE', ar.PGIPAM_SPACE ?? DEFAULT_SPACE);
}

// oned never sends the network id; the range is found by the PGIPAM_RANGE_ID that register put in
// the AR, or else by the AR's first address in its space. The AR must still describe that range.
// A range of another platform is not there for this one: row-level security hides it from a
// platform's own role, and this check does the same for front-ends connected as the schema owner.
export async function resolveRange(
  db: Db,
  ar: Record<string, string>,
  mode: 'no key update' | 'update',
  platform: string,
): Promise<RangeRow | null> {
  const id = await findRangeId(db, ar);
  return id === null ? null : lockNamedRange(db, id, ar, mode, platform);
}

// The id of the range the AR names, without locking it (null: no such range).
export async function findRangeId(db: Db, ar: Record<string, string>): Promise<number | null> {
  if (ar.PGIPAM_RANGE_ID !== undefined) {
    if (!/^\d{1,15}$/.test(ar.PGIPAM_RANGE_ID)) throw badRequest(`AR PGIPAM_RANGE_ID "${ar.PGIPAM_RANGE_ID}" is not a range id`);
    return Number(ar.PGIPAM_RANGE_ID);
  }
  const type = parseArType(ar.TYPE);
  const spaceId = await spaceIdByName(db, spaceName(ar));
  if (hasIPv4(type) && ar.IP !== undefined) return findRangeByFirst(db, spaceId, { ip4: parseIPv4(ar.IP, 'AR IP') });
  if (ar.IP6 !== undefined && (type === 'IP6_STATIC' || type === 'IP4_6_STATIC'))
    return findRangeByFirst(db, spaceId, { ip6: parseIPv6(ar.IP6, 'AR IP6') });
  if (ar.MAC !== undefined) return findRangeByFirst(db, spaceId, { mac: parseMac(ar.MAC, 'AR MAC') });
  throw badRequest('AR has neither PGIPAM_RANGE_ID nor an IP, IP6 or MAC to find its pgipam range by');
}

// Locks the range and checks that the AR describes it and that it is the platform's.
export async function lockNamedRange(
  db: Db,
  id: number,
  ar: Record<string, string>,
  mode: 'no key update' | 'update',
  platform: string,
): Promise<RangeRow | null> {
  const range = await lockRange(db, id, mode);
  if (range && range.platform !== platform) return null;
  if (range) {
    verifyArMatches(range, ar);
    if (mode === 'no key update') await recordRangeMac(db, range, ar);
  }
  return range;
}

function verifyArMatches(range: RangeRow, ar: Record<string, string>): void {
  const problems: string[] = [];
  if (ar.TYPE !== undefined && ar.TYPE.toUpperCase() !== range.type) problems.push(`TYPE ${ar.TYPE} is not ${range.type}`);
  if (range.ip4First !== null && ar.IP !== undefined && parseIPv4(ar.IP, 'AR IP') !== range.ip4First)
    problems.push(`IP ${ar.IP} is not ${formatIPv4(range.ip4First)}`);
  if (range.ip6First !== null && ar.IP6 !== undefined && parseIPv6(ar.IP6, 'AR IP6') !== range.ip6First)
    problems.push(`IP6 ${ar.IP6} is not ${addressAt(range, 0)}`);
  // oned never changes an AR's MAC once chosen, nor a SLAAC AR's prefixes (updatear refuses MAC;
  // a prefix changed by updatear no longer describes the range pgipam holds): on ETHER and SLAAC
  // ARs these are all that ties the AR to its range.
  if (range.macFirst !== null && ar.MAC !== undefined && parseMac(ar.MAC, 'AR MAC') !== range.macFirst)
    problems.push(`MAC ${ar.MAC} is not ${formatMac(range.macFirst)}`);
  if (hasSlaac(range.type)) {
    for (const key of ['GLOBAL_PREFIX', 'ULA_PREFIX']) {
      const held = range.attrs[key];
      const sent = ar[key];
      if (held === undefined && sent === undefined) continue;
      if (held === undefined || sent === undefined || prefix64(sent, `AR ${key}`) !== prefix64(held, key))
        problems.push(`${key} ${sent ?? '(none)'} is not ${held ?? '(none)'}`);
    }
  }
  if (ar.PGIPAM_SPACE !== undefined && ar.PGIPAM_SPACE !== range.spaceName)
    problems.push(`PGIPAM_SPACE ${ar.PGIPAM_SPACE} is not ${range.spaceName}`);
  if (problems.length) {
    throw new IpamError('RANGE_MISMATCH', `the AR does not describe pgipam ${describeRange(range)}: ${problems.join(', ')}`);
  }
}

// The first 64 bits of a SLAAC prefix: all oned uses of it.
function prefix64(text: string, what: string): bigint {
  return parseIPv6(text, what) >> 64n;
}

// oned may give an AR its MAC after registration (a random one for ETHER and IPv6 ARs, MAC_PREFIX
// + IP for IPv4): the first request that carries it records it, so that MAC lookups and the MAC
// checks above name the same addresses from then on. Skipped, never failed: when the MAC span
// would wrap or collide with another range's, or the range's pool is no longer granted (a free
// must still work then).
async function recordRangeMac(db: Db, range: RangeRow, ar: Record<string, string>): Promise<void> {
  if (range.macFirst !== null || ar.MAC === undefined) return;
  const mac = parseMac(ar.MAC, 'AR MAC');
  if ((mac % 2 ** 32) + range.size > 2 ** 32) return;
  if (await recordRangeMacOnce(db, range, mac)) range.macFirst = mac;
}

// The range an address is leased or allocated from. A range carved from a pool that this platform
// may no longer use (its grant was revoked) hands out nothing more; freeing stays possible.
export async function requireRange(db: Db, ar: Record<string, string>, ctx: ActionContext): Promise<RangeRow> {
  const range = await resolveRange(db, ar, 'no key update', ctx.platform);
  if (!range) {
    const what = ar.PGIPAM_RANGE_ID !== undefined ? `range ${ar.PGIPAM_RANGE_ID}` : `a range starting at ${ar.IP ?? ar.IP6 ?? ar.MAC}`;
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
export function indexLimit(range: RangeRow, ar: Record<string, string>): number {
  return Math.min(range.size, arSize(ar) ?? range.size);
}

export function requestedCount(address: Record<string, string>): number {
  return parseCount(address.SIZE ?? '1', 'ADDRESS SIZE', 1, MAX_AR_SIZE);
}
