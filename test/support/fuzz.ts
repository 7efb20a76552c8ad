// Seeded generators of hostile requests: mutations of valid oned requests at every level (attribute
// values, elements, XML text, base64), plus plain garbage.
import type { Rng } from './random';
import { type Attrs, EMPTY_ADDRESS, actionData, addressXml, arXmlFormA, arXmlFormB, toBase64 } from './oned-sim';

export const NASTY_VALUES = [
  '',
  ' ',
  '"',
  '\\',
  'a"b',
  'a\\"b',
  'ends\\',
  ']]>',
  'a]]>b',
  '<',
  '<x/>',
  '&amp;',
  '&lol;',
  '\n',
  'a\nb',
  '\r\n',
  '\t',
  'a\u0001b',
  "'; drop table pgipam.lease; --",
  '1; delete from pgipam.address_range',
  "' or '1'='1",
  '$1',
  '%s%s%n',
  '${process.exit(1)}',
  '__proto__',
  'constructor',
  '\u00e9t\u00e9',
  '\ud83d\ude00',
  '-1',
  '0',
  '1',
  '2',
  '16',
  '4294967295',
  '4294967296',
  '99999999999999999999',
  '1e3',
  '0x10',
  '1.5',
  ' 1',
  '+1',
  '255.255.255.255',
  '0.0.0.0',
  '10.0.0.0',
  '10.0.0.5',
  '10.0.0.255',
  '256.1.1.1',
  '::',
  '::1',
  'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
  '2001:db8::',
  '2001:db8::/64',
  '10.0.0.0/8',
  'fe80::1%eth0',
  '::ffff:10.0.0.1',
  '02:00:0a:00:00:05',
  'ff:ff:ff:ff:ff:ff',
  '02:00:0a:00:00',
  'IP4',
  'ip4',
  'ETHER',
  'IP6',
  'IP6_STATIC',
  'IP4_6',
  'IP4_6_STATIC',
  'YES',
  'default',
  'nope',
  'A'.repeat(5000),
];
export const KEYS = [
  'TYPE',
  'IP',
  'IP6',
  'SIZE',
  'MAC',
  'PREFIX_LENGTH',
  'GLOBAL_PREFIX',
  'ULA_PREFIX',
  'NETWORK_ADDRESS',
  'NETWORK_MASK',
  'GATEWAY',
  'PGIPAM_RANGE_ID',
  'PGIPAM_SPACE',
  'PGIPAM_POOL',
  'PGIPAM_HOLD_SECONDS',
  'SHARED',
  'DNS',
  'IPAM_MAD',
  'X_CUSTOM',
];
const ADDRESS_KEYS = ['IP', 'IP6', 'MAC', 'SIZE'];

function esc(v: string): string {
  // values go into CDATA as oned sends them; a ]]> inside needs splitting to stay CDATA
  return v.replace(/]]>/g, ']]]]><![CDATA[>');
}

function arXml(ar: Attrs, formA: boolean): string {
  const body = Object.entries(ar)
    .map(([k, v]) => `<${k}><![CDATA[${esc(v)}]]></${k}>`)
    .join('');
  if (formA) return `<AR>${body}</AR>`;
  // form (b): oned adds computed elements; with hostile values they may not be computable
  let computed = '';
  try {
    computed = arXmlFormB(ar)
      .replace(/^<AR>.*?(?=<MAC_END>|<IP_END>|<IP6_END>|<USED_LEASES>)/, '')
      .replace(/<\/AR>$/, '');
  } catch {
    computed = '<USED_LEASES>0</USED_LEASES>';
  }
  return `<AR>${body}${computed}</AR>`;
}

export interface FuzzCase {
  description: string;
  input: string;
}

// One hostile input for `action`, derived from a valid AR (as oned stored it) and address.
export function mutate(rng: Rng, action: string, ar: Attrs, index: number): FuzzCase {
  const a: Attrs = { ...ar };
  let addr: Record<string, string> =
    action === 'get_address' ? { SIZE: '1' } : action === 'allocate_address' || action === 'free_address' ? { IP: '', SIZE: '1' } : {};
  if ('IP' in addr) {
    if (ar.IP) addr.IP = ar.IP.replace(/\d+$/, (d) => String(Number(d) + index));
    else {
      delete addr.IP;
      addr.MAC = ar.MAC ?? '02:00:00:00:00:01';
    }
  }
  const kind = rng.int(0, 9);
  let description: string;
  if (kind <= 3) {
    const key = rng.pick(KEYS);
    const value = rng.pick(NASTY_VALUES);
    a[key] = value;
    description = `AR/${key} = ${JSON.stringify(value.slice(0, 40))}`;
  } else if (kind <= 5) {
    const key = rng.pick(ADDRESS_KEYS);
    const value = rng.pick(NASTY_VALUES);
    addr = { ...addr, [key]: value };
    description = `ADDRESS/${key} = ${JSON.stringify(value.slice(0, 40))}`;
  } else if (kind === 6) {
    const key = rng.pick(Object.keys(a));
    delete a[key];
    description = `AR without ${key}`;
  } else {
    description = 'text mutation';
  }
  const addrXml = Object.keys(addr).length
    ? `<ADDRESS>${Object.entries(addr)
        .map(([k, v]) => `<${k}>${v.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</${k}>`)
        .join('')}</ADDRESS>`
    : EMPTY_ADDRESS;
  let xml = actionData(arXml(a, action === 'register_address_range' || rng.chance(0.3)), addrXml);
  if (kind >= 7) {
    const ops = rng.int(1, 4);
    for (let i = 0; i < ops; i++) {
      const pos = rng.int(0, xml.length);
      const op = rng.int(0, 4);
      if (op === 0) xml = xml.slice(0, pos) + xml.slice(pos + rng.int(1, 20));
      else if (op === 1)
        xml =
          xml.slice(0, pos) +
          rng.pick(['<', '>', '/', '"', '&', ']]>', '<![CDATA[', '<AR>', '</AR>', '<IP>1</IP>', '\u0000', '<!DOCTYPE x>', 'x']) +
          xml.slice(pos);
      else if (op === 2) xml = xml.slice(0, pos);
      else if (op === 3) {
        const m = /<([A-Z_]+)>[^<]*<\/\1>/.exec(xml.slice(pos));
        if (m) xml = xml.slice(0, pos) + m[0] + xml.slice(pos);
      } else xml = xml.replace(/<SIZE>[^<]*<\/SIZE>/, `<SIZE><SIZE>1</SIZE></SIZE>`);
    }
    description = `text mutation of ${xml.slice(0, 60)}`;
  }
  let input = toBase64(xml);
  const wrap = rng.int(0, 19);
  if (wrap === 0) input = xml;
  else if (wrap === 1) input = input.slice(0, rng.int(0, input.length));
  else if (wrap === 2) {
    const p = rng.int(0, input.length - 1);
    input = input.slice(0, p) + rng.pick(['*', '=', ' ', '\n', 'A', '-']) + input.slice(p + 1);
  } else if (wrap === 3)
    input = Buffer.from(Array.from({ length: rng.int(0, 300) }, () => rng.int(0, 255))).toString(rng.chance(0.5) ? 'base64' : 'latin1');
  return { description, input };
}

export { addressXml, arXmlFormA };
