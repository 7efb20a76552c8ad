// The one rule for what an attribute value may hold to reach oned intact through a template reply
// (template_parser.l / template_syntax.y): used for every AR attribute pgipam echoes or adds,
// pool attributes, and the reasons operators give for reservations.
//   * no "]]>": oned's template lexer aborts on it;
//   * no newline or other control character: a value spanning lines would need the parser to
//     accept it, and stderr lines must stay one line;
//   * no trailing backslash: it would escape the closing quote.
// Double quotes are fine: the renderer writes them as \" and oned reads them back.
import { IpamError } from './errors';

export function templateValueProblem(value: string): string | null {
  if (value.includes(']]>')) return 'contains "]]>", which OpenNebula templates cannot hold';
  if (/[\x00-\x08\x0a-\x1f\x7f]/.test(value)) return 'contains a newline or control character';
  if (value.endsWith('\\')) return 'ends with a backslash, which OpenNebula templates cannot hold';
  return null;
}

// what: how the error line names the value ("attribute DNS", "--reason").
export function checkTemplateValue(key: string, value: string, what = `attribute ${key}`): void {
  if (!/^[A-Z_][A-Z0-9_]*$/.test(key)) throw new IpamError('BAD_REQUEST', `attribute name ${key} is not valid in an OpenNebula template`);
  const problem = templateValueProblem(value);
  if (problem) throw new IpamError('BAD_REQUEST', `${what} ${problem}`);
}
