// Files an operator command writes on the front-end: whole or not at all, with the mode and owner
// they must have.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export interface UnixUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

// A local user from /etc/passwd (Node has no getpwnam); null when there is none.
export function lookupUser(name: string, passwd = '/etc/passwd'): UnixUser | null {
  let text: string;
  try {
    text = fs.readFileSync(passwd, 'utf8');
  } catch {
    return null;
  }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f.length >= 7) return { name, uid: Number(f[2]), gid: Number(f[3]), home: f[5]! };
  }
  return null;
}

// Writes a temporary file beside the target and renames it into place: a reader (oned starting an
// action, node_exporter reading metrics) sees the old file or the new one, never half of one.
export function writeFileAtomic(file: string, content: string | Buffer, mode: number, owner?: { uid: number; gid: number }): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${crypto.randomBytes(6).toString('hex')}.tmp`);
  try {
    fs.writeFileSync(tmp, content, { mode });
    fs.chmodSync(tmp, mode);
    if (owner && (process.getuid?.() ?? 1) === 0) fs.chownSync(tmp, owner.uid, owner.gid);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}
