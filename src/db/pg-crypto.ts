// node-postgres's crypto helpers (pg/lib/crypto/utils.js), as the action bundles get them
// (build/build.mjs puts this file in its place): the same functions, but node:crypto is loaded
// when a login first needs it, not when pg is loaded, and through Node's synchronous hashes
// instead of WebCrypto, whose setup alone costs an action process milliseconds. A connection
// that logs in without a password (Unix-socket peer, trust, a client certificate) never loads
// it; SCRAM's work is the same either way. The admin CLI and the tests use pg's own file.
import type * as NodeCrypto from 'node:crypto';

let loaded: typeof NodeCrypto | undefined;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const crypto = (): typeof NodeCrypto => (loaded ??= require('node:crypto') as typeof NodeCrypto);

const arrayBuffer = (b: Buffer): ArrayBuffer => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
const bytes = (d: ArrayBuffer | Uint8Array | string): Buffer =>
  typeof d === 'string'
    ? Buffer.from(d, 'utf8')
    : d instanceof Uint8Array
      ? Buffer.from(d.buffer, d.byteOffset, d.byteLength)
      : Buffer.from(d);

export function randomBytes(length: number): Buffer {
  return crypto().randomBytes(length);
}

export async function md5(text: string | Buffer): Promise<string> {
  return crypto().createHash('md5').update(text).digest('hex');
}

export async function postgresMd5PasswordHash(user: string, password: string, salt: Buffer): Promise<string> {
  const inner = await md5(password + user);
  return 'md5' + (await md5(Buffer.concat([Buffer.from(inner), salt])));
}

export async function sha256(data: ArrayBuffer | Uint8Array): Promise<ArrayBuffer> {
  return arrayBuffer(crypto().createHash('sha256').update(bytes(data)).digest());
}

// WebCrypto names ("SHA-256", as pg's certificate code gives them) as node:crypto's ("sha256").
export async function hashByName(hashName: string, data: ArrayBuffer | Uint8Array): Promise<ArrayBuffer> {
  return arrayBuffer(crypto().createHash(hashName.toLowerCase().replace(/-/g, '')).update(bytes(data)).digest());
}

export async function hmacSha256(key: ArrayBuffer | Uint8Array, msg: string): Promise<ArrayBuffer> {
  return arrayBuffer(crypto().createHmac('sha256', bytes(key)).update(msg, 'utf8').digest());
}

export async function deriveKey(password: string, salt: Uint8Array, iterations: number): Promise<ArrayBuffer> {
  return arrayBuffer(crypto().pbkdf2Sync(Buffer.from(password, 'utf8'), bytes(salt), iterations, 32, 'sha256'));
}
