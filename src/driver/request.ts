// Decoding of what oned hands an action: base64 of <IPAM_DRIVER_ACTION_DATA><AR/><ADDRESS/>, on stdin
// since OpenNebula 5.10 (argv[1] is then the request id), as argv[1] in 5.4-5.8 (argv[2] optional
// id), or raw XML on stdin for people debugging by hand.
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { IpamError } from '../errors';

export const MAX_INPUT_BYTES = 4 * 1024 * 1024;
const MAX_DEPTH = 4; // IPAM_DRIVER_ACTION_DATA > AR > KEY > text is all oned ever sends

export interface ActionRequest {
  // AR attributes, keys upper-cased, values trimmed strings (CDATA unwrapped).
  ar: Record<string, string>;
  // ADDRESS attributes; empty elements (register/unregister) are dropped.
  address: Record<string, string>;
}

function bad(message: string): IpamError {
  return new IpamError('BAD_REQUEST', message);
}

// Turns the raw payload (base64 or XML text) into XML text.
export function decodePayload(payload: string): string {
  if (payload.length > MAX_INPUT_BYTES) throw bad(`request is larger than ${MAX_INPUT_BYTES} bytes`);
  const trimmed = payload.trim();
  if (trimmed === '') throw bad('empty request: expected base64-encoded IPAM_DRIVER_ACTION_DATA XML on stdin');
  if (trimmed.startsWith('<')) return trimmed;
  const compact = trimmed.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 !== 0) {
    throw bad('request is neither base64 nor XML: expected base64-encoded IPAM_DRIVER_ACTION_DATA XML');
  }
  const bytes = Buffer.from(compact, 'base64');
  const xml = bytes.toString('utf8');
  if (Buffer.byteLength(xml, 'utf8') !== bytes.length) throw bad('decoded request is not valid UTF-8');
  if (!xml.trimStart().startsWith('<')) throw bad('decoded request is not XML');
  return xml.trim();
}

const parser = new XMLParser({
  ignoreAttributes: true,
  parseTagValue: false, // every value stays a string until validated
  parseAttributeValue: false,
  processEntities: false, // no entity expansion of any kind
  htmlEntities: false,
  trimValues: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
  commentPropName: false,
});

// Parses the XML text into AR and ADDRESS maps, refusing anything oned would never send.
export function parseActionXml(xml: string): ActionRequest {
  if (xml.includes('\0')) throw bad('request contains a NUL byte');
  // oned never sends a DTD; refusing it up front rules out entity expansion and external entities.
  if (/<!DOCTYPE|<!ENTITY/i.test(xml)) throw bad('request XML contains a DOCTYPE or ENTITY declaration, which is not accepted');
  let depth = 0;
  for (const m of xml.matchAll(/<(\/?)([A-Za-z_][\w.-]*)[^>]*?(\/?)>|<!\[CDATA\[[\s\S]*?\]\]>/g)) {
    if (m[2] === undefined) continue; // CDATA section
    if (m[1] === '/') depth--;
    else if (m[3] !== '/') depth++;
    if (depth > MAX_DEPTH) throw bad(`request XML is nested deeper than ${MAX_DEPTH} levels`);
  }
  const valid = XMLValidator.validate(xml);
  if (valid !== true) throw bad(`request is not well-formed XML: ${valid.err.msg} (line ${valid.err.line})`);
  let doc: Record<string, unknown>;
  try {
    doc = parser.parse(xml) as Record<string, unknown>;
  } catch (e) {
    // the parser is stricter than the validator in places (e.g. a stray "<!")
    throw bad(`request is not well-formed XML: ${(e as Error).message.split('\n')[0]!.slice(0, 120)}`);
  }
  const rootNames = Object.keys(doc);
  if (rootNames.length !== 1 || rootNames[0] !== 'IPAM_DRIVER_ACTION_DATA') {
    throw bad('request root element must be IPAM_DRIVER_ACTION_DATA');
  }
  const root = doc.IPAM_DRIVER_ACTION_DATA;
  if (root === '' || root === undefined) throw bad('request has no AR element');
  if (typeof root !== 'object' || root === null || Array.isArray(root)) throw bad('IPAM_DRIVER_ACTION_DATA must contain AR and ADDRESS elements');
  const r = root as Record<string, unknown>;
  for (const k of Object.keys(r)) {
    if (k !== 'AR' && k !== 'ADDRESS') throw bad(`unexpected element IPAM_DRIVER_ACTION_DATA/${k}`);
  }
  if (r.AR === undefined) throw bad('request has no AR element');
  return { ar: leafMap(r.AR, 'AR'), address: r.ADDRESS === undefined ? {} : leafMap(r.ADDRESS, 'ADDRESS') };
}

function leafMap(node: unknown, name: string): Record<string, string> {
  if (Array.isArray(node)) throw bad(`request has more than one ${name} element`);
  if (node === '') return {};
  if (typeof node !== 'object' || node === null) throw bad(`${name} must contain attribute elements, not text`);
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(node as Record<string, unknown>)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,127}$/.test(key)) throw bad(`${name} has an attribute with an invalid name: ${key.slice(0, 40)}`);
    const upper = key.toUpperCase();
    if (Array.isArray(value)) throw bad(`${name}/${upper} appears more than once`);
    if (typeof value !== 'string') throw bad(`${name}/${upper} must be a text value`);
    if (upper in out) throw bad(`${name}/${upper} appears more than once`);
    if (value === '') continue; // oned drops empty attributes; register's <ADDRESS> is all empty tags
    out[upper] = value;
  }
  return out;
}

// Decides where the payload is and returns it with the request id used in log lines.
//   argv: the action's own arguments (process.argv.slice(2)).
//   readStdin: reads stdin to EOF (not called when the payload is in argv or stdin is a terminal).
export async function readActionInput(
  argv: string[],
  readStdin: () => Promise<string>,
  stdinIsTty: boolean,
): Promise<{ payload: string; requestId: string }> {
  const [first, second] = argv;
  if (first !== undefined && first !== '' && !/^-?\d+$/.test(first)) {
    // OpenNebula 5.4-5.8: $1 is the base64 payload, $2 (5.2 only) the request id.
    return { payload: first, requestId: second && /^\d+$/.test(second) ? second : '-' };
  }
  const requestId = first && /^-?\d+$/.test(first) ? first : '-';
  if (stdinIsTty) throw bad('no request: pipe base64-encoded IPAM_DRIVER_ACTION_DATA XML into stdin (see --help)');
  return { payload: await readStdin(), requestId };
}

export async function readStream(stream: NodeJS.ReadableStream, limit = MAX_INPUT_BYTES): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    total += buf.length;
    if (total > limit) throw bad(`request is larger than ${limit} bytes`);
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString('utf8');
}
