// What an AR says about its addresses, validated per TYPE the way oned validates it
// (AddressRange::from_attr), plus the network facts pgipam can derive from it.
import {
  MAX_AR_SIZE,
  formatIPv4,
  formatIPv6,
  formatMac,
  maskToPrefix,
  parseCidr4,
  parseCount,
  parseIPv4,
  parseIPv6,
  parseMac,
  prefixToMask,
} from '../address';
import { ONED_COMPUTED_ATTRIBUTES } from '../ar-attributes';
import { badRequest } from '../errors';

export const AR_TYPES = ['ETHER', 'IP4', 'IP6', 'IP6_STATIC', 'IP4_6', 'IP4_6_STATIC'] as const;
export type ArType = (typeof AR_TYPES)[number];

export const hasIPv4 = (t: ArType) => t === 'IP4' || t === 'IP4_6' || t === 'IP4_6_STATIC';
export const hasStaticIPv6 = (t: ArType) => t === 'IP6_STATIC' || t === 'IP4_6_STATIC';
export const hasSlaac = (t: ArType) => t === 'IP6' || t === 'IP4_6';

// Where a range's addresses are: what a registration request says and what the database holds.
export interface RangeAddresses {
  type: ArType;
  size: number;
  ip4First: number | null;
  ip6First: bigint | null;
  prefixLength: number | null;
  macFirst: number | null;
}

export interface RangeSpec extends RangeAddresses {
  // Derived IPv4 network, when the AR tells enough to know it.
  network4: { network: number; prefix: number } | null;
  gateway4: number | null;
}

export function parseArType(value: string | undefined): ArType {
  if (!value) throw badRequest('AR has no TYPE: expected one of ' + AR_TYPES.join(', '));
  const t = value.toUpperCase();
  if (!(AR_TYPES as readonly string[]).includes(t))
    throw badRequest(`AR TYPE "${value}" is unknown: expected one of ${AR_TYPES.join(', ')}`);
  return t as ArType;
}

// Validates a registration request and works out the addresses it covers.
export function rangeSpecFromAr(ar: Record<string, string>): RangeSpec {
  const type = parseArType(ar.TYPE);
  if ((ar.SHARED ?? '').toUpperCase() === 'YES') throw badRequest('shared ARs (SHARED = "YES") cannot use an external IPAM');
  const macFirst = ar.MAC !== undefined ? parseMac(ar.MAC, 'AR MAC') : null;

  let ip4First: number | null = null;
  let ip6First: bigint | null = null;
  let prefixLength: number | null = null;
  let size: number;

  if (hasIPv4(type)) {
    if (ar.IP === undefined) throw badRequest(`a ${type} AR needs an IP (the first address of the range)`);
    ip4First = parseIPv4(ar.IP, 'AR IP');
  }
  if (hasStaticIPv6(type)) {
    if (ar.IP6 === undefined) throw badRequest(`a ${type} AR needs IP6 (the first IPv6 address of the range)`);
    if (ar.PREFIX_LENGTH === undefined) throw badRequest(`a ${type} AR needs PREFIX_LENGTH`);
    ip6First = parseIPv6(ar.IP6, 'AR IP6');
    prefixLength = parseCount(ar.PREFIX_LENGTH, 'AR PREFIX_LENGTH', 1, 128);
  }
  if (hasSlaac(type)) {
    for (const key of ['GLOBAL_PREFIX', 'ULA_PREFIX'] as const) {
      const v = ar[key];
      if (v !== undefined && (v.includes('/') || !safeIPv6(v))) {
        throw badRequest(`AR ${key} "${v}" must be an IPv6 address such as 2001:db8:: (no /length); only its first 64 bits are used`);
      }
    }
  }

  if (ar.SIZE === undefined && type === 'IP6_STATIC') {
    size = sizeFromPrefix(ip6First!, prefixLength!);
  } else {
    size = parseCount(ar.SIZE, 'AR SIZE', 1, MAX_AR_SIZE);
  }

  if (ip4First !== null && ip4First + size > 2 ** 32) {
    throw badRequest(`AR IP ${ar.IP} with SIZE ${size} runs past 255.255.255.255`);
  }
  if (ip6First !== null) {
    const low = Number(ip6First % 2n ** 32n);
    if (low + size > 2 ** 32) {
      throw badRequest(`AR IP6 ${ar.IP6} with SIZE ${size} would wrap the low 32 bits, which OpenNebula adds the index to without carry`);
    }
    const hostBits = 128n - BigInt(prefixLength!);
    const offset = ip6First - ((ip6First >> hostBits) << hostBits);
    if (offset + BigInt(size) > 1n << hostBits)
      throw badRequest(`AR IP6 ${ar.IP6} with SIZE ${size} runs past the end of its /${prefixLength} prefix`);
  }
  if (macFirst !== null && (macFirst % 2 ** 32) + size > 2 ** 32) {
    throw badRequest(`AR MAC ${ar.MAC} with SIZE ${size} would wrap the low 32 bits of the MAC`);
  }

  let network4: RangeSpec['network4'] = null;
  let gateway4: number | null = null;
  if (ip4First !== null) {
    network4 = networkFromAr(ar, ip4First);
    if (network4) {
      const netSize = 2 ** (32 - network4.prefix);
      if (ip4First < network4.network || ip4First + size > network4.network + netSize) {
        throw badRequest(`AR range ${ar.IP} + ${size} does not fit in its network ${formatIPv4(network4.network)}/${network4.prefix}`);
      }
    }
    if (ar.GATEWAY !== undefined) {
      gateway4 = parseIPv4(ar.GATEWAY, 'AR GATEWAY');
      if (network4 && (gateway4 & prefixToMask(network4.prefix)) >>> 0 !== network4.network) {
        throw badRequest(`AR GATEWAY ${ar.GATEWAY} is not inside the network ${formatIPv4(network4.network)}/${network4.prefix}`);
      }
    }
  }
  return { type, size, ip4First, ip6First, prefixLength, macFirst, network4, gateway4 };
}

function safeIPv6(v: string): boolean {
  try {
    parseIPv6(v);
    return true;
  } catch {
    return false;
  }
}

// oned computes SIZE from PREFIX_LENGTH when an IP6_STATIC AR has none; pgipam keeps it inside
// the prefix and below the 2^32 addresses an AR can index.
function sizeFromPrefix(ip6: bigint, prefixLength: number): number {
  const hostBits = 128n - BigInt(prefixLength);
  const offset = ip6 - ((ip6 >> hostBits) << hostBits);
  const remaining = (1n << hostBits) - offset;
  const lowRoom = 2n ** 32n - (ip6 % 2n ** 32n);
  const size = remaining < lowRoom ? remaining : lowRoom;
  return Math.min(Number(size), MAX_AR_SIZE);
}

// NETWORK_ADDRESS may carry a /length; NETWORK_MASK may be dotted or /length.
function networkFromAr(ar: Record<string, string>, ip4First: number): { network: number; prefix: number } | null {
  let prefix: number | null = null;
  let network: number | null = null;
  if (ar.NETWORK_ADDRESS !== undefined) {
    if (ar.NETWORK_ADDRESS.includes('/')) {
      const c = parseCidr4(ar.NETWORK_ADDRESS, 'AR NETWORK_ADDRESS');
      prefix = c.prefix;
      network = c.network;
    } else {
      network = parseIPv4(ar.NETWORK_ADDRESS, 'AR NETWORK_ADDRESS');
    }
  }
  if (ar.NETWORK_MASK !== undefined) {
    const mask = ar.NETWORK_MASK.startsWith('/')
      ? parseCount(ar.NETWORK_MASK.slice(1), 'AR NETWORK_MASK', 0, 32)
      : maskToPrefix(parseIPv4(ar.NETWORK_MASK, 'AR NETWORK_MASK'), ar.NETWORK_MASK);
    if (prefix !== null && prefix !== mask)
      throw badRequest(`AR NETWORK_ADDRESS ${ar.NETWORK_ADDRESS} and NETWORK_MASK ${ar.NETWORK_MASK} disagree`);
    prefix = mask;
  }
  if (prefix === null) return null;
  const base = network ?? ip4First;
  const netNumber = (base & prefixToMask(prefix)) >>> 0;
  if (network !== null && network !== netNumber) {
    throw badRequest(`AR NETWORK_ADDRESS ${formatIPv4(network)} is not the network address of a /${prefix}`);
  }
  return { network: netNumber, prefix };
}

// The AR reply: every attribute received (oned replaces the AR with the reply), normalised
// address attributes, and what pgipam knows about the network, ending with our own range id.
export function registerReply(
  ar: Record<string, string>,
  spec: RangeSpec,
  extra: { ipamMad: string; rangeId: string; space: string },
): Record<string, string> {
  const out: Record<string, string> = {};
  out.IPAM_MAD = extra.ipamMad;
  out.TYPE = spec.type;
  if (spec.ip4First !== null) out.IP = formatIPv4(spec.ip4First);
  if (spec.ip6First !== null) {
    out.IP6 = formatIPv6(spec.ip6First);
    out.PREFIX_LENGTH = String(spec.prefixLength);
  }
  out.SIZE = String(spec.size);
  if (spec.macFirst !== null) out.MAC = formatMac(spec.macFirst);
  for (const [k, v] of Object.entries(ar)) {
    if (ONED_COMPUTED_ATTRIBUTES.has(k) || k in out) continue;
    out[k] = v;
  }
  if (spec.network4) {
    out.NETWORK_ADDRESS = formatIPv4(spec.network4.network);
    out.NETWORK_MASK = formatIPv4(prefixToMask(spec.network4.prefix));
  }
  if (spec.gateway4 !== null) out.GATEWAY = formatIPv4(spec.gateway4);
  out.PGIPAM_SPACE = extra.space;
  out.PGIPAM_RANGE_ID = extra.rangeId;
  return out;
}
