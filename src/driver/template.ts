// The one renderer of OpenNebula template syntax for replies (template_parser.l / template_syntax.y):
//   NAME = [ KEY = "value", ... ]
// Inside a quoted value the only escape is \" ; a backslash before any other character is literal.
import { IpamError } from '../errors';

export type TemplateValues = Record<string, string>;

export function checkTemplateValue(key: string, value: string): void {
  if (!/^[A-Z_][A-Z0-9_]*$/.test(key)) throw new IpamError('BAD_REQUEST', `attribute name ${key} is not valid in an OpenNebula template`);
  // Reasons, in order: oned's template lexer aborts on ]]>; a value spanning lines would need the
  // parser to accept it; a trailing backslash would escape the closing quote.
  if (value.includes(']]>')) throw new IpamError('BAD_REQUEST', `attribute ${key} contains "]]>", which OpenNebula templates cannot hold`);
  if (/[\x00-\x08\x0a-\x1f\x7f]/.test(value)) throw new IpamError('BAD_REQUEST', `attribute ${key} contains a newline or control character`);
  if (value.endsWith('\\')) throw new IpamError('BAD_REQUEST', `attribute ${key} ends with a backslash, which OpenNebula templates cannot hold`);
}

export function quote(value: string): string {
  return '"' + value.replace(/"/g, '\\"') + '"';
}

export function renderTemplate(name: string, values: TemplateValues): string {
  const lines: string[] = [];
  for (const [key, value] of Object.entries(values)) {
    checkTemplateValue(key, value);
    lines.push(`  ${key} = ${quote(value)}`);
  }
  return `${name} = [\n${lines.join(',\n')}\n]\n`;
}

// Parses our own template output back (tests, the demo, the stress checker). Understands only what
// renderTemplate writes plus unquoted tokens, which is what oned's parser reads here.
export function parseTemplate(text: string): { name: string; values: TemplateValues } {
  const m = /^\s*([A-Z_][A-Z0-9_]*)\s*=\s*\[([\s\S]*)\]\s*$/.exec(text);
  if (!m) throw new Error(`not a template vector: ${text.slice(0, 80)}`);
  const values: TemplateValues = {};
  const body = m[2]!;
  const re = /\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?:"((?:\\"|[^"])*)"|([^\s,=#\[\]"]+))\s*(,|$)/gy;
  let match: RegExpExecArray | null;
  let last = 0;
  while ((match = re.exec(body)) !== null) {
    const key = match[1]!.toUpperCase();
    if (!(key in values)) values[key] = match[2] !== undefined ? match[2].replace(/\\"/g, '"') : match[3]!;
    last = re.lastIndex;
    if (match[4] === '') break;
  }
  if (body.slice(last).trim() !== '') throw new Error(`unparsed template text: ${body.slice(last, last + 40)}`);
  return { name: m[1]!, values };
}
