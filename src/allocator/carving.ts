// What a registration leaves for pgipam to choose, and choosing it from a pool: the IPv4 subnet
// layout (network, gateway, first host), the IPv6 /64, and the spans an explicit AR occupies.
import { formatIPv4, formatIPv6, parseCount, parseIPv6 } from '../address';
import type { Db } from '../db/client';
import { IpamError, badRequest } from '../errors';
import { lockPools } from './locks';
import {
  type Block,
  type Family,
  type PoolRow,
  blockSize,
  carveBlock,
  getPool,
  getPoolById,
  isUla,
  poolDnsIPv4,
  poolReservationsOverlapping,
  takeSpan,
} from './pool-space';
import { type ArType, type RangeSpec, hasIPv4 } from './range-spec';

export interface CarvePlan {
  v4: boolean;
  v6static: boolean;
  slaac: boolean;
  any: boolean;
}

// What an AR leaves for pgipam to choose: the IPv4 subnet (no IP), the static IPv6 /64 (no IP6),
// or the SLAAC /64 (no prefix, when a pool is named or the default pool has IPv6).
export function carvePlan(ar: Record<string, string>, type: ArType): CarvePlan {
  const v4 = hasIPv4(type) && ar.IP === undefined;
  const v6static = (type === 'IP6_STATIC' || type === 'IP4_6_STATIC') && ar.IP6 === undefined;
  const slaac =
    (type === 'IP6' || type === 'IP4_6') &&
    ar.GLOBAL_PREFIX === undefined &&
    ar.ULA_PREFIX === undefined &&
    (ar.PGIPAM_POOL !== undefined || v4);
  return { v4, v6static, slaac, any: v4 || v6static || slaac };
}

// The pool to carve from, locked for the rest of the transaction and read under the lock (a
// concurrent "pgipam pool set" changes its gateway or DNS under the same lock).
export async function resolvePool(db: Db, name: string | null, plan: CarvePlan): Promise<PoolRow> {
  const found = await getPool(db, name);
  if (!found) {
    if (name !== null)
      throw new IpamError('NOT_FOUND', `pool "${name}" does not exist (or this platform may not use it): see "pgipam pool list"`);
    const what = plan.v4 ? 'IP' : plan.v6static ? 'IP6' : 'GLOBAL_PREFIX';
    throw badRequest(
      `the AR has no ${what} and names no pool to carve one from: set PGIPAM_POOL, or make a pool the default with "pgipam pool set <name> --default"`,
    );
  }
  await lockPools(db, [found.id]);
  const pool = await getPoolById(db, found.id);
  if (!pool) throw new IpamError('NOT_FOUND', `pool "${found.name}" was removed while this registration waited for it`);
  return pool;
}

export const IPV6_SUBNET = 64;

// Carves what the plan needs from the pool and returns the AR attributes that describe it.
export async function carveForAr(
  db: Db,
  pool: PoolRow,
  ar: Record<string, string>,
  type: ArType,
  plan: CarvePlan,
): Promise<{ attrs: Record<string, string>; blocks: Block[] }> {
  const attrs: Record<string, string> = {};
  const blocks: Block[] = [];
  if (plan.v4) {
    const size = parseCount(ar.SIZE, 'AR SIZE', 1, 2 ** 30);
    const carved = await carveIPv4Subnet(db, pool, size);
    const net = Number(carved.block.network);
    const hostBits = 32 - carved.block.prefixLength;
    attrs.IP = formatIPv4(net + carved.start);
    attrs.SIZE = String(size);
    attrs.NETWORK_ADDRESS = formatIPv4(net);
    attrs.NETWORK_MASK = formatIPv4(Number((0xffffffffn << BigInt(hostBits)) & 0xffffffffn));
    if (carved.gateway !== null) attrs.GATEWAY = formatIPv4(net + carved.gateway);
    blocks.push(carved.block);
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

// Where a carved IPv4 subnet of 2^h addresses puts its AR: `size` consecutive host offsets that
// hold none of what pgipam keeps out of allocation -- network and broadcast, the gateway where
// the pool says, and `kept` (the pool's DNS servers and reservations inside the subnet) -- the
// first such run. So every address of the AR can be leased: its SIZE is what get_address can
// hand out (issue 12). Null when the block cannot hold one.
export function placeInBlock(
  h: number,
  size: number,
  gatewayRule: string,
  kept: ReadonlyArray<readonly [number, number]> = [],
): { gateway: number | null; start: number } | null {
  const total = 2 ** h;
  const gateway = gatewayRule === 'none' ? null : gatewayRule === 'first' ? 1 : gatewayRule === 'last' ? total - 2 : Number(gatewayRule);
  if (gateway !== null && (gateway < 1 || gateway > total - 2)) return null;
  const excluded: Array<readonly [number, number]> = [[0, 0], [total - 1, total - 1], ...kept];
  if (gateway !== null) excluded.push([gateway, gateway]);
  excluded.sort((a, b) => a[0] - b[0]);
  let next = 0;
  for (const [first, last] of excluded) {
    if (first - next >= size) return { gateway, start: next };
    next = Math.max(next, last + 1);
  }
  return null;
}

// The smallest subnet that holds `size` addresses besides network, broadcast and gateway.
export function ipv4Layout(size: number, gatewayRule: string): { hostBits: number; gateway: number | null; start: number; arSize: number } {
  for (let h = 2; h <= 32; h++) {
    const p = placeInBlock(h, size, gatewayRule);
    if (p) return { hostBits: h, gateway: p.gateway, start: p.start, arSize: size };
  }
  throw badRequest(`no IPv4 subnet can hold ${size} addresses`);
}

const CANDIDATES_PER_QUERY = 16;

// Carves the IPv4 subnet of an AR of `size` addresses: the smallest subnet size first, in the
// pool's free blocks best fit first (smallest block, lowest address), skipping sub-blocks where
// the pool's reservations and DNS servers leave no room for `size` leasable addresses; a larger
// subnet only when no subnet of that size has room. Runs under the pool's lock (resolvePool), so a
// reservation made meanwhile waits for it.
async function carveIPv4Subnet(db: Db, pool: PoolRow, size: number): Promise<{ block: Block; gateway: number | null; start: number }> {
  const dns = poolDnsIPv4(pool.dns);
  let sawReservation = false;
  for (let h = ipv4Layout(size, pool.gateway).hostBits; h <= 32; h++) {
    const blockLen = 2 ** h;
    let after: { len: number; net: string } | null = null;
    for (;;) {
      // best fit first, through the pool_free_block_fit index; the next page from where one ended
      // (two statements: an OR on a parameter would keep the planner off the index)
      const rows: Array<{ network: string; prefix_length: number }> = (
        after === null
          ? await db.query<{ network: string; prefix_length: number }>(
              // f.network, not network: that would sort by the text of the output column
              `select f.network::text as network, f.prefix_length from pgipam.pool_free_block f
                where f.pool_id = $1 and f.family = 4 and f.prefix_length <= $2
                order by f.prefix_length desc, f.network limit ${CANDIDATES_PER_QUERY}`,
              [pool.id, 32 - h],
            )
          : await db.query<{ network: string; prefix_length: number }>(
              `select f.network::text as network, f.prefix_length from pgipam.pool_free_block f
                where f.pool_id = $1 and f.family = 4 and f.prefix_length <= $2
                  and (f.prefix_length < $3::int or (f.prefix_length = $3::int and f.network > $4::numeric))
                order by f.prefix_length desc, f.network limit ${CANDIDATES_PER_QUERY}`,
              [pool.id, 32 - h, after.len, after.net],
            )
      ).rows;
      for (const [i, f] of rows.entries()) {
        // the block pool_take_block would take: taken by it when the AR fits there (one call)
        const fast = after === null && i === 0;
        const found = await placeInFreeBlock(db, pool, [Number(f.network), 2 ** (32 - f.prefix_length)], blockLen, { size, dns }, fast);
        if (found === 'reserved') sawReservation = true;
        else if (found) return found;
      }
      if (rows.length < CANDIDATES_PER_QUERY) break;
      const last: { network: string; prefix_length: number } = rows[rows.length - 1]!;
      after = { len: last.prefix_length, net: last.network };
    }
  }
  throw new IpamError(
    'NO_FREE_ADDRESS',
    `pool "${pool.name}" has no free IPv4 /${32 - ipv4Layout(size, pool.gateway).hostBits} for ${size} addresses${sawReservation ? ' outside its reservations' : ''}`,
  );
}

const describeBlockText = (b: Block) => `${formatIPv4(Number(b.network))}/${b.prefixLength}`;

// The first sub-block of blockLen addresses in the free block [fNet, fNet + fSize) with room for
// the AR, taken out of the pool; 'reserved' when reservations left none.
async function placeInFreeBlock(
  db: Db,
  pool: PoolRow,
  [fNet, fSize]: readonly [number, number],
  blockLen: number,
  { size, dns }: { size: number; dns: number[] },
  takeFirstAsBlock = false,
): Promise<{ block: Block; gateway: number | null; start: number } | 'reserved' | null> {
  const reservations = (await poolReservationsOverlapping(db, pool.spaceId, 4, BigInt(fNet), BigInt(fNet + fSize - 1))).map(
    (r) => [Number(r.first), Number(r.last)] as const,
  );
  for (let b = fNet; b < fNet + fSize;) {
    const end = b + blockLen - 1;
    const kept: Array<readonly [number, number]> = [];
    for (const [first, last] of reservations) if (last >= b && first <= end) kept.push([Math.max(first, b) - b, Math.min(last, end) - b]);
    for (const d of dns) if (d >= b && d <= end) kept.push([d - b, d - b]);
    const p = placeInBlock(Math.log2(blockLen), size, pool.gateway, kept);
    if (p) {
      if (takeFirstAsBlock && b === fNet) {
        const block = await carveBlock(db, pool.id, 4, 32 - Math.log2(blockLen));
        if (block && Number(block.network) === b) return { block, ...p };
        throw new IpamError(
          'INTERNAL',
          `pool "${pool.name}" gave ${block ? describeBlockText(block) : 'nothing'} where ${formatIPv4(b)} was free`,
        );
      }
      const [block] = await takeSpan(db, pool, 4, BigInt(b), BigInt(end));
      return { block: block!, ...p };
    }
    // past a reservation that covers the start of this sub-block, or on to the next one
    const covering = reservations.find(([first, last]) => first <= b && last >= b);
    b = covering ? Math.ceil((covering[1] + 1 - fNet) / blockLen) * blockLen + fNet : b + blockLen;
  }
  return reservations.length ? 'reserved' : null;
}

export function poolAttributes(pool: PoolRow): Record<string, string> {
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
export function explicitSpans(spec: RangeSpec, ar: Record<string, string>): Array<{ family: Family; first: bigint; last: bigint }> {
  const out: Array<{ family: Family; first: bigint; last: bigint }> = [];
  if (spec.ip4First !== null) {
    if (spec.network4)
      out.push({
        family: 4,
        first: BigInt(spec.network4.network),
        last: BigInt(spec.network4.network) + blockSize(4, spec.network4.prefix) - 1n,
      });
    else out.push({ family: 4, first: BigInt(spec.ip4First), last: BigInt(spec.ip4First + spec.size - 1) });
  }
  if (spec.ip6First !== null) {
    const size = blockSize(6, spec.prefixLength!);
    const net = (spec.ip6First / size) * size;
    out.push({ family: 6, first: net, last: net + size - 1n });
  }
  for (const key of ['GLOBAL_PREFIX', 'ULA_PREFIX']) {
    if (ar[key] === undefined || spec.type === 'IP6_STATIC' || spec.type === 'IP4_6_STATIC' || spec.type === 'IP4' || spec.type === 'ETHER')
      continue;
    const size = blockSize(6, IPV6_SUBNET);
    const net = (parseIPv6(ar[key]!, `AR ${key}`) / size) * size;
    out.push({ family: 6, first: net, last: net + size - 1n });
  }
  return out;
}
