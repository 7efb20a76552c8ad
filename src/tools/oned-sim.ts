// Builds IPAM requests the way oned does (protocol notes §4.1), for the demo, the tests, the
// benchmark and the stress run: form (a) is VectorAttribute::to_xml (every key in byte order, CDATA),
// form (b) is AddressRange::to_xml (no ALLOCATED, plus MAC_END/IP_END/... and USED_LEASES).
import { formatIPv4, formatIPv6, formatMac, ip6AtIndex, macAtIndex, parseIPv4, parseIPv6, parseMac } from '../address';

export type Attrs = Record<string, string>;

const cdata = (v: string) => `<![CDATA[${v}]]>`;

function sortedKeys(ar: Attrs): string[] {
  return Object.keys(ar).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

export function arXmlFormA(ar: Attrs): string {
  return `<AR>${sortedKeys(ar).map((k) => `<${k}>${cdata(ar[k]!)}</${k}>`).join('')}</AR>`;
}

export function arXmlFormB(ar: Attrs, usedLeases = 0): string {
  const keys = sortedKeys(ar).filter((k) => k !== 'ALLOCATED');
  let xml = keys.map((k) => `<${k}>${cdata(ar[k]!)}</${k}>`).join('');
  const size = Number(ar.SIZE);
  const type = (ar.TYPE ?? '').toUpperCase();
  if (ar.MAC) xml += `<MAC_END>${cdata(formatMac(macAtIndex(parseMac(ar.MAC), size - 1)))}</MAC_END>`;
  if (['IP4', 'IP4_6', 'IP4_6_STATIC'].includes(type) && ar.IP) xml += `<IP_END>${cdata(formatIPv4(parseIPv4(ar.IP) + size - 1))}</IP_END>`;
  if (['IP6_STATIC', 'IP4_6_STATIC'].includes(type) && ar.IP6) xml += `<IP6_END>${cdata(formatIPv6(ip6AtIndex(parseIPv6(ar.IP6), size - 1)))}</IP6_END>`;
  xml += `<USED_LEASES>${usedLeases}</USED_LEASES>`;
  return `<AR>${xml}</AR>`;
}

export const EMPTY_ADDRESS = '<ADDRESS><MAC/><IP/><IP6_GLOBAL/><IP6_ULA/><IP6/><SIZE/></ADDRESS>';

export function addressXml(a: { mac?: string; ip?: string; ip6?: string; size: number }): string {
  return `<ADDRESS>${a.mac ? `<MAC>${a.mac}</MAC>` : ''}${a.ip ? `<IP>${a.ip}</IP>` : ''}${a.ip6 ? `<IP6>${a.ip6}</IP6>` : ''}<SIZE>${a.size}</SIZE></ADDRESS>`;
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

// The ADDRESS oned computes from an index (addr_to_xml): MAC always, IP for IPv4 ARs, IP6 for static.
export function addressForIndex(ar: Attrs, index: number, size: number): { mac: string; ip?: string; ip6?: string; size: number } {
  const out: { mac: string; ip?: string; ip6?: string; size: number } = { mac: formatMac(macAtIndex(parseMac(ar.MAC!), index)), size };
  const type = (ar.TYPE ?? '').toUpperCase();
  if (['IP4', 'IP4_6', 'IP4_6_STATIC'].includes(type)) out.ip = formatIPv4(parseIPv4(ar.IP!) + index);
  if (['IP6_STATIC', 'IP4_6_STATIC'].includes(type)) out.ip6 = formatIPv6(ip6AtIndex(parseIPv6(ar.IP6!), index));
  return out;
}
