// The one way tests, the stress checker, the benchmark and the demo run what the build produced:
// an action as one_ipam.rb does (`<action> <request id>`, base64 on stdin, stdin closed, a
// process of its own), and the CLI as an operator does. Return what the caller would see, and for
// an action what oned would show the user (`reason`).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { reasonLines } from '../../src/errors';

// The checkout this file belongs to, whether it runs from test/support or bundled into build/.
export const ROOT = (() => {
  for (let dir = __dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg) && JSON.parse(fs.readFileSync(pkg, 'utf8')).name === 'pgipam') return dir;
  }
  throw new Error(`no pgipam checkout above ${__dirname}`);
})();
export const REMOTES = path.join(ROOT, 'remotes/ipam/pgipam');
export const CLI = path.join(ROOT, 'build/pgipam.mjs');

export interface ActionRun {
  exitCode: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  // stderr without the INFO:/WARN:/DEBUG: log lines: what oned shows the user on failure
  reason: string;
  ms: number;
}

export interface ActionRunOptions {
  // called once the process runs, with a function that SIGKILLs it (the stress checker's kills)
  onSpawn?: (kill: () => void) => void;
  // killed after this long (default 30 s): a hung action fails the test instead of stalling it
  timeoutMs?: number;
}

// env is the process's whole environment; PATH and PGIPAM_CONFIG=/dev/null (no config file) are
// added when it does not say otherwise.
export function runProcess(
  file: string,
  args: string[],
  input: string,
  env: NodeJS.ProcessEnv,
  o: ActionRunOptions,
): Promise<Omit<ActionRun, 'reason'>> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [file, ...args], {
      env: { PATH: process.env.PATH ?? '', PGIPAM_CONFIG: '/dev/null', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 30_000);
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ exitCode: code ?? 255, signal, stdout, stderr, ms: Date.now() - started });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(input);
    o.onSpawn?.(() => child.kill('SIGKILL'));
  });
}

// args: the action's arguments, oned's request id by default.
export async function runActionProcess(
  action: string,
  input: string,
  env: NodeJS.ProcessEnv,
  args: string[] = ['7'],
  o: ActionRunOptions = {},
): Promise<ActionRun> {
  const r = await runProcess(path.join(REMOTES, action), args, input, env, o);
  return { ...r, reason: reasonLines(r.stderr).join('') };
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

// The pgipam CLI; stdout and stderr as printed, final newline included.
export async function runCliProcess(args: string[], env: NodeJS.ProcessEnv, input = ''): Promise<CliRun> {
  const r = await runProcess(CLI, args, input, env, {});
  return { code: r.exitCode, stdout: r.stdout, stderr: r.stderr };
}

// The CLI with its stderr's final newline dropped, so that its one error line compares whole.
export async function runCliLine(env: NodeJS.ProcessEnv, args: string[], input = ''): Promise<CliRun> {
  const r = await runCliProcess(args, env, input);
  return { code: r.code, stdout: r.stdout, stderr: r.stderr.replace(/\n$/, '') };
}

// `pgipam serve` as an operator starts it: the bundled CLI on a free port, ready once it says it
// listens; stop() sends SIGTERM and resolves with its exit code.
export async function startServeProcess(
  env: NodeJS.ProcessEnv,
  port: number,
  args: string[] = [],
): Promise<{ url: string; stderr: () => string; stop: () => Promise<number | null> }> {
  const child = spawn(process.execPath, [CLI, 'serve', '--listen', `127.0.0.1:${port}`, ...args], {
    env: { PATH: process.env.PATH ?? '', PGIPAM_CONFIG: '/dev/null', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdout.resume();
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const deadline = Date.now() + 20_000;
  while (!/listening on/.test(stderr)) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`pgipam serve did not start: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `http://127.0.0.1:${port}`,
    stderr: () => stderr,
    stop: async () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}
