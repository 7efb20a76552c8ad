// Which address of a range an allocate_address or free_address request names.
//
// oned computes the ADDRESS it sends from an index of its own (AddressRange::addr_to_xml): MAC
// always, IP on IPv4-bearing ARs, IP6_ULA/IP6_GLOBAL on SLAAC ARs with a prefix, IP6 on static
// IPv6 ARs. OpenNebula 7.5.80 (and the versions before it that share the code) writes the integer
// result of its IPv6 formatting call instead of the address, so every IP6 (and IP6_GLOBAL,
// IP6_ULA) it sends is "0" while the MAC beside it is right (oned-samples/requests/18). So:
//   * every field that can name an index of the range is read: IP, IP6 (static types), MAC;
//   * an IP6 that is not an IPv6 address is treated as absent (the MAC says the same thing);
//   * the MAC counts from the AR's MAC, which oned may have chosen after registration;
//   * fields that name different addresses are refused, naming both: nothing is guessed.
// SLAAC addresses (IP6_GLOBAL, IP6_ULA) are derived from the MAC and add nothing.
import { ip6Index, macIndex } from '../address';
import type { AddressAsk, ArReference } from './parsed-request';
import { IpamError, badRequest } from '../errors';
import { type RangeRow, describeRange } from './range-queries';

export interface RequestedAddress {
  // first index of the block, and how a person would name it (the field oned sent, as sent)
  index: number;
  text: string;
}

interface Reading {
  field: 'IP' | 'IP6' | 'MAC';
  text: string;
  // null: the address lies outside the range
  index: number | null;
}

// The MAC the range's index 0 has: the one pgipam recorded, else the one in the AR as oned sent it.
export function rangeMacBase(range: RangeRow, ar: ArReference): number | null {
  return range.macFirst ?? ar.mac?.value() ?? null;
}

function readings(range: RangeRow, ar: ArReference, address: AddressAsk): { found: Reading[]; unusable: string[] } {
  const found: Reading[] = [];
  const unusable: string[] = [];
  if (range.ip4First !== null && address.ip4) {
    const ip = address.ip4.value();
    found.push({ field: 'IP', text: address.ip4.text, index: ip >= range.ip4First ? ip - range.ip4First : null });
  }
  if (range.ip6First !== null && address.ip6) {
    const ip6 = address.ip6.valueOrNull();
    if (ip6 === null) unusable.push(`IP6 "${address.ip6.text}" is not a valid IPv6 address`);
    else found.push({ field: 'IP6', text: address.ip6.text, index: ip6Index(range.ip6First, ip6) });
  }
  if (address.mac) {
    const mac = address.mac.value();
    const base = rangeMacBase(range, ar);
    if (base === null) unusable.push("the MAC cannot be placed: neither the AR nor pgipam knows the range's first MAC");
    else found.push({ field: 'MAC', text: address.mac.text, index: macIndex(base, mac) });
  }
  return { found, unusable };
}

const where = (r: Reading, range: RangeRow) => (r.index === null || r.index >= range.size ? 'outside the range' : `index ${r.index}`);

// The index the request names, checked against the range and against the SIZE oned believes the
// AR has (`onevnet updatear` changes it without telling the driver).
//   limit: the highest index + 1 the request may touch.
export function requestedAddress(range: RangeRow, ar: ArReference, address: AddressAsk, limit: number): RequestedAddress {
  const count = address.count.value();
  const { found, unusable } = readings(range, ar, address);
  const first = found[0];
  if (!first) {
    const need = range.ip4First !== null ? 'IP' : range.ip6First !== null ? 'IP6 or MAC' : 'MAC';
    const why = unusable.length ? `: ${unusable.join('; ')}` : '';
    throw badRequest(`ADDRESS has no ${need} to name an address of ${describeRange(range)} by${why}`);
  }
  for (const other of found.slice(1)) {
    if (other.index !== first.index) {
      throw badRequest(
        `ADDRESS ${first.field} ${first.text} and ${other.field} ${other.text} name different addresses of ${describeRange(range)} (${where(first, range)}, ${where(other, range)})`,
      );
    }
  }
  const { index, text } = first;
  if (index === null || index >= limit) throw outside(range, ar, text, index);
  if (index + count > limit) throw badRequest(`${text} + SIZE ${count} runs past the end of ${describeRange(range)}`);
  return { index, text };
}

// What to tell the operator when the AR's SIZE and the range's differ.
export function sizeDriftHint(range: RangeRow, ar: ArReference): string | null {
  if (ar.size === null || ar.size === range.size) return null;
  return `the AR says SIZE ${ar.size} but pgipam registered ${range.size} addresses for range ${range.id} ("onevnet updatear" changes SIZE without telling the IPAM driver): run "pgipam range resize ${range.id} --size ${ar.size}"`;
}

function outside(range: RangeRow, ar: ArReference, text: string, index: number | null): IpamError {
  const hint = sizeDriftHint(range, ar);
  if (hint && index !== null && index >= range.size && index < (ar.size ?? 0)) {
    return new IpamError('RANGE_MISMATCH', `${text} is beyond the end of ${describeRange(range)}: ${hint}`);
  }
  return badRequest(`${text} is outside ${describeRange(range)}`);
}
