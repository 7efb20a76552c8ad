// A request's AR and ADDRESS turned into typed values once, at the allocator's boundary: which
// range the AR names and what it says about it, which address or block the ADDRESS asks for and
// in which form. The operations work on these; the strings are not parsed again.
//
// A field is parsed the first time it is used and remembered, so a malformed field that a request
// does not need (an IP6 in the AR of an IPv4 range named by PGIPAM_RANGE_ID) is never refused,
// and one that is needed is refused with the line that names it.
import { parseCount, parseIPv4, parseIPv6, parseMac, MAX_AR_SIZE } from '../address';
import { badRequest } from '../errors';
import type { IpamRequest } from '../ipam-request';
import { checkName } from '../names';
import { type ArType, parseArType } from './range-spec';
import { DEFAULT_SPACE } from './range-queries';

// A value of the request as sent (`text`) and as parsed (`value()`, which throws the field's
// one-line refusal when it does not parse).
export class Field<T> {
  private parsed: { ok: true; v: T } | { ok: false; e: unknown } | undefined;
  constructor(
    readonly text: string,
    private readonly parse: (text: string) => T,
  ) {}
  value(): T {
    if (!this.parsed) {
      try {
        this.parsed = { ok: true, v: this.parse(this.text) };
      } catch (e) {
        this.parsed = { ok: false, e };
      }
    }
    if (!this.parsed.ok) throw this.parsed.e;
    return this.parsed.v;
  }
  // the value, or null when the text is not one (oned 7.5.80 sends IP6 = "0")
  valueOrNull(): T | null {
    try {
      return this.value();
    } catch {
      return null;
    }
  }
}

const field = <T>(text: string | undefined, parse: (text: string) => T): Field<T> | null =>
  text === undefined ? null : new Field(text, parse);

// What the AR of a get, allocate, free or unregister request says.
export interface ArReference {
  rangeId: Field<number> | null;
  type: Field<ArType> | null;
  space: Field<string>;
  spaceGiven: boolean;
  ip4: Field<number> | null;
  ip6: Field<bigint> | null;
  mac: Field<number> | null;
  // SIZE as oned has it now (onevnet updatear changes it without telling the driver)
  size: number | null;
  // SLAAC prefixes, as their first 64 bits (all oned uses of them)
  prefixes: Partial<Record<'GLOBAL_PREFIX' | 'ULA_PREFIX', Field<bigint>>>;
}

// What the ADDRESS of an allocate or free request names, and how many addresses it asks for.
export interface AddressAsk {
  count: Field<number>;
  ip4: Field<number> | null;
  ip6: Field<bigint> | null;
  mac: Field<number> | null;
}

export interface ParsedRequest {
  ar: ArReference;
  address: AddressAsk;
}

export function parseRequest(req: IpamRequest): ParsedRequest {
  const { ar, address } = req;
  const prefixes: ArReference['prefixes'] = {};
  for (const key of ['GLOBAL_PREFIX', 'ULA_PREFIX'] as const) {
    const f = field(ar[key], (t) => parseIPv6(t, `AR ${key}`) >> 64n);
    if (f) prefixes[key] = f;
  }
  return {
    ar: {
      rangeId: field(ar.PGIPAM_RANGE_ID, (t) => {
        if (!/^\d{1,15}$/.test(t)) throw badRequest(`AR PGIPAM_RANGE_ID "${t}" is not a range id`);
        return Number(t);
      }),
      type: field(ar.TYPE, parseArType),
      space: new Field(ar.PGIPAM_SPACE ?? DEFAULT_SPACE, (t) => checkName('AR PGIPAM_SPACE', t)),
      spaceGiven: ar.PGIPAM_SPACE !== undefined,
      ip4: field(ar.IP, (t) => parseIPv4(t, 'AR IP')),
      ip6: field(ar.IP6, (t) => parseIPv6(t, 'AR IP6')),
      mac: field(ar.MAC, (t) => parseMac(t, 'AR MAC')),
      size: ar.SIZE !== undefined && /^\d{1,10}$/.test(ar.SIZE) ? Number(ar.SIZE) : null,
      prefixes,
    },
    address: {
      count: new Field(address.SIZE ?? '1', (t) => parseCount(t, 'ADDRESS SIZE', 1, MAX_AR_SIZE)),
      ip4: field(address.IP, (t) => parseIPv4(t, 'ADDRESS IP')),
      ip6: field(address.IP6, (t) => parseIPv6(t, 'ADDRESS IP6')),
      mac: field(address.MAC, (t) => parseMac(t, 'ADDRESS MAC')),
    },
  };
}
