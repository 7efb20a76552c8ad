// `pgipam install`: puts the five actions where oned runs them, writes the driver's config file,
// and says what to change in oned.conf. Safe to run again (an upgrade in place changes only what
// differs); refuses to write into a directory that holds something other than pgipam.
import fs from 'node:fs';
import path from 'node:path';
import { IpamError } from '../errors';
import { ACTION_NAMES } from '../ipam-actions';
import { PGIPAM_VERSION } from '../version';
import { type UnixUser, lookupUser, writeFileAtomic } from './files';

// Written beside the actions: what installed them (and lets a later run know the directory is pgipam's).
export const INSTALL_MARKER = '.pgipam-install';

export interface InstallOptions {
  // the installed package's remotes/ipam/pgipam (the built actions)
  source: string;
  remotes: string;
  mad: string;
  config: string;
  databaseUrl?: string;
  platform?: string;
  onedConf: string;
  force: boolean;
  dryRun: boolean;
}

export interface InstallStep {
  what: string;
  done: 'created' | 'updated' | 'unchanged' | 'would create' | 'would update';
}

export interface InstallResult {
  target: string;
  steps: InstallStep[];
  onedConf: { file: string; readable: boolean; current?: string; wanted?: string; alreadyThere?: boolean };
}

export function install(o: InstallOptions): InstallResult {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(o.mad))
    throw new IpamError('BAD_REQUEST', `--mad "${o.mad}" must be letters, digits, _ and - (it is a directory name and an IPAM_MAD value)`);
  for (const a of ACTION_NAMES) {
    if (!fs.existsSync(path.join(o.source, a)))
      throw new IpamError(
        'BAD_CONFIG',
        `${path.join(o.source, a)} is missing: this pgipam package is incomplete (run "npm run build" in a checkout)`,
      );
  }
  const ipamDir = path.join(o.remotes, 'ipam');
  if (!fs.existsSync(ipamDir))
    throw new IpamError(
      'BAD_REQUEST',
      `${ipamDir} does not exist: is OpenNebula installed here, or does --remotes name its remotes directory?`,
    );
  const target = path.join(ipamDir, o.mad);
  refuseForeignDirectory(target, o.force);
  const owner = fs.statSync(ipamDir);
  const steps: InstallStep[] = [];
  if (!fs.existsSync(target)) {
    steps.push({ what: target, done: o.dryRun ? 'would create' : 'created' });
    if (!o.dryRun) {
      fs.mkdirSync(target, { mode: 0o755 });
      if (isRoot()) fs.chownSync(target, owner.uid, owner.gid);
    }
  }
  for (const name of [...ACTION_NAMES, 'README']) {
    const from = path.join(o.source, name);
    if (!fs.existsSync(from)) continue;
    const step = copyIfChanged(from, path.join(target, name), name === 'README' ? 0o644 : 0o755, owner, o.dryRun);
    steps.push(step);
    // the V8 code cache the old action left beside itself (build/action-loader.js) is of no use now
    if (step.done === 'updated') removeCodeCaches(target, name);
  }
  steps.push(
    writeIfChanged(
      path.join(target, INSTALL_MARKER),
      `${JSON.stringify({ pgipam: PGIPAM_VERSION, mad: o.mad })}\n`,
      0o644,
      owner,
      o.dryRun,
    ),
  );
  if (o.databaseUrl !== undefined) steps.push(writeConfig(o));
  return { target, steps, onedConf: onedConfEdit(o.onedConf, o.mad) };
}

function removeCodeCaches(dir: string, action: string): void {
  for (const f of fs.readdirSync(dir)) if (f.startsWith(`.${action}.v8-`)) fs.rmSync(path.join(dir, f), { force: true });
}

const isRoot = () => (process.getuid?.() ?? 1) === 0;

// A directory that exists, holds files, and has no pgipam marker belongs to someone else.
function refuseForeignDirectory(target: string, force: boolean): void {
  if (!fs.existsSync(target) || force) return;
  if (!fs.statSync(target).isDirectory()) throw new IpamError('CONFLICT', `${target} exists and is not a directory`);
  const entries = fs.readdirSync(target);
  if (entries.length && !entries.includes(INSTALL_MARKER)) {
    throw new IpamError(
      'CONFLICT',
      `${target} holds files that pgipam did not install (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', ...' : ''}): choose another --mad, or pass --force to overwrite`,
    );
  }
}

function copyIfChanged(from: string, to: string, mode: number, owner: fs.Stats, dryRun: boolean): InstallStep {
  return writeIfChanged(to, fs.readFileSync(from), mode, owner, dryRun);
}

function writeIfChanged(
  to: string,
  content: string | Buffer,
  mode: number,
  owner: { uid: number; gid: number },
  dryRun: boolean,
): InstallStep {
  const exists = fs.existsSync(to);
  const same = exists && fs.readFileSync(to).equals(Buffer.from(content)) && (fs.statSync(to).mode & 0o777) === mode;
  if (same) return { what: to, done: 'unchanged' };
  if (!dryRun) writeFileAtomic(to, content, mode, owner);
  return { what: to, done: dryRun ? (exists ? 'would update' : 'would create') : exists ? 'updated' : 'created' };
}

// The driver's config file: 0600, owned by oneadmin where that user exists (the actions run as
// oneadmin). The password is written here and nowhere else.
function writeConfig(o: InstallOptions): InstallStep {
  const oneadmin: UnixUser | null = lookupUser('oneadmin');
  const owner = oneadmin ?? { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
  const lines = [`# pgipam driver configuration (written by pgipam install ${PGIPAM_VERSION})`, `database_url = ${o.databaseUrl}`];
  if (o.platform) lines.push(`platform = ${o.platform}`);
  const dir = path.dirname(o.config);
  if (!fs.existsSync(dir) && !o.dryRun) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o750 });
    if (isRoot()) fs.chownSync(dir, owner.uid, owner.gid);
  }
  return writeIfChanged(o.config, `${lines.join('\n')}\n`, 0o600, owner, o.dryRun);
}

// What oned.conf's IPAM_MAD needs: the MAD name in the -i list of one_ipam's ARGUMENTS.
function onedConfEdit(file: string, mad: string): InstallResult['onedConf'] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return { file, readable: false, wanted: `IPAM_MAD = [ EXECUTABLE = "one_ipam", ARGUMENTS = "-t 1 -i dummy,${mad}" ]` };
  }
  const block = /IPAM_MAD\s*=\s*\[[^\]]*?ARGUMENTS\s*=\s*"([^"]*)"[^\]]*\]/.exec(text);
  if (!block) return { file, readable: true, wanted: `IPAM_MAD = [ EXECUTABLE = "one_ipam", ARGUMENTS = "-t 1 -i dummy,${mad}" ]` };
  const current = `ARGUMENTS = "${block[1]}"`;
  const list = /(^|\s)-i\s+(\S+)/.exec(block[1]!);
  const mads = list ? list[2]!.split(',').filter(Boolean) : [];
  if (mads.includes(mad)) return { file, readable: true, current, alreadyThere: true };
  const args = list ? block[1]!.replace(/(^|\s)-i\s+(\S+)/, `$1-i ${[...mads, mad].join(',')}`) : `${block[1]} -i dummy,${mad}`.trim();
  return { file, readable: true, current, wanted: `ARGUMENTS = "${args}"`, alreadyThere: false };
}
