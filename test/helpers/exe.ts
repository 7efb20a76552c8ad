// Runs the built action executables exactly as one_ipam.rb does: `<action> <id>`, base64 on stdin.
import path from 'node:path';
import { execa } from 'execa';
import { reasonLines } from '../../src/errors';

export const ROOT = path.resolve(__dirname, '../..');
export const REMOTES = path.join(ROOT, 'remotes/ipam/pgipam');

export interface Run {
  exitCode: number;
  stdout: string;
  stderr: string;
  // stderr without the INFO:/WARN:/DEBUG: log lines, i.e. what oned shows the user on failure
  reason: string;
  ms: number;
}

export async function runAction(action: string, input: string, env: Record<string, string>, args: string[] = ['7']): Promise<Run> {
  const started = Date.now();
  const r = await execa(process.execPath, [path.join(REMOTES, action), ...args], {
    input,
    reject: false,
    extendEnv: false,
    env: { PATH: process.env.PATH ?? '', PGIPAM_CONFIG: '/dev/null', ...env },
    timeout: 30_000,
    stripFinalNewline: false,
  });
  const stderr = String(r.stderr);
  const reason = reasonLines(stderr).join('');
  return { exitCode: r.exitCode ?? 255, stdout: String(r.stdout), stderr, reason, ms: Date.now() - started };
}
