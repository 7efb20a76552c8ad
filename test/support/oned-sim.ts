import fs from 'node:fs';
import path from 'node:path';
import { formatIPv4, formatIPv6, formatMac, ip6AtIndex, macAtIndex, parseIPv4, parseIPv6, parseMac } from '../../src/address';
import { ROOT } from './processes';
// Builds IPAM requests the way oned does (src/driver/PROTOCOL.md §4.1, checked against what a real oned
// 7.5.80 sent: test/fixtures/oned/requests), for the demo, the tests, the benchmark and the stress
// run: form (a) is VectorAttribute::to_xml (every key in byte order, CDATA), form (b) is
// AddressRange::to_xml (no ALLOCATED, plus MAC_END/IP_END/IP6_GLOBAL/... and USED_LEASES).

export type Attrs = Record<string, string>;

const cdata = (v: string) => `<![CDATA[${v}]]>`;

function sortedKeys(ar: Attrs): string[] {
  return Object.keys(ar).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

export function arXmlFormA(ar: Attrs): string {
  return `<AR>${sortedKeys(ar)
    .map((k) => `<${k}>${cdata(ar[k]!)}</${k}>`)
    .join('')}</AR>`;
}

export function arXmlFormB(ar: Attrs, usedLeases = 0): string {
  const keys = sortedKeys(ar).filter((k) => k !== 'ALLOCATED');
  let xml = keys.map((k) => `<${k}>${cdata(ar[k]!)}</${k}>`).join('');
  const size = Number(ar.SIZE);
  const type = (ar.TYPE ?? '').toUpperCase();
  const el = (k: string, v: string) => `<${k}>${cdata(v)}</${k}>`;
  if (ar.MAC) xml += el('MAC_END', formatMac(macAtIndex(parseMac(ar.MAC), size - 1)));
  if (IPV4_TYPES.includes(type) && ar.IP) xml += el('IP_END', formatIPv4(parseIPv4(ar.IP) + size - 1));
  if (SLAAC_TYPES.includes(type) && ar.MAC) {
    for (const [key, prefix] of [
      ['IP6_ULA', ar.ULA_PREFIX],
      ['IP6_GLOBAL', ar.GLOBAL_PREFIX],
    ] as const) {
      if (!prefix) continue;
      xml +=
        el(key, slaacAddress(prefix, parseMac(ar.MAC))) + el(`${key}_END`, slaacAddress(prefix, macAtIndex(parseMac(ar.MAC), size - 1)));
    }
  }
  if (STATIC6_TYPES.includes(type) && ar.IP6) xml += el('IP6_END', formatIPv6(ip6AtIndex(parseIPv6(ar.IP6), size - 1)));
  xml += `<USED_LEASES>${usedLeases}</USED_LEASES>`;
  return `<AR>${xml}</AR>`;
}

const IPV4_TYPES = ['IP4', 'IP4_6', 'IP4_6_STATIC'];
const SLAAC_TYPES = ['IP6', 'IP4_6'];
const STATIC6_TYPES = ['IP6_STATIC', 'IP4_6_STATIC'];

// The SLAAC address oned derives from a /64 prefix and a MAC (modified EUI-64).
function slaacAddress(prefix: string, mac: number): string {
  const m = BigInt(mac);
  const eui = (((m >> 24n) ^ 0x020000n) << 40n) | (0xfffen << 24n) | (m & 0xffffffn);
  return formatIPv6(((parseIPv6(prefix) >> 64n) << 64n) | eui);
}

export const EMPTY_ADDRESS = '<ADDRESS><MAC/><IP/><IP6_GLOBAL/><IP6_ULA/><IP6/><SIZE/></ADDRESS>';

export interface SimAddress {
  mac?: string;
  ip?: string;
  ip6Ula?: string;
  ip6Global?: string;
  ip6?: string;
  size: number;
}

// addr_to_xml's element order: MAC, IP, IP6_ULA, IP6_GLOBAL, IP6, SIZE; plain text, no CDATA.
export function addressXml(a: SimAddress): string {
  const el = (k: string, v: string | undefined) => (v === undefined || v === '' ? '' : `<${k}>${v}</${k}>`);
  return `<ADDRESS>${el('MAC', a.mac)}${el('IP', a.ip)}${el('IP6_ULA', a.ip6Ula)}${el('IP6_GLOBAL', a.ip6Global)}${el('IP6', a.ip6)}<SIZE>${a.size}</SIZE></ADDRESS>`;
}

export function actionData(arXml: string, addrXml: string): string {
  return `<IPAM_DRIVER_ACTION_DATA>${arXml}${addrXml}</IPAM_DRIVER_ACTION_DATA>`;
}

export const toBase64 = (xml: string) => Buffer.from(xml, 'utf8').toString('base64');

// What oned stores after a successful register: the reply plus AR_ID, MAC, NEXT_INDEX, SHARED.
export function storedAr(reply: Attrs, arId: number, macPrefix = '02:00'): Attrs {
  const ar: Attrs = { ...reply, AR_ID: String(arId), NEXT_INDEX: '0', SHARED: 'NO' };
  if (!ar.MAC) {
    if (ar.IP) {
      const ip = parseIPv4(ar.IP);
      ar.MAC = formatMac(parseMac(`${macPrefix}:00:00:00:00`) + ip);
    } else {
      ar.MAC = formatMac(parseMac(`${macPrefix}:00:00:00:00`) + 0x10000000 + arId * 0x10000);
    }
  }
  return ar;
}

// The ADDRESS oned computes from an index (addr_to_xml): MAC always, IP for IPv4 ARs, IP6_ULA and
// IP6_GLOBAL for SLAAC ARs with a prefix, IP6 for static IPv6 ARs. OpenNebula 7.5.80 writes every
// IPv6 field as "0" (the integer result of its formatting call; oned-samples/requests/18); pass
// { fixedOned: true } for what an oned without that bug (or a person) sends.
export function addressForIndex(ar: Attrs, index: number, size: number, o: { fixedOned?: boolean } = {}): SimAddress & { mac: string } {
  const mac = macAtIndex(parseMac(ar.MAC!), index);
  const out: SimAddress & { mac: string } = { mac: formatMac(mac), size };
  const type = (ar.TYPE ?? '').toUpperCase();
  const v6 = (text: () => string) => (o.fixedOned ? text() : '0');
  if (IPV4_TYPES.includes(type)) out.ip = formatIPv4(parseIPv4(ar.IP!) + index);
  if (SLAAC_TYPES.includes(type)) {
    if (ar.ULA_PREFIX) out.ip6Ula = v6(() => slaacAddress(ar.ULA_PREFIX!, mac));
    if (ar.GLOBAL_PREFIX) out.ip6Global = v6(() => slaacAddress(ar.GLOBAL_PREFIX!, mac));
  }
  if (STATIC6_TYPES.includes(type)) out.ip6 = v6(() => formatIPv6(ip6AtIndex(parseIPv6(ar.IP6!), index)));
  return out;
}

// ---------------------------------------------------------------------------------------------
// What `onevnet show -x` and `onevnet list -x` print, for networks the tests and the benchmark make
// up: the network's own elements are copied from a real oned's output (test/fixtures/oned/
// snapshot-1/onevnet-show-34.xml) with ID, NAME and USED_LEASES replaced, the ARs written as
// AddressRange::to_xml writes them (arXmlFormB) with their LEASES.

export interface SimLease {
  index: number;
  owner: 'VM' | 'VNET' | 'VROUTER';
  id: number; // VM -1: a hold
}

export interface SimAr {
  attrs: Attrs; // as oned stores the AR: storedAr(reply, arId)
  leases: SimLease[];
}

export interface SimNetwork {
  id: number;
  name: string;
  ars: SimAr[];
  parentNetworkId?: number;
}

let sample: [string, string] | undefined;
function showSample(): [string, string] {
  if (sample) return sample;
  const xml = fs.readFileSync(path.join(ROOT, 'test/fixtures/oned/snapshot-1/onevnet-show-34.xml'), 'utf8');
  const start = xml.indexOf('  <AR_POOL>');
  const end = xml.indexOf('</AR_POOL>') + '</AR_POOL>'.length;
  return (sample = [xml.slice(0, start), xml.slice(end)]);
}

function leaseXml(ar: Attrs, l: SimLease): string {
  const type = (ar.TYPE ?? '').toUpperCase();
  const el = (k: string, v: string) => `<${k}>${cdata(v)}</${k}>`;
  let xml = '';
  if (IPV4_TYPES.includes(type)) xml += el('IP', formatIPv4(parseIPv4(ar.IP!) + l.index));
  if (STATIC6_TYPES.includes(type)) xml += el('IP6', formatIPv6(ip6AtIndex(parseIPv6(ar.IP6!), l.index)));
  xml += el('MAC', formatMac(macAtIndex(parseMac(ar.MAC!), l.index)));
  return `<LEASE>${xml}${el(l.owner, String(l.id))}</LEASE>`;
}

function networkXml(n: SimNetwork, withLeases: boolean): string {
  const used = n.ars.reduce((s, a) => s + a.leases.length, 0);
  const [sampleHead, sampleTail] = showSample();
  const head = sampleHead
    .replace(/<ID>34<\/ID>/, `<ID>${n.id}</ID>`)
    .replace(/<NAME>prod-ipam<\/NAME>/, `<NAME>${n.name}</NAME>`)
    .replace(
      /<PARENT_NETWORK_ID\/>/,
      n.parentNetworkId === undefined ? '<PARENT_NETWORK_ID/>' : `<PARENT_NETWORK_ID>${n.parentNetworkId}</PARENT_NETWORK_ID>`,
    )
    .replace(/\n {2}<USED_LEASES>\d+<\/USED_LEASES>/, `\n  <USED_LEASES>${used}</USED_LEASES>`);
  const ars = n.ars
    .map((a) => {
      const ar = arXmlFormB(a.attrs, a.leases.length);
      if (!withLeases) return ar;
      const leases = [...a.leases].sort((x, y) => x.index - y.index).map((l) => leaseXml(a.attrs, l));
      return `${ar.slice(0, -'</AR>'.length)}<LEASES>${leases.join('')}</LEASES></AR>`;
    })
    .join('');
  return `${head}  <AR_POOL>${ars}</AR_POOL>${sampleTail}`;
}

export const onevnetShowXml = (n: SimNetwork): string => networkXml(n, true);

export function onevnetListXml(networks: readonly SimNetwork[]): string {
  return `<VNET_POOL>${networks.map((n) => networkXml(n, false).trimEnd()).join('')}</VNET_POOL>`;
}
