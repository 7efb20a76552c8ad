import { describe, expect, it } from 'vitest';
import { decodePayload, parseActionXml, readActionInput } from '../../src/driver/request';
import { parseTemplate, renderTemplate } from '../../src/driver/template';
import { toOneLine } from '../../src/errors';
import { EMPTY_ADDRESS, actionData, arXmlFormA, arXmlFormB, toBase64 } from '../support/oned-sim';

const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('request decoding', () => {
  it('reads the exact bytes oned sends for get_address (src/driver/PROTOCOL.md §4.3)', () => {
    const xml =
      '<IPAM_DRIVER_ACTION_DATA><AR><AR_ID><![CDATA[0]]></AR_ID><DNS><![CDATA[10.0.0.2 10.0.0.3]]></DNS><IP><![CDATA[10.0.0.10]]></IP><IPAM_MAD><![CDATA[netbox]]></IPAM_MAD><MAC><![CDATA[02:00:0a:00:00:0a]]></MAC><SIZE><![CDATA[100]]></SIZE><TYPE><![CDATA[IP4]]></TYPE><MAC_END><![CDATA[02:00:0a:00:00:6d]]></MAC_END><IP_END><![CDATA[10.0.0.109]]></IP_END><USED_LEASES>0</USED_LEASES></AR><ADDRESS><SIZE>1</SIZE></ADDRESS></IPAM_DRIVER_ACTION_DATA>';
    const req = parseActionXml(decodePayload(b64(xml)));
    expect(req.ar).toMatchObject({
      AR_ID: '0',
      DNS: '10.0.0.2 10.0.0.3',
      IP: '10.0.0.10',
      TYPE: 'IP4',
      USED_LEASES: '0',
      IP_END: '10.0.0.109',
    });
    expect(req.address).toEqual({ SIZE: '1' });
  });
  it('keeps values as strings, unwraps CDATA with markup inside, drops empty ADDRESS tags', () => {
    const xml = actionData(arXmlFormA({ TYPE: 'IP4', NOTE: '<b>&amp; "x"</b>', SIZE: '007' }), EMPTY_ADDRESS);
    const req = parseActionXml(decodePayload(b64(xml)));
    expect(req.ar.NOTE).toBe('<b>&amp; "x"</b>');
    expect(req.ar.SIZE).toBe('007');
    expect(req.address).toEqual({});
  });
  it('accepts form (b) with computed elements and raw XML typed by hand', () => {
    const xml = actionData(
      arXmlFormB({ TYPE: 'IP4', IP: '10.0.0.1', SIZE: '5', MAC: '02:00:0a:00:00:01' }, 3),
      '<ADDRESS><SIZE>1</SIZE></ADDRESS>',
    );
    const req = parseActionXml(decodePayload(xml));
    expect(req.ar.MAC_END).toBe('02:00:0a:00:00:05');
    expect(req.ar.USED_LEASES).toBe('3');
  });
  it('tolerates a trailing newline and wrapped base64 from people using base64(1)', () => {
    const xml = actionData(arXmlFormA({ TYPE: 'IP4' }), EMPTY_ADDRESS);
    const wrapped = b64(xml).replace(/(.{76})/g, '$1\n') + '\n';
    expect(parseActionXml(decodePayload(wrapped)).ar.TYPE).toBe('IP4');
  });
  it.each([
    ['empty input', '', /empty request/],
    ['whitespace', '  \n', /empty request/],
    ['bad base64', 'not*base64!', /neither base64 nor XML/],
    ['base64 of text', b64('hello'), /not XML/],
    ['broken XML', b64('<IPAM_DRIVER_ACTION_DATA><AR><TYPE>IP4</AR></IPAM_DRIVER_ACTION_DATA>'), /well-formed/],
    ['wrong root', b64('<FOO><AR/></FOO>'), /root element/],
    ['missing AR', b64('<IPAM_DRIVER_ACTION_DATA><ADDRESS><SIZE>1</SIZE></ADDRESS></IPAM_DRIVER_ACTION_DATA>'), /no AR/],
    [
      'duplicated AR',
      b64('<IPAM_DRIVER_ACTION_DATA><AR><TYPE>IP4</TYPE></AR><AR><TYPE>IP4</TYPE></AR></IPAM_DRIVER_ACTION_DATA>'),
      /more than one AR/,
    ],
    [
      'duplicated attribute',
      b64('<IPAM_DRIVER_ACTION_DATA><AR><IP>1.1.1.1</IP><IP>2.2.2.2</IP></AR></IPAM_DRIVER_ACTION_DATA>'),
      /AR\/IP appears more than once/,
    ],
    ['nested attribute', b64('<IPAM_DRIVER_ACTION_DATA><AR><IP><X>1</X></IP></AR></IPAM_DRIVER_ACTION_DATA>'), /text value|nested/],
    [
      'deep nesting',
      b64('<IPAM_DRIVER_ACTION_DATA>' + '<A>'.repeat(5000) + '</A>'.repeat(5000) + '</IPAM_DRIVER_ACTION_DATA>'),
      /nested deeper/,
    ],
    [
      'billion laughs',
      b64(
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><IPAM_DRIVER_ACTION_DATA><AR><TYPE>&lol2;</TYPE></AR></IPAM_DRIVER_ACTION_DATA>',
      ),
      /DOCTYPE/,
    ],
    [
      'external entity',
      b64(
        '<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><IPAM_DRIVER_ACTION_DATA><AR><TYPE>&xxe;</TYPE></AR></IPAM_DRIVER_ACTION_DATA>',
      ),
      /DOCTYPE/,
    ],
    ['NUL byte', b64('<IPAM_DRIVER_ACTION_DATA><AR><TYPE>IP4\0</TYPE></AR></IPAM_DRIVER_ACTION_DATA>'), /NUL/],
  ])('refuses %s with one clear message', (_name, input, re) => {
    expect(() => parseActionXml(decodePayload(input))).toThrow(re);
  });
  // XML written by hand (or by other tools) uses the predefined entities; oned wraps values in CDATA.
  it('decodes the five predefined entities and character references in text, never inside CDATA', () => {
    const xml =
      '<IPAM_DRIVER_ACTION_DATA><AR><A1>x&amp;y&lt;z&gt;&quot;&apos;</A1><A2>&#65;&#x42;&#xe9;</A2><A3><![CDATA[x&amp;y]]></A3><A4>&amp;lt;</A4><A5> a <![CDATA[&amp;]]> b </A5></AR></IPAM_DRIVER_ACTION_DATA>';
    const req = parseActionXml(decodePayload(b64(xml)));
    expect(req.ar).toEqual({ A1: 'x&y<z>"\'', A2: 'AB\u00e9', A3: 'x&amp;y', A4: '&lt;', A5: 'a &amp; b' });
  });
  it.each([
    ['an entity only a DTD could define', '&lol;', /&lol;/],
    ['a NUL character reference', '&#0;', /&#0;/],
    ['a surrogate', '&#xD800;', /&#xD800;/],
    ['a code point beyond Unicode', '&#x110000;', /&#x110000;/],
  ])('refuses %s in text', (_name, ref, re) => {
    expect(() =>
      parseActionXml(decodePayload(b64(`<IPAM_DRIVER_ACTION_DATA><AR><TYPE>a${ref}b</TYPE></AR></IPAM_DRIVER_ACTION_DATA>`))),
    ).toThrow(re);
  });
  it('refuses oversized input', () => {
    expect(() => decodePayload('A'.repeat(5 * 1024 * 1024))).toThrow(/larger than/);
  });
});

describe('where the request comes from', () => {
  const never = async () => {
    throw new Error('stdin must not be read');
  };
  it('reads stdin and takes $1 as the request id (OpenNebula >= 5.10)', async () => {
    expect(
      await readActionInput(
        ['42'],
        async () => 'PAYLOAD',
        () => false,
      ),
    ).toEqual({ payload: 'PAYLOAD', requestId: '42' });
  });
  it('takes $1 as the payload and $2 as the id for OpenNebula 5.2 - 5.8', async () => {
    expect(await readActionInput(['PGlw', '7'], never, () => false)).toEqual({ payload: 'PGlw', requestId: '7' });
    expect(await readActionInput(['PGlw'], never, () => false)).toEqual({ payload: 'PGlw', requestId: '-' });
  });
  it('refuses to wait on a terminal', async () => {
    await expect(readActionInput([], never, () => true)).rejects.toThrow(/pipe/);
  });
});

describe('template rendering', () => {
  it('renders one key per attribute with quotes escaped, and parses back', () => {
    const out = renderTemplate('AR', { TYPE: 'IP4', NOTE: 'say "hi" \\ ok', EMPTY: '' });
    expect(out).toBe('AR = [\n  TYPE = "IP4",\n  NOTE = "say \\"hi\\" \\ ok",\n  EMPTY = ""\n]\n');
    expect(parseTemplate(out)).toEqual({ name: 'AR', values: { TYPE: 'IP4', NOTE: 'say "hi" \\ ok', EMPTY: '' } });
  });
  it.each([
    [']]>', /\]\]>/],
    ['a\nb', /newline/],
    ['a\0b', /control/],
    ['ends\\', /backslash/],
  ])('refuses a value oned could not parse back: %j', (v, re) => {
    expect(() => renderTemplate('AR', { X: v })).toThrow(re);
  });
  it('keeps stderr reasons on one ASCII line without a log prefix', () => {
    expect(toOneLine('a\nb\r\nc')).toBe('a b c');
    expect(toOneLine('ERROR: boom')).toBe('pgipam: ERROR: boom');
    expect(toOneLine('caf\u00e9')).toBe('caf\\u00e9');
    expect(toOneLine('x'.repeat(2000)).length).toBe(1000);
  });
});

describe('oned simulator sanity', () => {
  it('base64 matches OpenSSL single-line form', () => {
    expect(toBase64('<a/>')).toBe('PGEvPg==');
  });
});
