// npm run ha-demo: pgipam leasing through a pg_auto_failover pair (Debian's postgresql-15-auto-failover
// and pg-auto-failover-cli: a monitor and two nodes on loopback) while `pg_autoctl perform
// switchover` moves the primary. Prints leases given, failed and lost. A script, not a test.
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { parseTemplate } from '../../src/driver/template';
import { EMPTY_ADDRESS, actionData, addressXml, arXmlFormA, arXmlFormB, storedAr, toBase64 } from '../support/oned-sim';
import { runActionProcess, runCliProcess } from '../support/processes';
import { PG15_BIN as PG_BIN, RUNUSER } from '../support/replica-pair';

const PACKAGES = ['postgresql-15-auto-failover', 'pg-auto-failover-cli'];
const asRoot = (process.getuid?.() ?? 1) === 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const out = (s: string) => process.stdout.write(`${s}\n`);

function ensurePackages(): void {
  if (fs.existsSync('/usr/bin/pg_autoctl') && fs.existsSync(path.join(PG_BIN, 'postgres'))) return;
  if (!asRoot) {
    out(`ha-demo needs pg_auto_failover: sudo apt-get install ${PACKAGES.join(' ')}`);
    process.exit(2);
  }
  out(`installing ${PACKAGES.join(' ')} with apt-get`);
  execFileSync('apt-get', ['install', '-y', '-q', ...PACKAGES], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
}

function autoctlCommand(dir: string, args: string[]): string[] {
  const env = {
    XDG_CONFIG_HOME: `${dir}/config`,
    XDG_DATA_HOME: `${dir}/data`,
    XDG_RUNTIME_DIR: `${dir}/run`,
    PATH: `${PG_BIN}:/usr/bin:/bin`,
    HOME: dir,
  };
  const envArgs = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  return [...(asRoot ? [RUNUSER, '-u', 'postgres', '--'] : []), 'env', ...envArgs, 'pg_autoctl', ...args];
}

// pg_autoctl without blocking the event loop: the workers keep leasing while it runs.
function autoctlAsync(dir: string, args: string[]): Promise<void> {
  const cmd = autoctlCommand(dir, args);
  return new Promise((resolve, reject) => execFile(cmd[0]!, cmd.slice(1), (e) => (e ? reject(e) : resolve())));
}

function autoctl(dir: string, args: string[], background = false): void {
  const cmd = autoctlCommand(dir, args);
  if (background) {
    const log = fs.openSync(path.join(dir, `${args[1] ?? args[0]}-${Date.now()}.log`), 'a');
    spawnSync('bash', ['-c', `nohup "$@" >/dev/null 2>&1 &`, 'bash', ...cmd], { stdio: ['ignore', log, log] });
    return;
  }
  execFileSync(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
}

async function waitForState(url: string): Promise<void> {
  for (let i = 0; i < 120; i++) {
    const c = new pg.Client({ connectionString: url });
    try {
      await c.connect();
      const { rows } = await c.query<{ n: number }>(
        `select count(*)::int as n from pgautofailover.node where reportedstate in ('primary', 'secondary') and goalstate = reportedstate`,
      );
      if (rows[0]!.n === 2) return;
    } catch {
      // not up yet
    } finally {
      await c.end().catch(() => {});
    }
    await sleep(500);
  }
  throw new Error('the pg_auto_failover pair did not reach primary + secondary within a minute');
}

async function primaryOf(ports: number[]): Promise<pg.Client> {
  for (const p of ports) {
    const c = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${p}/pgipam` });
    await c.connect();
    if (!(await c.query<{ r: boolean }>('select pg_is_in_recovery() as r')).rows[0]!.r) return c;
    await c.end();
  }
  throw new Error('no primary after the switchover');
}

let stopWorkers = () => {};

async function main(): Promise<void> {
  ensurePackages();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgipam-ha-'));
  fs.chmodSync(dir, 0o755);
  if (asRoot) execFileSync('chown', ['postgres:postgres', dir]);
  for (const d of ['config', 'data', 'run']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  if (asRoot) execFileSync('chown', ['-R', 'postgres:postgres', dir]);
  const base = 20000 + Math.floor(Math.random() * 20000);
  const [monitorPort, port1, port2] = [base, base + 1, base + 2];
  try {
    out(`monitor on 127.0.0.1:${monitorPort}, nodes on ${port1} and ${port2} (${dir})`);
    autoctl(dir, [
      'create',
      'monitor',
      '--pgdata',
      `${dir}/monitor`,
      '--pgport',
      String(monitorPort),
      '--hostname',
      '127.0.0.1',
      '--auth',
      'trust',
      '--no-ssl',
    ]);
    autoctl(dir, ['run', '--pgdata', `${dir}/monitor`], true);
    const monitor = `postgres://autoctl_node@127.0.0.1:${monitorPort}/pg_auto_failover`;
    for (const [n, p] of [
      [1, port1],
      [2, port2],
    ] as const) {
      await sleep(n === 1 ? 3000 : 8000);
      autoctl(
        dir,
        [
          'create',
          'postgres',
          '--pgdata',
          `${dir}/node${n}`,
          '--pgport',
          String(p),
          '--hostname',
          '127.0.0.1',
          '--auth',
          'trust',
          '--no-ssl',
          '--monitor',
          monitor,
          '--run',
        ],
        true,
      );
    }
    await waitForState(`postgres://postgres@127.0.0.1:${monitorPort}/pg_auto_failover`);
    const admin = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${port1}/postgres` });
    await admin.connect();
    await admin.query('create database pgipam');
    const sync = (await admin.query<{ s: string }>(`select current_setting('synchronous_standby_names') as s`)).rows[0]!.s;
    await admin.end();
    // the URI pg_autoctl show uri prints, with the driver's user
    const url = `postgres://postgres@127.0.0.1:${port1},127.0.0.1:${port2}/pgipam?target_session_attrs=read-write&sslmode=prefer`;
    out(`pair ready: synchronous_standby_names = '${sync}'; database_url = ${url}`);
    if ((await runCliProcess(['migrate'], { PGIPAM_DATABASE_URL: url })).code !== 0) throw new Error('pgipam migrate failed');
    const env = { PGIPAM_DATABASE_URL: url, PGIPAM_ACTION_TIMEOUT_MS: '8000' };
    const reg = await runActionProcess(
      'register_address_range',
      toBase64(actionData(arXmlFormA({ IPAM_MAD: 'pgipam', TYPE: 'IP4', IP: '10.190.0.0', SIZE: '4000' }), EMPTY_ADDRESS)),
      env,
    );
    if (reg.exitCode !== 0) throw new Error(`register failed: ${reg.reason}`);
    const input = toBase64(actionData(arXmlFormB(storedAr(parseTemplate(reg.stdout).values, 0)), addressXml({ size: 1 })));
    const given: string[] = [];
    const failures: string[] = [];
    const phases = { before: 0, during: 0, after: 0 };
    let phase: keyof typeof phases = 'before';
    let running = true;
    stopWorkers = () => {
      running = false;
    };
    const worker = async () => {
      while (running) {
        const at = phase;
        const r = await runActionProcess('get_address', input, env);
        if (r.exitCode === 0) {
          given.push(parseTemplate(r.stdout).values.IP!);
          phases[at]++;
        } else failures.push(r.reason);
      }
    };
    const workers = Array.from({ length: 4 }, () => worker());
    await sleep(3000);
    phase = 'during';
    const t0 = Date.now();
    await autoctlAsync(dir, ['perform', 'switchover', '--pgdata', `${dir}/monitor`]);
    out(`switchover done in ${Date.now() - t0} ms`);
    phase = 'after';
    await sleep(3000);
    running = false;
    await Promise.all(workers);
    // the new primary: whichever node is not in recovery now
    const check = await primaryOf([port1, port2]);
    const { rows } = await check.query<{ ip: string }>(
      `select host('0.0.0.0'::inet + (r.ip4_first + i)) as ip from pgipam.lease l join pgipam.address_range r on r.id = l.range_id,
         generate_series(l.first_idx, l.last_idx) i where l.kind = 'lease'`,
    );
    await check.end();
    const held = new Set(rows.map((r) => r.ip));
    const lost = new Set(given.filter((ip) => !held.has(ip))).size;
    const duplicated = given.length - new Set(given).size;
    out(`leases given: ${given.length} (before ${phases.before}, during the switchover ${phases.during}, after ${phases.after})`);
    out(`failed with one line: ${failures.length}${failures.length ? ` (e.g. "${failures[0]}")` : ''}`);
    out(`lost: ${lost}; given twice: ${duplicated}`);
    if (lost || duplicated) process.exitCode = 1;
  } finally {
    stopWorkers();
    for (const d of ['node1', 'node2', 'monitor']) {
      try {
        autoctl(dir, ['stop', '--pgdata', `${dir}/${d}`, '--fast']);
      } catch {
        // already down
      }
    }
    await sleep(2000);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`ha-demo: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
