// The one error type of pgipam. Every failure an operator or oned can see is an IpamError with a
// code that says what kind of failure it is and a message that says what to do about it.

export type IpamErrorCode =
  | 'BAD_REQUEST' // the request from oned (or a person) is malformed or inconsistent
  | 'BAD_CONFIG' // the configuration is missing, unreadable or invalid
  | 'RANGE_NOT_FOUND'
  | 'RANGE_OVERLAP'
  | 'RANGE_MISMATCH' // the AR oned sent does not describe the range pgipam holds under that id
  | 'SPACE_NOT_FOUND'
  | 'NO_FREE_ADDRESS'
  | 'ADDRESS_IN_USE'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'DB_UNAVAILABLE' // cannot reach or log in to the database
  | 'DB_SCHEMA' // schema missing or older/newer than the code
  | 'DB_TIMEOUT'
  | 'PERMISSION_DENIED'
  | 'INTERNAL';

export class IpamError extends Error {
  override name = 'IpamError';
  readonly code: IpamErrorCode;

  constructor(code: IpamErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

// The request (or a command's arguments) is malformed or inconsistent.
export function badRequest(message: string): IpamError {
  return new IpamError('BAD_REQUEST', message);
}

export function isIpamError(e: unknown, code?: IpamErrorCode): e is IpamError {
  return e instanceof IpamError && (code === undefined || e.code === code);
}

// Normalises anything thrown into an IpamError; unknown failures keep their message and become INTERNAL.
export function coerceError(e: unknown): IpamError {
  if (e instanceof IpamError) return e;
  if (e instanceof Error) return new IpamError('INTERNAL', e.message || e.name, { cause: e });
  return new IpamError('INTERNAL', String(e));
}

// What oned shows the user of a failed action's stderr: the lines that are not log lines
// (DriverExecHelper drops "ERROR: ", "INFO: ", "WARN: ", "DEBUG: " lines into oned.log).
export function reasonLines(stderr: string): string[] {
  return stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !/^(ERROR|INFO|WARN|DEBUG):\s+/.test(l));
}

// oned reads failure text from stderr through a US-ASCII regexp: a non-ASCII byte there hides the
// reason or kills the MAD (src/driver/PROTOCOL.md §14). Lines are joined without separator (§3.1), so the
// reason must be one line.
export function toOneLine(text: string, maxLength = 1000): string {
  let s = text.replace(/[\r\n\t]+/g, ' ').replace(/[\x00-\x1f\x7f]/g, '?');
  s = s.replace(/[^\x20-\x7e]/g, (ch) => '\\u' + ch.charCodeAt(0).toString(16).padStart(4, '0'));
  s = s.trim();
  // A reason that starts with a log prefix would be swallowed by the MAD as a log line.
  if (/^(ERROR|INFO|WARN|DEBUG):\s/.test(s)) s = 'pgipam: ' + s;
  if (s.length > maxLength) s = s.slice(0, maxLength - 3) + '...';
  return s || 'pgipam: unknown error';
}
