// The attribute sets of an AR, each defined once.

// Attributes oned computes or maintains itself (AddressRange::from_attr, AddressRange::to_xml):
// pgipam never echoes them in a register reply (oned would store stale copies) and so never
// checks them either.
export const ONED_COMPUTED_ATTRIBUTES: ReadonlySet<string> = new Set([
  'AR_ID',
  'ALLOCATED',
  'USED_LEASES',
  'LEASES',
  'NEXT_INDEX',
  'MAC_END',
  'IP_END',
  'IP6_END',
  'IP6_ULA',
  'IP6_ULA_END',
  'IP6_GLOBAL',
  'IP6_GLOBAL_END',
  'PARENT_NETWORK_AR_ID',
  'PARENT_NETWORK',
]);

// Attributes pgipam itself sets in a register reply: a pool's extra attributes may not name them.
export const PGIPAM_SET_ATTRIBUTES: ReadonlySet<string> = new Set([
  'IP',
  'IP6',
  'SIZE',
  'TYPE',
  'MAC',
  'IPAM_MAD',
  'PREFIX_LENGTH',
  'NETWORK_ADDRESS',
  'NETWORK_MASK',
  'GATEWAY',
  'GLOBAL_PREFIX',
  'ULA_PREFIX',
  'PGIPAM_RANGE_ID',
  'PGIPAM_POOL',
  'PGIPAM_SPACE',
  'PGIPAM_SUBNET',
  'AR_ID',
]);
