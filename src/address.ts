// Address arithmetic for IPv4, IPv6 and MAC, following oned's own index rules so that an index,
// an IPv4 address, a static IPv6 address and a MAC always name the same lease:
//   IPv4  : AR.IP + index                       (an AR never crosses 255.255.255.255)
//   IPv6  : high 96 bits of AR.IP6, low 32 bits = (low32(AR.IP6) + index) mod 2^32  (no carry)
//   MAC   : high 16 bits of AR.MAC, low 32 bits = (low32(AR.MAC) + index) mod 2^32   (no carry)
// oned keeps SIZE and indices as unsigned int, so an AR holds at most 2^32 - 1 addresses.
import type * as IpAddress from 'ip-address';

// ip-address is loaded when an IPv6 address is first parsed or printed: most actions never touch
// one, and it is an eighth of an action's bundle to load at every start.
let ipAddress: typeof IpAddress | undefined;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const address6 = () => (ipAddress ??= require('ip-address') as typeof IpAddress).Address6;
import { badRequest } from './errors';

// oned parses SIZE into an unsigned int: 4294967296 is "Wrong SIZE for address range". A larger SIZE
// must be refused here, or oned would refuse the AR after pgipam had registered it.
export const MAX_AR_SIZE = 2 ** 32 - 1;
const TWO32 = 2n ** 32n;

// Dotted quad, digits and dots only, as oned requires; leading zeros are refused because some
// tools read them as octal.
export function parseIPv4(text: string, what = 'IP'): number {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m) throw badRequest(`${what} "${text}" is not an IPv4 address in dotted-quad form`);
  let n = 0;
  for (let i = 1; i <= 4; i++) {
    const part = m[i]!;
    if (part.length > 1 && part.startsWith('0')) throw badRequest(`${what} "${text}" has a leading zero in an octet`);
    const v = Number(part);
    if (v > 255) throw badRequest(`${what} "${text}" has an octet above 255`);
    n = n * 256 + v;
  }
  return n;
}

export function formatIPv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

// A plain IPv6 address: no prefix length, no zone index.
export function parseIPv6(text: string, what = 'IP6'): bigint {
  if (text.length > 45 || !/^[0-9A-Fa-f:.]+$/.test(text) || !text.includes(':') || !address6().isValid(text)) {
    throw badRequest(`${what} "${text}" is not a valid IPv6 address`);
  }
  return new (address6())(text).bigInt();
}

export function formatIPv6(n: bigint): string {
  return address6().fromBigInt(n).correctForm();
}

export function parseMac(text: string, what = 'MAC'): number {
  // oned accepts one or two hex digits per group (AddressRange.cc mac regexp).
  const m = /^([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})$/.exec(
    text,
  );
  if (!m) throw badRequest(`${what} "${text}" is not a MAC address (six hex groups separated by colons)`);
  let n = 0;
  for (let i = 1; i <= 6; i++) n = n * 256 + parseInt(m[i]!, 16);
  return n;
}

export function formatMac(n: number): string {
  const parts: string[] = [];
  for (let i = 5; i >= 0; i--) parts.push((Math.floor(n / 256 ** i) % 256).toString(16).padStart(2, '0'));
  return parts.join(':');
}

export function ip6AtIndex(first: bigint, index: number): bigint {
  const high = first - (first % TWO32);
  return high + (((first % TWO32) + BigInt(index)) % TWO32);
}

// Index of an IPv6 address in a static AR starting at `first`, or null when the high 96 bits differ.
export function ip6Index(first: bigint, ip: bigint): number | null {
  if (ip / TWO32 !== first / TWO32) return null;
  return Number(((((ip % TWO32) - (first % TWO32)) % TWO32) + TWO32) % TWO32);
}

export function macAtIndex(first: number, index: number): number {
  const high = Math.floor(first / 2 ** 32);
  return high * 2 ** 32 + (((first % 2 ** 32) + index) % 2 ** 32);
}

export function macIndex(first: number, mac: number): number | null {
  if (Math.floor(mac / 2 ** 32) !== Math.floor(first / 2 ** 32)) return null;
  return ((((mac % 2 ** 32) - (first % 2 ** 32)) % 2 ** 32) + 2 ** 32) % 2 ** 32;
}

export function prefixToMask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

// Netmask in dotted form to a prefix length; refuses non-contiguous masks.
export function maskToPrefix(mask: number, text: string): number {
  const inverted = ~mask >>> 0;
  if ((inverted & (inverted + 1)) !== 0) throw badRequest(`NETWORK_MASK "${text}" is not a contiguous netmask`);
  let bits = 0;
  for (let m = mask; m !== 0; m = (m << 1) >>> 0) bits++;
  return bits;
}

export interface Cidr4 {
  network: number;
  prefix: number;
}

export function parseCidr4(text: string, what: string): Cidr4 {
  const [addr, len, ...rest] = text.split('/');
  if (rest.length || len === undefined || !/^\d{1,2}$/.test(len) || Number(len) > 32) {
    throw badRequest(`${what} "${text}" is not an IPv4 prefix such as 10.0.0.0/24`);
  }
  const prefix = Number(len);
  const ip = parseIPv4(addr!, what);
  return { network: (ip & prefixToMask(prefix)) >>> 0, prefix };
}

export interface Cidr6 {
  network: bigint;
  prefix: number;
}

export function parseCidr6(text: string, what: string): Cidr6 {
  const [addr, len, ...rest] = text.split('/');
  if (rest.length || len === undefined || !/^\d{1,3}$/.test(len) || Number(len) > 128) {
    throw badRequest(`${what} "${text}" is not an IPv6 prefix such as 2001:db8::/64`);
  }
  const prefix = Number(len);
  const ip = parseIPv6(addr!, what);
  const hostBits = 128n - BigInt(prefix);
  return { network: (ip >> hostBits) << hostBits, prefix };
}

// Strict decimal integer in [min, max]; the XML keeps every value a string until this point.
export function parseCount(text: string | undefined, what: string, min: number, max: number): number {
  if (text === undefined || text === '') throw badRequest(`${what} is missing`);
  if (/^\d{17,}$/.test(text))
    throw badRequest(`${what} ${text.slice(0, 24)}${text.length > 24 ? '...' : ''} is too large: the maximum is ${max}`);
  if (!/^\d{1,16}$/.test(text)) throw badRequest(`${what} "${text}" is not a whole number`);
  const n = Number(text);
  if (n < min) throw badRequest(`${what} ${text} is below the minimum of ${min}`);
  if (n > max) throw badRequest(`${what} ${text} is above the maximum of ${max}`);
  return n;
}
