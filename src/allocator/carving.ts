// What a registration leaves for pgipam to choose, and choosing it from a pool: the IPv4 subnet
// layout (network, gateway, first host), the IPv6 /64, and the spans an explicit AR occupies.
import { formatIPv4, formatIPv6, parseCount, parseIPv6 } from '../address';
import type { Db } from '../db/client';
import { IpamError, badRequest } from '../errors';
import { lockPools } from './locks';
import { type Block, type Family, type PoolRow, blockSize, carveBlock, getPool, getPoolById, isUla } from './pool-space';
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
    const layout = ipv4Layout(size, pool.gateway);
    const block = await carveBlock(db, pool.id, 4, 32 - layout.hostBits);
    if (!block)
      throw new IpamError('NO_FREE_ADDRESS', `pool "${pool.name}" has no free IPv4 /${32 - layout.hostBits} for ${size} addresses`);
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
  throw badRequest(`no IPv4 subnet can hold ${size} addresses`);
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
