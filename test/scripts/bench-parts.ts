// Parts of npm run bench (bench.ts) that have a setup of their own: the server with a Unix socket
// and peer authentication, the comparison of connection settings, and the HTTP API's lease rate.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { addToken } from '../../src/admin/api-tokens';
import { leaseGet } from '../../src/admin/owned-leases';
import { addPlatform } from '../../src/admin/platforms';
import { silentContext } from '../../src/allocator/context';
import { registerAddressRange } from '../../src/allocator/index';
import { DbPool } from '../../src/db/pool';
import { startServeProcess } from '../support/processes';
import { loadConfig } from '../../src/config';
import { freePort, startEmbeddedPostgres } from '../support/embedded';
import { PGBOUNCER, startPgBouncer } from '../support/pgbouncer';

// the bench's own (bench.ts): the process runs per case, and the median of a sample
export const RUNS = Number(process.env.BENCH_RUNS ?? 25);

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

// The server also listens on a Unix socket, where this OS user logs in as postgres by peer
// authentication (pg_ident.conf), for the comparison of connection settings.
export async function startBenchServer(sockDir: string) {
  fs.chmodSync(sockDir, 0o777);
  const osUser = os.userInfo().username;
  return startEmbeddedPostgres({
    label: 'bench',
    flags: ['-c', `unix_socket_directories=${sockDir}`],
    prepare: (dataDir) => {
      const hba = path.join(dataDir, 'pg_hba.conf');
      fs.writeFileSync(hba, `local all postgres peer map=bench\n${fs.readFileSync(hba, 'utf8')}`);
      fs.appendFileSync(path.join(dataDir, 'pg_ident.conf'), `bench ${osUser} postgres\nbench postgres postgres\n`);
    },
  });
}

// 2c. leases for other owners: 16 concurrent HTTP clients of pgipam serve (its own process, on
// loopback) vs the library's leaseGet on 16 connections, both as the platform's role, 3 s each,
// one new owner (so one new lease) per request, all on one range (they queue for its lock)
export async function apiRate(db: pg.Client, url: string, out: (s: string) => void): Promise<void> {
  const password = crypto.randomBytes(32).toString('base64url');
  const info = await addPlatform(db, 'bench-api', { password }, silentContext);
  const pctx = { ...silentContext, platform: info.name };
  const ids: number[] = [];
  for (let i = 0; i < 2; i++)
    ids.push(
      Number(
        (
          await registerAddressRange(
            db,
            { ar: { TYPE: 'IP4', IP: `23.${i * 16}.0.0`, SIZE: String(2 ** 20), IPAM_MAD: 'pgipam' }, address: {} },
            pctx,
          )
        ).reply.PGIPAM_RANGE_ID,
      ),
    );
  const { token } = await addToken(db, 'bench', info.name);
  // the server as an operator runs it: a process of its own (the bundled CLI)
  const serve = await startServeProcess({ PGIPAM_DATABASE_URL: url, HOME: os.tmpdir() }, await freePort(), [
    '--no-webhooks',
    '--connections',
    '16',
  ]);
  const base = serve.url;
  const pool = new DbPool(loadConfig({ PGIPAM_DATABASE_URL: url, PGIPAM_CONFIG: '/dev/null' }), 'pgipam/bench', 16);
  // 16 workers for 3 s, each with a client of its own
  const rate = async (one: (n: number, worker: number) => Promise<void>) => {
    let n = 0;
    const until = Date.now() + 3000;
    await Promise.all(
      Array.from({ length: 16 }, async (_, worker) => {
        while (Date.now() < until) await one(n++, worker);
      }),
    );
    return n / 3;
  };
  const api = await rate(async (n) => {
    const r = await fetch(`${base}/api/v1/leases`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ owner: `bench/api-${n}`, range: ids[0] }),
    });
    if (r.status !== 201) throw new Error(`POST /leases: ${r.status} ${await r.text()}`);
  });
  // the library as the same platform's role (row-level security applies to both sides alike)
  const libDbs = await Promise.all(Array.from({ length: 16 }, () => pool.acquire()));
  for (const c of libDbs) await c.query(`set role ${info.role}`);
  const lib = await rate(async (n, worker) => {
    await leaseGet(libDbs[worker]!, { owner: `bench/lib-${n}`, rangeId: ids[1] }, pctx);
  });
  for (const c of libDbs) pool.release(c, true);
  await serve.stop();
  await pool.close();
  out('');
  out(
    `leases for other owners, 16 clients: through the HTTP API ${api.toFixed(0)}/s, the library (16 connections) ${lib.toFixed(0)}/s, ratio ${(api / lib).toFixed(2)}`,
  );
}

// 1c. TCP with a password vs the Unix socket with peer authentication (no password, no
// node:crypto), get_address with each in turn
export async function compareConnections(
  runAction: (name: string, input: string, id: number, extraEnv?: NodeJS.ProcessEnv) => { ms: number; stderr: string },
  getInput: string,
  server: { url: string; port: number },
  sockDir: string,
  nodeMed: number,
  out: (s: string) => void,
): Promise<void> {
  const socketUrl = `postgres://postgres@/pgipam?host=${encodeURIComponent(sockDir)}&port=${server.port}`;
  const conn: Record<'tcp' | 'socket', { total: number[]; connect: number[] }> = {
    tcp: { total: [], connect: [] },
    socket: { total: [], connect: [] },
  };
  for (let i = -2; i < RUNS; i++) {
    for (const [k, url] of [
      ['tcp', server.url],
      ['socket', socketUrl],
    ] as const) {
      const run = runAction('get_address', getInput, 7000 + i, { PGIPAM_DATABASE_URL: url, PGIPAM_DEBUG: '1' });
      if (i < 0) continue;
      conn[k].total.push(run.ms);
      conn[k].connect.push(Number(/connect ([\d.]+) ms/.exec(run.stderr)?.[1] ?? NaN));
    }
  }
  out(
    `get_address over TCP with a password: median ${median(conn.tcp.total).toFixed(1)} ms (connect ${median(conn.tcp.connect).toFixed(1)} ms); over the Unix socket with peer authentication: median ${median(conn.socket.total).toFixed(1)} ms (connect ${median(conn.socket.connect).toFixed(1)} ms), ratio to node -e 0: ${(median(conn.socket.total) / nodeMed).toFixed(2)}`,
  );
}

// 1d. get_address straight to PostgreSQL vs through a local PgBouncer in transaction mode (warm
// server backends, but no session settings: the action takes its transactional path there)
export async function compareBouncer(
  runAction: (name: string, input: string, id: number, extraEnv?: NodeJS.ProcessEnv) => { ms: number; stderr: string },
  getInput: string,
  serverUrl: string,
  nodeOnce: () => number,
  out: (s: string) => void,
): Promise<void> {
  if (!fs.existsSync(PGBOUNCER)) return out('PgBouncer comparison skipped: apt-get install pgbouncer');
  const bouncer = await startPgBouncer(serverUrl);
  try {
    const sides = [
      ['direct', serverUrl, {}],
      ['bouncer', bouncer.url, {}],
      ['declared', bouncer.url, { PGIPAM_POOLER: 'transaction' }],
    ] as const;
    const t = Object.fromEntries(sides.map(([k]) => [k, { total: [] as number[], trips: [] as string[] }]));
    // node -e 0 alternates with them: the machine's pace drifts over a run
    const node: number[] = [];
    for (let i = -2; i < RUNS; i++) {
      const n = nodeOnce();
      if (i >= 0) node.push(n);
      for (const [k, url, extra] of sides) {
        const run = runAction('get_address', getInput, 8000 + i, { PGIPAM_DATABASE_URL: url, PGIPAM_DEBUG: '1', ...extra });
        if (i < 0) continue;
        t[k]!.total.push(run.ms);
        const m = /connect ([\d.]+) ms, (\d+) round trips \(\d+ statements\): ([\d. ]+) ms/.exec(run.stderr);
        t[k]!.trips.push(
          m ? `connect ${m[1]} ms, ${m[2]} round trip${m[2] === '1' ? '' : 's'} of ${m[3]!.trim().split(' ').join(' + ')} ms` : '',
        );
      }
    }
    const nodeMed = median(node);
    const say = (k: string) =>
      `median ${median(t[k]!.total).toFixed(1)} ms (${t[k]!.trips[0]}), ratio to node -e 0 ${(median(t[k]!.total) / nodeMed).toFixed(2)}`;
    out(`alternating with node -e 0 (median ${nodeMed.toFixed(1)} ms):`);
    out(`get_address straight to PostgreSQL: ${say('direct')}`);
    out(`through a local PgBouncer (transaction mode, clients trusted), found by its refusal: ${say('bouncer')}`);
    out(`the same with pooler = transaction (one connection): ${say('declared')}`);
  } finally {
    bouncer.stop();
  }
}
