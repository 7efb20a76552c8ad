// What one IPAM request from oned says, after decoding (driver/request.ts) and before the
// allocator works on it: the AR and ADDRESS attributes, keys upper-cased, values trimmed strings
// (CDATA unwrapped, XML entities in text decoded), empty attributes dropped.
export interface IpamRequest {
  ar: Record<string, string>;
  address: Record<string, string>;
}
