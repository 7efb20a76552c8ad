// The five IPAM operations on PostgreSQL. Each runs as one transaction (withTransaction) that locks
// the one range it touches; a failure rolls everything back, so the database is exactly as before.
import { MAX_AR_SIZE, formatIPv4, formatIPv6, formatMac, parseCount, parseIPv4, parseIPv6, parseMac } from '../address';
import { type Db, withTransaction } from '../db/client';
import { IpamError, isIpamError } from '../errors';
import { checkName } from '../names';
import { checkTemplateValue } from '../driver/template';
import type { ActionRequest } from '../driver/request';
import type { ActionContext } from './context';
import { type RangeRow, type LeaseRow, addressAt, cutLeases, describeRange, findRangeByFirst, giveFree, leaseFirstFit, insertLease, leasesOverlapping, lockRange, overlappingRanges, rangeUsage, recordHistory, spaceIdByName, takeFree } from './store';
import { type RangeSpec, hasIPv4, hasSlaac, parseArType, rangeSpecFromAr, registerReply } from './range-spec';
import { arSize, requestedAddress, sizeDriftHint } from './requested-address';
import { reserveKeptAddresses } from './kept-addresses';
import {
  type Block, type Family, type PoolRow, blockSize, carveBlock, checkPoolAccess, describeBlock, formatAddress, getPool, isUla, lockPool, poolContaining,
  assignSubnets, releaseRangeBlocks, takeSpan,
} from './pools';

export const DEFAULT_SPACE = 'default';

function bad(message: string): IpamError {
  return new IpamError('BAD_REQUEST', message);
}

function spaceName(ar: Record<string, string>): string {
  return checkName('AR PGIPAM_SPACE', ar.PGIPAM_SPACE ?? DEFAULT_SPACE);
}

// ---------------------------------------------------------------------------------------------
// register_address_range

export interface RegisterResult {
  rangeId: number;
  reply: Record<string, string>;
}

export async function registerAddressRange(db: Db, req: ActionRequest, ctx: ActionContext): Promise<RegisterResult> {
  const { ar } = req;
  const type = parseArType(ar.TYPE);
  const plan = carvePlan(ar, type);
  // Validate what can be validated before the database is touched.
  if (!plan.any) rangeSpecFromAr(ar);
  if (ar.PGIPAM_POOL !== undefined) checkName('AR PGIPAM_POOL', ar.PGIPAM_POOL);
  const hold = ar.PGIPAM_HOLD_SECONDS === undefined ? null : parseCount(ar.PGIPAM_HOLD_SECONDS, 'AR PGIPAM_HOLD_SECONDS', 0, 366 * 86400);
  const ipamMad = ar.IPAM_MAD ?? 'pgipam';
  if (ar.SIZE !== undefined) parseCount(ar.SIZE, 'AR SIZE', 1, MAX_AR_SIZE);
  for (const [k, v] of Object.entries(ar)) if (!NOT_CHECKED.has(k)) checkTemplateValue(k, v);

  return withTransaction(db, async () => {
    let attrs: Record<string, string> = { ...ar };
    let pool: PoolRow | null = null;
    const taken: Array<{ pool: PoolRow; blocks: Block[] }> = [];
    const extraReply: Record<string, string> = {};

    if (plan.any) {
      pool = await resolvePool(db, ar.PGIPAM_POOL ?? null, plan);
      if (ar.PGIPAM_SPACE !== undefined && ar.PGIPAM_SPACE !== pool.spaceName) throw bad(`AR PGIPAM_SPACE ${ar.PGIPAM_SPACE} differs from the space ${pool.spaceName} of pool ${pool.name}`);
      await checkPoolAccess(db, pool, ctx.platform);
      await lockPool(db, pool.id);
      const carved = await carveForAr(db, pool, ar, type, plan);
      attrs = { ...attrs, ...carved.attrs };
      taken.push({ pool, blocks: carved.blocks });
      extraReply.PGIPAM_SUBNET = carved.blocks.map(describeBlock).join(' ');
    }
    const spec = rangeSpecFromAr(attrs);
    const space = pool ? pool.spaceName : spaceName(ar);
    const spaceId = await spaceIdByName(db, space);

    if (!pool) {
      // An explicit range inside a pool takes its block out of the pool (refused when taken).
      const inPools: Array<{ pool: PoolRow; span: ReturnType<typeof explicitSpans>[number] }> = [];
      for (const span of explicitSpans(spec, attrs)) {
        const p = await poolContaining(db, spaceId, span.family, span.first, span.last, ctx.platform);
        if (p) inPools.push({ pool: p, span });
      }
      // pools are locked in id order, so two registrations never wait for each other in a cycle
      for (const id of [...new Set(inPools.map((x) => x.pool.id))].sort((a, b) => a - b)) await lockPool(db, id);
      for (const { pool: p, span } of inPools) {
        if (ar.PGIPAM_POOL !== undefined && ar.PGIPAM_POOL !== p.name) throw bad(`${formatAddress(span.family, span.first)} lies in pool ${p.name}, not in PGIPAM_POOL ${ar.PGIPAM_POOL}`);
        await checkPoolAccess(db, p, ctx.platform);
        taken.push({ pool: p, blocks: await takeSpan(db, p, span.family, span.first, span.last) });
        pool = pool ?? p;
      }
      if (taken.length) extraReply.PGIPAM_SUBNET = taken.flatMap((t) => t.blocks.map(describeBlock)).join(' ');
    }
    if (pool) {
      attrs = { ...poolAttributes(pool), ...attrs };
      extraReply.PGIPAM_POOL = pool.name;
    }

    let id: number;
    try {
      await db.query('savepoint register');
      const { rows } = await db.query<{ id: string }>(
        `insert into pgipam.address_range (space_id, ar_type, size, ip4_first, ip6_first, prefix_length, mac_first, hold_seconds, request_id, pool_id, platform)
         values ($1, $2, $3, $4, $5::numeric, $6, $7, $8, $9, $10, $11) returning id::text`,
        [spaceId, spec.type, spec.size, spec.ip4First, spec.ip6First?.toString() ?? null, spec.prefixLength, spec.macFirst, hold ?? pool?.holdSeconds ?? 0, ctx.requestId, pool?.id ?? null, ctx.platform],
      );
      id = Number(rows[0]!.id);
    } catch (e) {
      if ((e as { code?: string }).code !== '23P01') throw e;
      await db.query('rollback to savepoint register');
      throw await overlapError(db, spaceId, space, spec);
    }
    if (taken.length) await assignSubnets(db, id);
    const reply = { ...registerReply(attrs, spec, { ipamMad, rangeId: String(id), space }), ...extraReply };
    reply.PGIPAM_RANGE_ID = String(id);
    for (const [k, v] of Object.entries(reply)) checkTemplateValue(k, v);
    await db.query('update pgipam.address_range set attrs = $2 where id = $1', [id, JSON.stringify(reply)]);
    await db.query('insert into pgipam.free_extent (range_id, first_idx, last_idx) values ($1, 0, $2)', [id, spec.size - 1]);
    const range = (await lockRange(db, id))!;
    await reserveKeptAddresses(db, range, spec, 0, spec.size - 1, ctx);
    await recordHistory(db, ctx, {
      event: 'range_registered', spaceId, rangeId: id, firstIdx: 0, size: spec.size, address: addressAt(range, 0),
      detail: { type: spec.type, pool: pool?.name ?? null, subnets: extraReply.PGIPAM_SUBNET ?? null, attrs: reply },
    });
    ctx.log(`registered ${describeRange(range)}${extraReply.PGIPAM_SUBNET ? ` on ${extraReply.PGIPAM_SUBNET} of pool ${pool!.name}` : ''}`);
    return { rangeId: id, reply };
  });
}

// Attributes of the request that are never echoed and so need no template check.
const NOT_CHECKED = new Set(['ALLOCATED', 'USED_LEASES', 'LEASES', 'NEXT_INDEX', 'AR_ID']);

interface CarvePlan {
  v4: boolean;
  v6static: boolean;
  slaac: boolean;
  any: boolean;
}

// What an AR leaves for pgipam to choose: the IPv4 subnet (no IP), the static IPv6 /64 (no IP6),
// or the SLAAC /64 (no prefix, when a pool is named or the default pool has IPv6).
function carvePlan(ar: Record<string, string>, type: ReturnType<typeof parseArType>): CarvePlan {
  const v4 = hasIPv4(type) && ar.IP === undefined;
  const v6static = (type === 'IP6_STATIC' || type === 'IP4_6_STATIC') && ar.IP6 === undefined;
  const slaac = (type === 'IP6' || type === 'IP4_6') && ar.GLOBAL_PREFIX === undefined && ar.ULA_PREFIX === undefined && (ar.PGIPAM_POOL !== undefined || v4);
  return { v4, v6static, slaac, any: v4 || v6static || slaac };
}

async function resolvePool(db: Db, name: string | null, plan: CarvePlan): Promise<PoolRow> {
  const pool = await getPool(db, name);
  if (!pool) {
    if (name !== null) throw new IpamError('NOT_FOUND', `pool "${name}" does not exist (or this platform may not use it): see "pgipam pool list"`);
    const what = plan.v4 ? 'IP' : plan.v6static ? 'IP6' : 'GLOBAL_PREFIX';
    throw bad(`the AR has no ${what} and names no pool to carve one from: set PGIPAM_POOL, or make a pool the default with "pgipam pool set <name> --default"`);
  }
  return pool;
}

const IPV6_SUBNET = 64;

// Carves what the plan needs from the pool and returns the AR attributes that describe it.
async function carveForAr(db: Db, pool: PoolRow, ar: Record<string, string>, type: ReturnType<typeof parseArType>, plan: CarvePlan): Promise<{ attrs: Record<string, string>; blocks: Block[] }> {
  const attrs: Record<string, string> = {};
  const blocks: Block[] = [];
  if (plan.v4) {
    const size = parseCount(ar.SIZE, 'AR SIZE', 1, 2 ** 30);
    const layout = ipv4Layout(size, pool.gateway);
    const block = await carveBlock(db, pool.id, 4, 32 - layout.hostBits);
    if (!block) throw new IpamError('NO_FREE_ADDRESS', `pool "${pool.name}" has no free IPv4 /${32 - layout.hostBits} for ${size} addresses`);
    const net = Number(block.network);
    attrs.IP = formatIPv4(net + layout.start);
    attrs.SIZE = String(layout.arSize);
    attrs.NETWORK_ADDRESS = formatIPv4(net);
    attrs.NETWORK_MASK = formatIPv4(Number((0xffffffffn << BigInt(layout.hostBits)) & 0xffffffffn));
    if (layout.gateway !== null) attrs.GATEWAY = formatIPv4(net + layout.gateway);
    blocks.push(block);
  }
  if (plan.v6static || plan.slaac) {
    const block = await carveBlock(db, pool.id, 6, IPV6_SUBNET);
    if (!block) throw new IpamError('NO_FREE_ADDRESS', `pool "${pool.name}" has no free IPv6 /${IPV6_SUBNET}`);
    blocks.push(block);
    if (plan.v6static) {
      const withGateway = pool.gateway !== 'none';
      attrs.IP6 = formatIPv6(block.network + (withGateway ? 2n : 1n));
      attrs.PREFIX_LENGTH = String(IPV6_SUBNET);
      if (withGateway) attrs.GATEWAY6 = formatIPv6(block.network + 1n);
      if (type === 'IP6_STATIC' && ar.SIZE === undefined) attrs.SIZE = String(2 ** 32 - 2);
    } else {
      attrs[isUla(block) ? 'ULA_PREFIX' : 'GLOBAL_PREFIX'] = formatIPv6(block.network);
    }
  }
  return { attrs, blocks };
}

// Where a carved IPv4 subnet puts its addresses: host offsets 1 .. 2^h-2 (network and broadcast
// excluded), the gateway where the pool says, and the AR from the first host that is not the
// gateway. When the gateway falls inside the AR's span it is reserved there and the AR grows by one.
export function ipv4Layout(size: number, gatewayRule: string): { hostBits: number; gateway: number | null; start: number; arSize: number } {
  for (let h = 2; h <= 32; h++) {
    const total = 2 ** h;
    const gateway = gatewayRule === 'none' ? null : gatewayRule === 'first' ? 1 : gatewayRule === 'last' ? total - 2 : Number(gatewayRule);
    if (gateway !== null && (gateway < 1 || gateway > total - 2)) continue;
    const start = gateway === 1 ? 2 : 1;
    const arSize = size + (gateway !== null && gateway >= start && gateway < start + size ? 1 : 0);
    if (start + arSize - 1 <= total - 2) return { hostBits: h, gateway, start, arSize };
  }
  throw bad(`no IPv4 subnet can hold ${size} addresses`);
}

function poolAttributes(pool: PoolRow): Record<string, string> {
  const out: Record<string, string> = {};
  if (pool.dns) out.DNS = pool.dns;
  if (pool.searchDomain) out.SEARCH_DOMAIN = pool.searchDomain;
  if (pool.mtu !== null) out.GUEST_MTU = String(pool.mtu);
  if (pool.vlanId !== null) out.VLAN_ID = String(pool.vlanId);
  for (const [k, v] of Object.entries(pool.extra)) out[k.toUpperCase()] = String(v);
  return out;
}

// The spans an explicit AR occupies in its space, per family: the whole network when the AR says
// what it is, else the range itself; SLAAC prefixes count as their /64.
function explicitSpans(spec: RangeSpec, ar: Record<string, string>): Array<{ family: Family; first: bigint; last: bigint }> {
  const out: Array<{ family: Family; first: bigint; last: bigint }> = [];
  if (spec.ip4First !== null) {
    if (spec.network4) out.push({ family: 4, first: BigInt(spec.network4.network), last: BigInt(spec.network4.network) + blockSize(4, spec.network4.prefix) - 1n });
    else out.push({ family: 4, first: BigInt(spec.ip4First), last: BigInt(spec.ip4First + spec.size - 1) });
  }
  if (spec.ip6First !== null) {
    const size = blockSize(6, spec.prefixLength!);
    const net = (spec.ip6First / size) * size;
    out.push({ family: 6, first: net, last: net + size - 1n });
  }
  for (const key of ['GLOBAL_PREFIX', 'ULA_PREFIX']) {
    if (ar[key] === undefined || spec.type === 'IP6_STATIC' || spec.type === 'IP4_6_STATIC' || spec.type === 'IP4' || spec.type === 'ETHER') continue;
    const size = blockSize(6, IPV6_SUBNET);
    const net = (parseIPv6(ar[key]!, `AR ${key}`) / size) * size;
    out.push({ family: 6, first: net, last: net + size - 1n });
  }
  return out;
}

async function overlapError(db: Db, spaceId: number, space: string, spec: RangeSpec): Promise<IpamError> {
  const spans: Parameters<typeof overlappingRanges>[2] = {};
  if (spec.ip4First !== null) spans.ip4 = [spec.ip4First, spec.ip4First + spec.size];
  if (spec.ip6First !== null) spans.ip6 = [spec.ip6First, spec.ip6First + BigInt(spec.size)];
  if (spec.macFirst !== null) spans.mac = [spec.macFirst, spec.macFirst + spec.size];
  const others = await overlappingRanges(db, spaceId, spans);
  const names = others.map(describeRange).join('; ') || 'another range';
  // A range with nothing leased may be left over from a registration oned never completed (it
  // gave up after 90 s, or refused the reply): say how to remove it.
  const idle: number[] = [];
  for (const o of others) {
    const u = await rangeUsage(db, o.id);
    if (!u.byKind.lease && !u.byKind.allocation) idle.push(o.id);
  }
  const hint = idle.length === 1
    ? `; if it is left over from a registration OpenNebula did not complete, remove it with "pgipam range rm ${idle[0]}"`
    : idle.length > 1 ? `; if ranges ${idle.join(', ')} are left over from registrations OpenNebula did not complete, remove them with "pgipam range rm <id>"` : '';
  return new IpamError('RANGE_OVERLAP', `the AR overlaps ${names} in address space "${space}": choose other addresses, or set PGIPAM_SPACE for a separate space${hint}`);
}

// ---------------------------------------------------------------------------------------------
// Finding the range of a registered AR

// oned never sends the network id; the range is found by the PGIPAM_RANGE_ID that register put in
// the AR, or else by the AR's first address in its space. The AR must still describe that range.
// A range of another platform is not there for this one: row-level security hides it from a
// platform's own role, and this check does the same for front-ends connected as the schema owner.
async function resolveRange(db: Db, ar: Record<string, string>, mode: 'no key update' | 'update', platform: string): Promise<RangeRow | null> {
  let id: number | null;
  if (ar.PGIPAM_RANGE_ID !== undefined) {
    if (!/^\d{1,15}$/.test(ar.PGIPAM_RANGE_ID)) throw bad(`AR PGIPAM_RANGE_ID "${ar.PGIPAM_RANGE_ID}" is not a range id`);
    id = Number(ar.PGIPAM_RANGE_ID);
  } else {
    const type = parseArType(ar.TYPE);
    const spaceId = await spaceIdByName(db, spaceName(ar));
    if (hasIPv4(type) && ar.IP !== undefined) id = await findRangeByFirst(db, spaceId, { ip4: parseIPv4(ar.IP, 'AR IP') });
    else if (ar.IP6 !== undefined && (type === 'IP6_STATIC' || type === 'IP4_6_STATIC')) id = await findRangeByFirst(db, spaceId, { ip6: parseIPv6(ar.IP6, 'AR IP6') });
    else if (ar.MAC !== undefined) id = await findRangeByFirst(db, spaceId, { mac: parseMac(ar.MAC, 'AR MAC') });
    else throw bad('AR has neither PGIPAM_RANGE_ID nor an IP, IP6 or MAC to find its pgipam range by');
  }
  if (id === null) return null;
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
  if (range.ip4First !== null && ar.IP !== undefined && parseIPv4(ar.IP, 'AR IP') !== range.ip4First) problems.push(`IP ${ar.IP} is not ${formatIPv4(range.ip4First)}`);
  if (range.ip6First !== null && ar.IP6 !== undefined && parseIPv6(ar.IP6, 'AR IP6') !== range.ip6First) problems.push(`IP6 ${ar.IP6} is not ${addressAt(range, 0)}`);
  // oned never changes an AR's MAC once chosen, nor a SLAAC AR's prefixes (updatear refuses MAC;
  // a prefix changed by updatear no longer describes the range pgipam holds): on ETHER and SLAAC
  // ARs these are all that ties the AR to its range.
  if (range.macFirst !== null && ar.MAC !== undefined && parseMac(ar.MAC, 'AR MAC') !== range.macFirst) problems.push(`MAC ${ar.MAC} is not ${formatMac(range.macFirst)}`);
  if (hasSlaac(range.type)) {
    for (const key of ['GLOBAL_PREFIX', 'ULA_PREFIX']) {
      const held = range.attrs[key];
      const sent = ar[key];
      if (held === undefined && sent === undefined) continue;
      if (held === undefined || sent === undefined || prefix64(sent, `AR ${key}`) !== prefix64(held, key)) problems.push(`${key} ${sent ?? '(none)'} is not ${held ?? '(none)'}`);
    }
  }
  if (ar.PGIPAM_SPACE !== undefined && ar.PGIPAM_SPACE !== range.spaceName) problems.push(`PGIPAM_SPACE ${ar.PGIPAM_SPACE} is not ${range.spaceName}`);
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
  await db.query('savepoint record_mac');
  try {
    const { rowCount } = await db.query(
      `update pgipam.address_range r set mac_first = $2 where r.id = $1 and r.mac_first is null
          and (r.pool_id is null or pgipam.pool_allowed(r.pool_id))
          and not exists (select 1 from pgipam.address_range o where o.space_id = r.space_id and o.id <> r.id
                           and o.mac_span && int8range($2::int8, $2::int8 + r.size))`,
      [range.id, mac],
    );
    await db.query('release savepoint record_mac');
    if (rowCount) range.macFirst = mac;
  } catch (e) {
    // a concurrent registration took the MAC span first, or this role may not update ranges
    if (!['23P01', '42501'].includes((e as { code?: string }).code ?? '')) throw e;
    await db.query('rollback to savepoint record_mac');
  }
}

// The range an address is leased or allocated from. A range carved from a pool that this platform
// may no longer use (its grant was revoked) hands out nothing more; freeing stays possible.
async function requireRange(db: Db, ar: Record<string, string>, ctx: ActionContext): Promise<RangeRow> {
  const range = await resolveRange(db, ar, 'no key update', ctx.platform);
  if (!range) {
    const what = ar.PGIPAM_RANGE_ID !== undefined ? `range ${ar.PGIPAM_RANGE_ID}` : `a range starting at ${ar.IP ?? ar.IP6 ?? ar.MAC}`;
    throw new IpamError('RANGE_NOT_FOUND', `pgipam has no ${what} for platform "${ctx.platform}": the AR was unregistered, never registered through pgipam, or belongs to another platform`);
  }
  if (range.poolId !== null) {
    const allowed = range.poolName !== null && (!range.poolRestricted || (await db.query('select 1 from pgipam.pool_grant where pool_id = $1 and platform = $2', [range.poolId, ctx.platform])).rowCount);
    if (!allowed) throw new IpamError('PERMISSION_DENIED', `platform "${ctx.platform}" may not use pool ${range.poolName !== null ? `"${range.poolName}"` : `#${range.poolId}`} of ${describeRange(range)}: grant it with "pgipam platform grant"`);
  }
  return range;
}

// oned's SIZE for the AR bounds what it will accept; a SIZE shrunk with `onevnet updatear` wins.
function indexLimit(range: RangeRow, ar: Record<string, string>): number {
  return Math.min(range.size, arSize(ar) ?? range.size);
}

function requestedCount(address: Record<string, string>): number {
  return parseCount(address.SIZE ?? '1', 'ADDRESS SIZE', 1, MAX_AR_SIZE);
}

// Holds whose time is over become free again; called before looking for free space.
async function releaseExpiredHolds(db: Db, range: RangeRow): Promise<void> {
  // Holds are only made by ranges with a hold time, and a range's hold time never changes.
  if (range.holdSeconds === 0) return;
  const { rows } = await db.query<{ first_idx: string; last_idx: string }>(
    `delete from pgipam.lease where range_id = $1 and kind = 'hold' and held_until <= now() returning first_idx::text, last_idx::text`,
    [range.id],
  );
  for (const r of rows) await giveFree(db, range.id, Number(r.first_idx), Number(r.last_idx));
}

function holderText(range: RangeRow, l: LeaseRow): string {
  const what = { lease: 'leased by get_address', allocation: 'allocated by allocate_address', reservation: 'reserved by an operator', hold: 'on hold' }[l.kind];
  const block = l.firstIdx === l.lastIdx ? addressAt(range, l.firstIdx) : `${addressAt(range, l.firstIdx)} - ${addressAt(range, l.lastIdx)}`;
  const note = l.note ? ` (${l.note})` : '';
  const req = l.requestId && l.requestId !== '-' ? `, request ${l.requestId}` : '';
  return `${block} ${what}${note} since ${l.createdAt.toISOString()}${req}`;
}

// ---------------------------------------------------------------------------------------------
// get_address

export interface AddressResult {
  rangeId: number;
  index: number;
  size: number;
  ip: string;
}

export async function getAddress(db: Db, req: ActionRequest, ctx: ActionContext): Promise<AddressResult> {
  const count = requestedCount(req.address);
  return withTransaction(db, async () => {
    const range = await requireRange(db, req.ar, ctx);
    if (!hasIPv4(range.type)) {
      throw bad(`get_address needs an IPv4 range (IP4, IP4_6, IP4_6_STATIC); OpenNebula cannot take an automatic address from a ${range.type} AR: ask for a specific IP6 or MAC instead`);
    }
    const limit = indexLimit(range, req.ar);
    if (count > limit) throw bad(`ADDRESS SIZE ${count} is larger than ${describeRange(range)}`);
    await releaseExpiredHolds(db, range);
    const first = await leaseFirstFit(db, range, count, limit, ctx);
    if (first === null) {
      const usage = await rangeUsage(db, range.id);
      const drift = sizeDriftHint(range, req.ar);
      throw new IpamError('NO_FREE_ADDRESS', `no ${count === 1 ? 'free address' : `block of ${count} contiguous free addresses`} in ${describeRange(range)}: ${usage.used} of ${range.size} in use${drift ? `; ${drift}` : ''}`);
    }
    const ip = formatIPv4(range.ip4First! + first);
    ctx.log(`leased ${ip}${count > 1 ? ` + ${count - 1}` : ''} from range ${range.id}`);
    return { rangeId: range.id, index: first, size: count, ip };
  });
}

// ---------------------------------------------------------------------------------------------
// allocate_address

export interface AllocateResult extends AddressResult {
  wasHeld: boolean;
}

export async function allocateAddress(db: Db, req: ActionRequest, ctx: ActionContext): Promise<AllocateResult> {
  const count = requestedCount(req.address);
  return withTransaction(db, async () => {
    const range = await requireRange(db, req.ar, ctx);
    const { index, text } = requestedAddress(range, req.ar, req.address, count, indexLimit(range, req.ar));
    const last = index + count - 1;
    await releaseExpiredHolds(db, range);
    let wasHeld = false;
    if (!(await takeFree(db, range.id, index, last))) {
      const holders = await leasesOverlapping(db, range.id, index, last);
      const taken = holders.filter((l) => l.kind !== 'hold');
      if (taken.length) {
        throw new IpamError('ADDRESS_IN_USE', `${text}${count > 1 ? ` + ${count - 1}` : ''} is not free: ${taken.slice(0, 3).map((l) => holderText(range, l)).join('; ')}`);
      }
      // Only holds stand in the way: an explicit request for a held address is honoured.
      await cutLeases(db, range.id, holders, index, last);
      for (const h of holders) await giveFree(db, range.id, Math.max(h.firstIdx, index), Math.min(h.lastIdx, last));
      if (!(await takeFree(db, range.id, index, last))) throw new IpamError('INTERNAL', `free space of range ${range.id} is inconsistent`);
      wasHeld = true;
      ctx.log(`${text} was on hold; allocated on explicit request`);
    }
    await insertLease(db, range.id, index, last, 'allocation', ctx);
    const address = addressAt(range, index);
    await recordHistory(db, ctx, { event: 'address_allocated', spaceId: range.spaceId, rangeId: range.id, firstIdx: index, size: count, address, detail: wasHeld ? { was_held: true } : {} });
    ctx.log(`allocated ${address}${count > 1 ? ` + ${count - 1}` : ''} in range ${range.id}`);
    return { rangeId: range.id, index, size: count, ip: address, wasHeld };
  });
}

// ---------------------------------------------------------------------------------------------
// free_address

export interface FreeResult {
  rangeId: number | null;
  freed: number;
}

export async function freeAddress(db: Db, req: ActionRequest, ctx: ActionContext): Promise<FreeResult> {
  const count = requestedCount(req.address);
  return withTransaction(db, async () => {
    const range = await resolveRange(db, req.ar, 'no key update', ctx.platform);
    if (!range) {
      // oned keeps a lease whose free fails, forever; an address of a range we do not hold is free.
      ctx.log('no pgipam range for this AR; nothing to free');
      return { rangeId: null, freed: 0 };
    }
    // An address beyond pgipam's range inside an AR that oned grew was never handed out here:
    // freeing it finds nothing, and succeeds (a failed free would keep oned's lease forever).
    const { index, text } = requestedAddress(range, req.ar, req.address, count, Math.max(range.size, arSize(req.ar) ?? 0));
    const last = index + count - 1;
    if (last >= range.size) ctx.log(`${text} lies beyond the ${range.size} addresses of range ${range.id}: ${sizeDriftHint(range, req.ar) ?? 'nothing to free there'}`);
    const leases = await leasesOverlapping(db, range.id, index, last);
    const freeable = leases.filter((l) => l.kind === 'lease' || l.kind === 'allocation');
    if (leases.some((l) => l.kind === 'reservation')) ctx.log(`${text} is reserved by an operator; the reservation stays`);
    if (!freeable.length) {
      ctx.log(`${text} was already free in range ${range.id}`);
      return { rangeId: range.id, freed: 0 };
    }
    await cutLeases(db, range.id, freeable, index, last);
    const holdSecs = range.holdSeconds;
    let freed = 0;
    for (const l of freeable) {
      const f = Math.max(l.firstIdx, index);
      const la = Math.min(l.lastIdx, last);
      freed += la - f + 1;
      if (holdSecs > 0) {
        await insertLease(db, range.id, f, la, 'hold', ctx, { holdSeconds: holdSecs, note: `freed from ${l.kind}` });
      } else {
        await giveFree(db, range.id, f, la);
      }
      await recordHistory(db, ctx, { event: 'address_freed', spaceId: range.spaceId, rangeId: range.id, firstIdx: f, size: la - f + 1, address: addressAt(range, f), detail: { was: l.kind, hold_seconds: holdSecs } });
    }
    ctx.log(`freed ${text}${count > 1 ? ` + ${count - 1}` : ''} in range ${range.id}${holdSecs > 0 ? ` (on hold for ${holdSecs}s)` : ''}`);
    return { rangeId: range.id, freed };
  });
}


// ---------------------------------------------------------------------------------------------
// unregister_address_range

export interface UnregisterResult {
  rangeId: number | null;
  released: number;
}

export async function unregisterAddressRange(db: Db, req: ActionRequest, ctx: ActionContext): Promise<UnregisterResult> {
  return withTransaction(db, async () => {
    let range: RangeRow | null;
    try {
      range = await resolveRange(db, req.ar, 'update', ctx.platform);
    } catch (e) {
      // An AR in a space that no longer exists cannot have a range left.
      if (isIpamError(e, 'SPACE_NOT_FOUND')) range = null;
      else throw e;
    }
    if (!range) {
      ctx.log('no pgipam range for this AR; already unregistered');
      return { rangeId: null, released: 0 };
    }
    const usage = await rangeUsage(db, range.id);
    const blocks = await releaseRangeBlocks(db, range.id);
    // recorded while the range exists: a platform writes history only about its own ranges
    await recordHistory(db, ctx, {
      event: 'range_unregistered', spaceId: range.spaceId, rangeId: range.id, firstIdx: 0, size: range.size, address: addressAt(range, 0),
      detail: { released: usage.byKind, returned_to_pool: blocks.map(describeBlock) },
    });
    await db.query('delete from pgipam.address_range where id = $1', [range.id]);
    ctx.log(`unregistered ${describeRange(range)}; released ${usage.used} leased, reserved or held addresses`);
    return { rangeId: range.id, released: usage.used };
  });
}
