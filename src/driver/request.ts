// Decoding of what oned hands an action: base64 of <IPAM_DRIVER_ACTION_DATA><AR/><ADDRESS/>, on stdin
// since OpenNebula 5.10 (argv[1] is then the request id), as argv[1] in 5.4-5.8 (argv[2] optional
// id), or raw XML on stdin for people debugging by hand.
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import fs from 'node:fs';
import { badRequest } from '../errors';
import type { IpamRequest } from '../ipam-request';
export type { IpamRequest };

export const MAX_INPUT_BYTES = 4 * 1024 * 1024;
const MAX_DEPTH = 4; // IPAM_DRIVER_ACTION_DATA > AR > KEY > text is all oned ever sends
const CDATA = '#cdata';

// Turns the raw payload (base64 or XML text) into XML text.
export function decodePayload(payload: string): string {
  if (payload.length > MAX_INPUT_BYTES) throw badRequest(`request is larger than ${MAX_INPUT_BYTES} bytes`);
  const trimmed = payload.trim();
  if (trimmed === '') throw badRequest('empty request: expected base64-encoded IPAM_DRIVER_ACTION_DATA XML on stdin');
  if (trimmed.startsWith('<')) return trimmed;
  const compact = trimmed.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 !== 0) {
    throw badRequest('request is neither base64 nor XML: expected base64-encoded IPAM_DRIVER_ACTION_DATA XML');
  }
  const bytes = Buffer.from(compact, 'base64');
  const xml = bytes.toString('utf8');
  if (Buffer.byteLength(xml, 'utf8') !== bytes.length) throw badRequest('decoded request is not valid UTF-8');
  if (!xml.trimStart().startsWith('<')) throw badRequest('decoded request is not XML');
  return xml.trim();
}

// Ordered output keeps text and CDATA apart: oned wraps every stored value in CDATA (taken as
// is), while people and other tools write XML's predefined entities in plain text (decoded).
const parser = new XMLParser({
  ignoreAttributes: true,
  parseTagValue: false, // every value stays a string until validated
  parseAttributeValue: false,
  processEntities: false, // entities are decoded below, in text only, the five predefined and &#n;
  htmlEntities: false,
  trimValues: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  commentPropName: false,
  preserveOrder: true,
  cdataPropName: CDATA,
});

type Node = Record<string, unknown>;

const PREDEFINED: Record<string, string> = { lt: '<', gt: '>', amp: '&', apos: "'", quot: '"' };

// Decodes XML's predefined entities and numeric character references in a text node; any other
// reference would need a DTD, which is refused.
export function decodeXmlText(text: string, where: string): string {
  return text.replace(/&([^;&\s]{0,12});/g, (ref, name: string) => {
    if (name in PREDEFINED) return PREDEFINED[name]!;
    const m = /^#(?:x([0-9A-Fa-f]{1,6})|([0-9]{1,7}))$/.exec(name);
    const code = m ? (m[1] !== undefined ? parseInt(m[1], 16) : Number(m[2])) : NaN;
    if (!m || code === 0 || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) {
      throw badRequest(`${where} contains ${ref.slice(0, 20)}, which is not a character XML allows without a DTD`);
    }
    return String.fromCodePoint(code);
  });
}

function children(node: Node, name: string): Node[] {
  return node[name] as Node[];
}

function elementName(node: Node): string | undefined {
  return Object.keys(node).find((k) => k !== ':@');
}

// Parses the XML text into AR and ADDRESS maps, refusing anything oned would never send.
export function parseActionXml(xml: string): IpamRequest {
  if (xml.includes('\0')) throw badRequest('request contains a NUL byte');
  // oned never sends a DTD; refusing it up front rules out entity expansion and external entities.
  if (/<!DOCTYPE|<!ENTITY/i.test(xml)) throw badRequest('request XML contains a DOCTYPE or ENTITY declaration, which is not accepted');
  let depth = 0;
  for (const m of xml.matchAll(/<(\/?)([A-Za-z_][\w.-]*)[^>]*?(\/?)>|<!\[CDATA\[[\s\S]*?\]\]>/g)) {
    if (m[2] === undefined) continue; // CDATA section
    if (m[1] === '/') depth--;
    else if (m[3] !== '/') depth++;
    if (depth > MAX_DEPTH) throw badRequest(`request XML is nested deeper than ${MAX_DEPTH} levels`);
  }
  const valid = XMLValidator.validate(xml);
  if (valid !== true) throw badRequest(`request is not well-formed XML: ${valid.err.msg} (line ${valid.err.line})`);
  let doc: Node[];
  try {
    doc = parser.parse(xml) as Node[];
  } catch (e) {
    // the parser is stricter than the validator in places (e.g. a stray "<!")
    throw badRequest(`request is not well-formed XML: ${(e as Error).message.split('\n')[0]!.slice(0, 120)}`);
  }
  const roots = doc.filter((n) => !isBlankText(n));
  if (roots.length !== 1 || elementName(roots[0]!) !== 'IPAM_DRIVER_ACTION_DATA') {
    throw badRequest('request root element must be IPAM_DRIVER_ACTION_DATA');
  }
  const parts: Partial<Record<'AR' | 'ADDRESS', Node[]>> = {};
  for (const n of children(roots[0]!, 'IPAM_DRIVER_ACTION_DATA')) {
    if (isBlankText(n)) continue;
    const k = elementName(n);
    if (k === '#text' || k === CDATA) throw badRequest('IPAM_DRIVER_ACTION_DATA must contain AR and ADDRESS elements, not text');
    if (k !== 'AR' && k !== 'ADDRESS') throw badRequest(`unexpected element IPAM_DRIVER_ACTION_DATA/${k}`);
    if (parts[k]) throw badRequest(`request has more than one ${k} element`);
    parts[k] = children(n, k);
  }
  if (!parts.AR) throw badRequest('request has no AR element');
  return { ar: leafMap(parts.AR, 'AR'), address: parts.ADDRESS ? leafMap(parts.ADDRESS, 'ADDRESS') : {} };
}

function isBlankText(n: Node): boolean {
  return elementName(n) === '#text' && String(n['#text']).trim() === '';
}

function leafMap(nodes: Node[], name: string): Record<string, string> {
  const out: Record<string, string> = {};
  const seen = new Set<string>();
  for (const n of nodes) {
    if (isBlankText(n)) continue;
    const key = elementName(n)!;
    if (key === '#text' || key === CDATA) throw badRequest(`${name} must contain attribute elements, not text`);
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,127}$/.test(key)) throw badRequest(`${name} has an attribute with an invalid name: ${key.slice(0, 40)}`);
    const upper = key.toUpperCase();
    if (seen.has(upper)) throw badRequest(`${name}/${upper} appears more than once`);
    seen.add(upper);
    const value = textOf(children(n, key), `${name}/${upper}`).trim();
    if (value === '') continue; // oned drops empty attributes; register's <ADDRESS> is all empty tags
    out[upper] = value;
  }
  return out;
}

// The text of a leaf element: its text nodes (entities decoded) and CDATA sections (as they are), in order.
function textOf(nodes: Node[], where: string): string {
  let text = '';
  for (const n of nodes) {
    const k = elementName(n);
    if (k === '#text') text += decodeXmlText(String(n['#text']), where);
    else if (k === CDATA)
      text += children(n, CDATA)
        .map((c) => String(c['#text'] ?? ''))
        .join('');
    else throw badRequest(`${where} must be a text value`);
  }
  return text;
}

// Decides where the payload is and returns it with the request id used in log lines.
//   argv: the action's own arguments (process.argv.slice(2)).
//   readStdin: reads stdin to EOF (not called when the payload is in argv or stdin is a terminal).
export async function readActionInput(
  argv: string[],
  readStdin: () => Promise<string>,
  stdinIsTty: () => boolean,
): Promise<{ payload: string; requestId: string }> {
  const [first, second] = argv;
  if (first !== undefined && first !== '' && !/^-?\d+$/.test(first)) {
    // OpenNebula 5.4-5.8: $1 is the base64 payload, $2 (5.2 only) the request id.
    return { payload: first, requestId: second && /^\d+$/.test(second) ? second : '-' };
  }
  const requestId = first && /^-?\d+$/.test(first) ? first : '-';
  if (stdinIsTty()) throw badRequest('no request: pipe base64-encoded IPAM_DRIVER_ACTION_DATA XML into stdin (see --help)');
  return { payload: await readStdin(), requestId };
}

export async function readStream(stream: NodeJS.ReadableStream, limit = MAX_INPUT_BYTES): Promise<string> {
  return (await readStreamBytes(stream, limit)).toString('utf8');
}

export async function readStreamBytes(stream: NodeJS.ReadableStream, limit = MAX_INPUT_BYTES): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    total += buf.length;
    if (total > limit) throw badRequest(`request is larger than ${MAX_INPUT_BYTES} bytes`);
    chunks.push(buf);
  }
  return Buffer.concat(chunks);
}

// The request as it already lies in stdin's pipe, read without waiting: oned's MAD writes the
// whole request into the action's stdin pipe and closes it, so by the time Node has started it
// is all there, and two read calls (0.3 ms) take it where process.stdin's stream costs about
// 4.5 ms. A read must never block: the watchdog must stay able to end the process when a caller
// never closes stdin. So the pipe is opened again through /proc/self/fd/0, which gives a new,
// non-blocking open file description of the same pipe (fd 0 itself is left as it is), and the
// first "nothing there yet" ends this read: the caller reads the rest from the stream. Returns
// null where this does not apply (stdin is a socket, a terminal, a file, or not there).
export function readPipedStdinNow(limit = MAX_INPUT_BYTES): { data: Buffer; complete: boolean } | null {
  let fd: number;
  try {
    if (!fs.fstatSync(0).isFIFO()) return null;
    fd = fs.openSync('/proc/self/fd/0', fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch {
    return null;
  }
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for (;;) {
      const buf = Buffer.allocUnsafe(65536);
      let n: number;
      try {
        n = fs.readSync(fd, buf, 0, buf.length, null);
      } catch (e) {
        if ((e as { code?: string }).code === 'EAGAIN') return { data: Buffer.concat(chunks), complete: false };
        throw e;
      }
      if (n === 0) return { data: Buffer.concat(chunks), complete: true };
      total += n;
      if (total > limit) throw badRequest(`request is larger than ${limit} bytes`);
      chunks.push(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
}

// Whether the process's stdin is a terminal (nobody piped a request in), without loading node:tty
// when it is a pipe, as it is under oned.
export function stdinIsTerminal(): boolean {
  try {
    if (fs.fstatSync(0).isFIFO()) return false;
  } catch {
    return false;
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('node:tty') as typeof import('node:tty')).isatty(0);
}
