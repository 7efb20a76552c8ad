// Names of address spaces, pools and platforms: the same rules as the CHECK constraints in the
// migrations, checked early so a bad name gets a clear line instead of a constraint violation.
import { IpamError, type IpamErrorCode } from './errors';

export const OBJECT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}$/; // spaces and pools
export const PLATFORM_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

export function checkName(what: string, value: string, code: IpamErrorCode = 'BAD_REQUEST'): string {
  const platform = /platform/.test(what);
  if (!(platform ? PLATFORM_NAME : OBJECT_NAME).test(value)) {
    throw new IpamError(
      code,
      `${what} "${value}" must be 1-63 letters, digits, '.', '_'${platform ? '' : ", ':'"} or '-', starting with a letter or digit`,
    );
  }
  return value;
}
