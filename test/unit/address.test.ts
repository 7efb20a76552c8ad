import { describe, expect, it } from 'vitest';
import {
  formatIPv4,
  formatIPv6,
  formatMac,
  ip6AtIndex,
  ip6Index,
  macAtIndex,
  macIndex,
  maskToPrefix,
  parseCidr4,
  parseCidr6,
  parseCount,
  parseIPv4,
  parseIPv6,
  parseMac,
  prefixToMask,
} from '../../src/address';

describe('IPv4', () => {
  it('parses and formats dotted quads at the edges', () => {
    expect(parseIPv4('0.0.0.0')).toBe(0);
    expect(parseIPv4('255.255.255.255')).toBe(2 ** 32 - 1);
    expect(parseIPv4('10.0.0.15')).toBe(0x0a00000f);
    expect(formatIPv4(0x0a00000f)).toBe('10.0.0.15');
    expect(formatIPv4(2 ** 32 - 1)).toBe('255.255.255.255');
  });
  it.each(['256.0.0.1', '10.0.0', '10.0.0.1.2', ' 10.0.0.1', '10.0.0.01', '10.0.0.1/24', '0x0a.0.0.1', '', '1e1.0.0.1', '-1.0.0.0'])(
    'refuses %j',
    (s) => {
      expect(() => parseIPv4(s)).toThrow(/IPv4|octet/);
    },
  );
  it('converts masks and prefixes, refusing holes', () => {
    expect(maskToPrefix(parseIPv4('255.255.255.0'), 'm')).toBe(24);
    expect(maskToPrefix(0, 'm')).toBe(0);
    expect(maskToPrefix(2 ** 32 - 1, 'm')).toBe(32);
    expect(formatIPv4(prefixToMask(20))).toBe('255.255.240.0');
    expect(() => maskToPrefix(parseIPv4('255.0.255.0'), 'm')).toThrow(/contiguous/);
    expect(parseCidr4('10.1.2.3/8', 'x')).toEqual({ network: parseIPv4('10.0.0.0'), prefix: 8 });
    expect(() => parseCidr4('10.0.0.0/33', 'x')).toThrow();
  });
});

describe('IPv6', () => {
  it('parses plain addresses and prints the canonical form', () => {
    expect(parseIPv6('2001:db8::1')).toBe(0x20010db8000000000000000000000001n);
    expect(formatIPv6(parseIPv6('2001:0DB8:0:0:0:0:0:0001'))).toBe('2001:db8::1');
    expect(formatIPv6(parseIPv6('::'))).toBe('::');
    expect(formatIPv6(2n ** 128n - 1n)).toBe('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff');
  });
  it.each(['2001:db8::1/64', 'fe80::1%eth0', '2001:db8:::1', '12345::', 'g::1', '10.0.0.1', '', '2001:db8::1 '])('refuses %j', (s) => {
    expect(() => parseIPv6(s)).toThrow(/IPv6/);
  });
  it('follows oned: index added to the low 32 bits without carry', () => {
    const first = parseIPv6('2001:db8::ffff:fff0');
    expect(formatIPv6(ip6AtIndex(first, 0x0f))).toBe('2001:db8::ffff:ffff');
    expect(formatIPv6(ip6AtIndex(first, 0x10))).toBe('2001:db8::'); // wraps, no carry into bit 32
    expect(ip6Index(first, parseIPv6('2001:db8::ffff:ffff'))).toBe(15);
    expect(ip6Index(first, parseIPv6('2001:db8::'))).toBe(16);
    expect(ip6Index(first, parseIPv6('2001:db9::ffff:fff0'))).toBeNull();
    expect(parseCidr6('2001:db8:1:2::5/48', 'p').network).toBe(parseIPv6('2001:db8:1::'));
  });
});

describe('MAC', () => {
  it('parses one or two digit groups and prints lower-case zero-padded', () => {
    expect(formatMac(parseMac('2:0:A:0:0:F'))).toBe('02:00:0a:00:00:0f');
    expect(formatMac(parseMac('ff:ff:ff:ff:ff:ff'))).toBe('ff:ff:ff:ff:ff:ff');
    expect(() => parseMac('02:00:0a:00:00')).toThrow(/MAC/);
    expect(() => parseMac('02-00-0a-00-00-0f')).toThrow(/MAC/);
  });
  it('adds the index to the low 32 bits like oned', () => {
    const first = parseMac('02:00:ff:ff:ff:fe');
    expect(formatMac(macAtIndex(first, 1))).toBe('02:00:ff:ff:ff:ff');
    expect(formatMac(macAtIndex(first, 2))).toBe('02:00:00:00:00:00');
    expect(macIndex(first, parseMac('02:00:00:00:00:00'))).toBe(2);
    expect(macIndex(first, parseMac('02:01:00:00:00:00'))).toBeNull();
  });
});

describe('parseCount', () => {
  it('takes whole numbers in bounds only', () => {
    expect(parseCount('1', 'SIZE', 1, 10)).toBe(1);
    expect(() => parseCount('0', 'SIZE', 1, 10)).toThrow(/minimum/);
    expect(() => parseCount('-1', 'SIZE', 1, 10)).toThrow(/whole number/);
    expect(() => parseCount('1.5', 'SIZE', 1, 10)).toThrow(/whole number/);
    expect(() => parseCount('abc', 'SIZE', 1, 10)).toThrow(/whole number/);
    expect(() => parseCount('11', 'SIZE', 1, 10)).toThrow(/maximum/);
    expect(() => parseCount(undefined, 'SIZE', 1, 10)).toThrow(/missing/);
    expect(() => parseCount('99999999999999999999', 'SIZE', 1, 10)).toThrow(/is too large: the maximum is 10/);
  });
});
