// oned's own view of its networks, read from what `onevnet list -x` and `onevnet show -x <id>`
// print: the input of import and reconcile (issue 11). oned keeps a lease map beside pgipam's and
// the two drift apart (src/driver/PROTOCOL.md §5.4, §5.5); this module only reads oned's side,
// strictly, so that a truncated file or the output of another command is refused with one line
// instead of being taken for "oned has no leases" (which reconcile would turn into frees).
//
// Shapes as a real oned 7.5.80 prints them (test/fixtures/oned/snapshot-*): values in CDATA,
// `list -x` without LEASES, a lease owned by exactly one of VM (VM -1 is a hold), VNET (a
// reservation vnet holds addresses of its parent) or VROUTER.
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { badRequest } from './errors';

export type LeaseOwnerKind = 'VM' | 'VNET' | 'VROUTER';

export interface OnedLeaseOwner {
  kind: LeaseOwnerKind;
  id: number; // VM -1: a hold (`onevnet hold`)
}

export interface OnedLease {
  ip?: string;
  ip6?: string;
  mac: string;
  owner: OnedLeaseOwner;
}

export interface OnedAddressRange {
  arId: number;
  type: string; // IP4, IP6, IP6_STATIC, IP4_6, IP4_6_STATIC, ETHER
  size: number;
  ipamMad?: string; // absent: oned's internal IPAM
  pgipamRangeId?: number; // what pgipam's register reply put in the AR
  parentArId?: number; // reservation vnets: the AR of the parent they hold addresses in
  attributes: Readonly<Record<string, string>>; // every scalar of the AR, as oned stored it
  leases?: readonly OnedLease[]; // absent in `list -x` output, which omits them
}

export interface OnedNetwork {
  id: number;
  name: string;
  parentNetworkId?: number; // set on reservation vnets
  addressRanges: readonly OnedAddressRange[];
  withLeases: boolean; // false for `list -x` output
}

const MAX_XML_BYTES = 64 * 1024 * 1024; // a cloud of many /16 networks with every lease shown

const parser = new XMLParser({
  ignoreAttributes: true,
  parseTagValue: false, // every value stays a string until validated
  trimValues: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
  processEntities: true,
  htmlEntities: false,
  // jpath is a string unless jPath: false is set; String() keeps the types honest either way
  isArray: (name, jpath) => {
    const path = String(jpath);
    return (
      path === 'VNET_POOL.VNET' || (name === 'AR' && path.endsWith('AR_POOL.AR')) || (name === 'LEASE' && path.endsWith('LEASES.LEASE'))
    );
  },
});

type XmlNode = Record<string, unknown>;

function parseXml(xml: string, source: string): XmlNode {
  if (Buffer.byteLength(xml, 'utf8') > MAX_XML_BYTES) {
    throw badRequest(`${source}: larger than ${MAX_XML_BYTES} bytes, not onevnet output`);
  }
  if (xml.trim() === '') throw badRequest(`${source}: empty, expected the XML of onevnet list -x or onevnet show -x`);
  const valid = XMLValidator.validate(xml);
  if (valid !== true) {
    throw badRequest(`${source}: malformed XML at line ${valid.err.line}: ${valid.err.msg} (truncated output?)`);
  }
  return parser.parse(xml) as XmlNode;
}

// Text of a scalar element: fast-xml-parser gives '' for <X/>, a string for text or CDATA.
function scalar(node: XmlNode, key: string): string | undefined {
  const v = node[key];
  if (v === undefined || v === '') return undefined;
  if (typeof v !== 'string') return undefined;
  return v;
}

function integer(text: string | undefined, what: string, source: string, min = 0): number | undefined {
  if (text === undefined) return undefined;
  if (!/^-?[0-9]{1,12}$/.test(text) || Number(text) < min) {
    throw badRequest(`${source}: ${what} "${text.slice(0, 40)}" is not an integer of at least ${min}`);
  }
  return Number(text);
}

function requiredInteger(node: XmlNode, key: string, what: string, source: string, min = 0): number {
  const n = integer(scalar(node, key), what, source, min);
  if (n === undefined) throw badRequest(`${source}: ${what} has no ${key}`);
  return n;
}

function readLease(node: unknown, where: string, source: string): OnedLease {
  if (typeof node !== 'object' || node === null) throw badRequest(`${source}: ${where} is empty`);
  const lease = node as XmlNode;
  const owners = (['VM', 'VNET', 'VROUTER'] as const).filter((k) => scalar(lease, k) !== undefined);
  if (owners.length !== 1) {
    throw badRequest(
      `${source}: ${where} names ${owners.length === 0 ? 'no owner' : owners.join(' and ')}; oned writes exactly one of VM, VNET, VROUTER`,
    );
  }
  const kind = owners[0]!;
  const id = integer(scalar(lease, kind), `${where} ${kind}`, source, kind === 'VM' ? -1 : 0)!;
  const mac = scalar(lease, 'MAC');
  if (mac === undefined) throw badRequest(`${source}: ${where} has no MAC`);
  const ip = scalar(lease, 'IP');
  const ip6 = scalar(lease, 'IP6') ?? scalar(lease, 'IP6_GLOBAL') ?? scalar(lease, 'IP6_ULA');
  return { mac, owner: { kind, id }, ...(ip !== undefined && { ip }), ...(ip6 !== undefined && { ip6 }) };
}

function readAddressRange(node: unknown, network: string, withLeases: boolean, source: string): OnedAddressRange {
  if (typeof node !== 'object' || node === null) throw badRequest(`${source}: an AR of ${network} is empty`);
  const ar = node as XmlNode;
  const arId = requiredInteger(ar, 'AR_ID', `an AR of ${network}`, source);
  const where = `AR ${arId} of ${network}`;
  const type = scalar(ar, 'TYPE');
  if (type === undefined) throw badRequest(`${source}: ${where} has no TYPE`);
  const attributes: Record<string, string> = {};
  for (const [k, v] of Object.entries(ar)) if (typeof v === 'string') attributes[k] = v;
  const ipamMad = scalar(ar, 'IPAM_MAD');
  const pgipamRangeId = integer(scalar(ar, 'PGIPAM_RANGE_ID'), `${where} PGIPAM_RANGE_ID`, source, 1);
  const parentArId = integer(scalar(ar, 'PARENT_NETWORK_AR_ID'), `${where} PARENT_NETWORK_AR_ID`, source);
  let leases: OnedLease[] | undefined;
  if (withLeases) {
    const container = ar['LEASES'];
    const list = typeof container === 'object' && container !== null ? (container as XmlNode)['LEASE'] : undefined;
    leases = Array.isArray(list) ? list.map((l, i) => readLease(l, `lease ${i + 1} of ${where}`, source)) : [];
    const used = integer(scalar(ar, 'USED_LEASES'), `${where} USED_LEASES`, source);
    // oned counts what it lists; a difference means the file was cut or edited
    if (used !== undefined && used !== leases.length) {
      throw badRequest(`${source}: ${where} says USED_LEASES ${used} but lists ${leases.length} leases`);
    }
  }
  return {
    arId,
    type,
    size: requiredInteger(ar, 'SIZE', where, source, 1),
    attributes,
    ...(ipamMad !== undefined && { ipamMad }),
    ...(pgipamRangeId !== undefined && { pgipamRangeId }),
    ...(parentArId !== undefined && { parentArId }),
    ...(leases !== undefined && { leases }),
  };
}

function readNetwork(node: unknown, withLeases: boolean, source: string): OnedNetwork {
  if (typeof node !== 'object' || node === null) throw badRequest(`${source}: a VNET is empty`);
  const vnet = node as XmlNode;
  const id = requiredInteger(vnet, 'ID', 'a VNET', source);
  const name = scalar(vnet, 'NAME') ?? '';
  const label = `network ${id}${name ? ` (${name})` : ''}`;
  const pool = vnet['AR_POOL'];
  const ars = typeof pool === 'object' && pool !== null ? (pool as XmlNode)['AR'] : undefined;
  const addressRanges = Array.isArray(ars) ? ars.map((a) => readAddressRange(a, label, withLeases, source)) : [];
  const seen = new Set<number>();
  for (const ar of addressRanges) {
    if (seen.has(ar.arId)) throw badRequest(`${source}: ${label} lists AR ${ar.arId} twice`);
    seen.add(ar.arId);
  }
  const parentNetworkId = integer(scalar(vnet, 'PARENT_NETWORK_ID'), `${label} PARENT_NETWORK_ID`, source);
  return {
    id,
    name,
    addressRanges,
    withLeases,
    ...(parentNetworkId !== undefined && { parentNetworkId }),
  };
}

// `onevnet show -x <id>`: one network, its ARs and their leases.
export function parseOnevnetShow(xml: string, source: string): OnedNetwork {
  const doc = parseXml(xml, source);
  if (!('VNET' in doc)) throw badRequest(`${source}: not the output of onevnet show -x (no VNET element at the top)`);
  return readNetwork(doc['VNET'], true, source);
}

// `onevnet list -x`: every network the user may see, ARs without their leases.
export function parseOnevnetList(xml: string, source: string): OnedNetwork[] {
  const doc = parseXml(xml, source);
  if (!('VNET_POOL' in doc)) throw badRequest(`${source}: not the output of onevnet list -x (no VNET_POOL element at the top)`);
  const pool = doc['VNET_POOL'];
  const vnets = typeof pool === 'object' && pool !== null ? (pool as XmlNode)['VNET'] : undefined;
  const networks = Array.isArray(vnets) ? vnets.map((v) => readNetwork(v, false, source)) : [];
  const seen = new Set<number>();
  for (const n of networks) {
    if (seen.has(n.id)) throw badRequest(`${source}: lists network ${n.id} twice`);
    seen.add(n.id);
  }
  return networks;
}
