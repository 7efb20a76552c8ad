// The one renderer of OpenNebula template syntax for replies (template_parser.l / template_syntax.y):
//   NAME = [ KEY = "value", ... ]
// Inside a quoted value the only escape is \" ; a backslash before any other character is literal.
import { checkTemplateValue } from '../template-value';

export type TemplateValues = Record<string, string>;

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
  const re = /\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?:"((?:\\"|[^"])*)"|([^\s,=#[\]"]+))\s*(,|$)/gy;
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
