// Runs one built action executable the way one_ipam.rb does: `<action> <request id>`, base64 on
// stdin, stdin closed, its own process group; returns exit code, stdout and stderr.
import { spawn } from 'node:child_process';
import path from 'node:path';

export interface ExeResult {
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

export function remotesDir(root: string): string {
  return path.join(root, 'remotes/ipam/pgipam');
}

export function runExe(
  root: string,
  action: string,
  stdin: string,
  env: NodeJS.ProcessEnv,
  options: { requestId?: string; onSpawn?: (kill: () => void) => void } = {},
): Promise<ExeResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(remotesDir(root), action), options.requestId ?? '1'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code: code ?? 255, signal, stdout, stderr, ms: Date.now() - started }));
    child.stdin.on('error', () => {});
    child.stdin.end(stdin);
    options.onSpawn?.(() => child.kill('SIGKILL'));
  });
}
