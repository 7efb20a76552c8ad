// npm run bench: figures, not assertions. Prints
//   1. median wall time of one get_address process vs `node -e 0` on this machine (ratio);
//   2. the library's time per allocation on an empty vs a 99% full /16 and in a /8 (ratios).
import { spawnSync } from 'node:child_process';
import { REMOTES } from '../support/processes';
import path from 'node:path';
import pg from 'pg';
import { silentContext } from '../../src/allocator/context';
import { migrate } from '../../src/db/migrate';
import { actionData, addressForIndex, addressXml, arXmlFormB, storedAr, toBase64 } from '../support/oned-sim';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import { getAddress } from '../../src/allocator/get-address';
import { registerAddressRange } from '../../src/allocator/index';
import { addPool } from '../../src/admin/pool-admin';
import { addPlatform, scramVerifier } from '../../src/admin/platforms';
import { addVlanPool, formatVlanSpans, reserveVlans } from '../../src/admin/vlan-pools';
import { RUNS, apiRate, compareBouncer, compareConnections, median, startBenchServer } from './bench-parts';

const ALLOCS = Number(process.env.BENCH_ALLOCS ?? 1000);
// BENCH_ONLY=processes: the process timings alone (a minute instead of several); =api: the API's
const ONLY_PROCESSES = process.env.BENCH_ONLY === 'processes';

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;

// oned's MAD hands each action its request through a pipe and closes it; Node's spawn would give
// the child a socket instead. So every process timed here, `node -e 0` included, gets a FIFO as
// stdin that already holds its input and whose writer has closed, as an action's pipe is by the
// time Node has started.
const fifo = path.join(os.tmpdir(), `pgipam-bench-${process.pid}.fifo`);
function spawnWithPipe(args: string[], input: string, env: NodeJS.ProcessEnv) {
  if (!fs.existsSync(fifo)) spawnSync('mkfifo', [fifo]);
  const rfd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  try {
    const wfd = fs.openSync(fifo, fs.constants.O_WRONLY);
    fs.writeSync(wfd, input);
    fs.closeSync(wfd);
    const t0 = process.hrtime.bigint();
    const r = spawnSync(process.execPath, args, { stdio: [rfd, 'pipe', 'pipe'], env, encoding: 'utf8' });
    return { ms: Number(process.hrtime.bigint() - t0) / 1e6, status: r.status, stderr: r.stderr };
  } finally {
    fs.closeSync(rfd);
  }
}

function timeProcess(args: string[], input: string, env: NodeJS.ProcessEnv): number {
  const r = spawnWithPipe(args, input, env);
  if (r.status !== 0) throw new Error(`${args.join(' ')} failed: ${r.stderr}`);
  return r.ms;
}

// Leases 99% of the first `count` addresses of a range, leaving 1% single-address holes spread
// evenly (a worst case for allocators that scan leases), and rebuilds the free extents to match.
async function fill(db: pg.Client, rangeId: number, size: number, count: number): Promise<number> {
  const hole = `(i % 100 = 37)`;
  await db.query('begin');
  await db.query('delete from pgipam.free_extent where range_id = $1', [rangeId]);
  await db.query(
    `insert into pgipam.lease (range_id, first_idx, last_idx, kind) select $1::int8, i, i, 'lease' from generate_series(0, $2::int8 - 1) i where not ${hole}`,
    [rangeId, count],
  );
  await db.query(
    `insert into pgipam.free_extent (range_id, first_idx, last_idx)
     select $1::int8, i, i from generate_series(0, $2::int8 - 1) i where ${hole}
     union all select $1::int8, $2::int8, $3::int8 - 1 where $2::int8 < $3::int8`,
    [rangeId, count, size],
  );
  await db.query('commit');
  await db.query('analyze pgipam.lease');
  await db.query('analyze pgipam.free_extent');
  const { rows } = await db.query<{ n: number }>('select count(*)::int as n from pgipam.lease where range_id = $1', [rangeId]);
  return rows[0]!.n;
}

// 90% of a /8 carved into /24s (one range each), the free 10% as isolated /24s spread evenly (no
// two free /24s are buddies, so nothing merges): the most fragmented a 90% full /8 can be at /24.
async function fillPool8(db: pg.Client, pool: string): Promise<string> {
  const { rows } = await db.query<{ id: string; space_id: string; network: string }>(
    `select p.id::text, p.space_id::text, x.network::text from pgipam.pool p join pgipam.pool_prefix x on x.pool_id = p.id where p.name = $1`,
    [pool],
  );
  const { id, space_id: spaceId, network } = rows[0]!;
  await db.query('begin');
  await db.query(
    `create temp table carved on commit drop as
      select i, $1::int8 + i * 256 as net from generate_series(0, 65535) i where i % 10 <> 3`,
    [network],
  );
  await db.query(
    `with r as (
      insert into pgipam.address_range (space_id, ar_type, size, ip4_first, pool_id) select $1::int8, 'IP4', 253, net + 2, $2::int8 from carved returning id, ip4_first)
    insert into pgipam.pool_allocation (range_id, pool_id, space_id, family, network, prefix_length, last)
    select id, $2::int8, $1::int8, 4, ip4_first - 2, 24, ip4_first + 253 from r`,
    [spaceId, id],
  );
  await db.query('delete from pgipam.pool_free_block where pool_id = $1', [id]);
  await db.query(
    `insert into pgipam.pool_free_block (pool_id, family, network, prefix_length)
      select $1::int8, 4, $2::int8 + i * 256, 24 from generate_series(0, 65535) i where i % 10 = 3`,
    [id, network],
  );
  await db.query('commit');
  await db.query('analyze');
  return '58982 /24s carved, 6554 free';
}

// 90% of a /40: 229 of its 256 /48s carved whole, and one /48 carved into /64s with every tenth
// /64 left free; the last 26 /48s free.
async function fillPool40(db: pg.Client, pool: string): Promise<string> {
  const { rows } = await db.query<{ id: string; space_id: string; network: string }>(
    `select p.id::text, p.space_id::text, x.network::text from pgipam.pool p join pgipam.pool_prefix x on x.pool_id = p.id where p.name = $1`,
    [pool],
  );
  const { id, space_id: spaceId, network } = rows[0]!;
  const p48 = (2n ** 80n).toString();
  const p64 = (2n ** 64n).toString();
  await db.query('begin');
  await db.query(
    `create temp table carved6 on commit drop as
      select $1::numeric + k * $2::numeric as net, 48 as len from generate_series(0, 228) k
      union all select $1::numeric + 229 * $2::numeric + j * $3::numeric, 64 from generate_series(0, 65535) j where j % 10 <> 3`,
    [network, p48, p64],
  );
  await db.query(
    `create temp table ranges6 on commit drop as
      with r as (insert into pgipam.address_range (space_id, ar_type, size, pool_id) select $1::int8, 'IP6', 1, $2::int8 from carved6 returning id)
      select id, row_number() over () as n from r`,
    [spaceId, id],
  );
  await db.query(
    `insert into pgipam.pool_allocation (range_id, pool_id, space_id, family, network, prefix_length, last)
      select r.id, $2::int8, $1::int8, 6, c.net, c.len, c.net + power(2::numeric, 128 - c.len) - 1
        from (select net, len, row_number() over () as n from carved6) c join ranges6 r using (n)`,
    [spaceId, id],
  );
  await db.query('delete from pgipam.pool_free_block where pool_id = $1', [id]);
  await db.query(
    `insert into pgipam.pool_free_block (pool_id, family, network, prefix_length)
      select $1::int8, 6, $2::numeric + k * $3::numeric, 48 from generate_series(230, 255) k
      union all select $1::int8, 6, $2::numeric + 229 * $3::numeric + j * $4::numeric, 64 from generate_series(0, 65535) j where j % 10 = 3`,
    [id, network, p48, p64],
  );
  await db.query('commit');
  await db.query('analyze');
  return '229 /48s + 58982 /64s carved, 6554 /64s and 26 /48s free';
}

async function perAllocation(db: pg.Client, ar: Record<string, string>, n: number): Promise<{ median: number; p95: number }> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await getAddress(db, { ar, address: { SIZE: '1' } }, silentContext);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return { median: median(times), p95: pct(times, 0.95) };
}

async function main() {
  const out = (s: string) => process.stdout.write(s + '\n');
  out(`pgipam benchmark - node ${process.version}, ${RUNS} process runs, ${ALLOCS} allocations per case`);
  const sockDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgipam-bench-sock-'));
  const server = await startBenchServer(sockDir);
  try {
    const db = new pg.Client({ connectionString: server.url });
    db.on('error', () => {});
    await db.connect();
    await migrate(db);
    const { rows: v } = await db.query<{ server_version: string }>('show server_version');
    out(`PostgreSQL ${v[0]!.server_version} (embedded, fsync off: numbers are CPU and round trips, not disk)`);

    // BENCH_ONLY=api: the HTTP API's lease rate alone
    if (process.env.BENCH_ONLY === 'api') return await apiRate(db, server.url, out);
    // 1. process cost
    const reg = await registerAddressRange(
      db,
      { ar: { TYPE: 'IP4', IP: '100.64.0.0', SIZE: String(2 ** 20), IPAM_MAD: 'pgipam' }, address: {} },
      silentContext,
    );
    const ar = storedAr(reg.reply, 0);
    // a clean environment, as oned's: an inherited NODE_OPTIONS or NODE_EXTRA_CA_CERTS changes
    // Node's start-up by tens of milliseconds
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: os.tmpdir(),
      PGIPAM_DATABASE_URL: server.url,
      PGIPAM_CONFIG: '/dev/null',
    };
    out(
      `processes run with only ${Object.keys(env).join(', ')} in their environment (TCP to 127.0.0.1, password authentication), their request in a pipe as oned gives it`,
    );
    const actionInput = (addr: string) => toBase64(actionData(arXmlFormB(ar), addr));
    const getInput = actionInput(addressXml({ size: 1 }));
    const runAction = (name: string, input: string, id: number, extraEnv: NodeJS.ProcessEnv = {}) => {
      const r = spawnWithPipe([path.join(REMOTES, name), String(id)], input, { ...env, ...extraEnv });
      if (r.status !== 0) throw new Error(`${name} failed: ${r.stderr}`);
      return { ms: r.ms, stderr: r.stderr };
    };
    const times: Record<'node' | 'get' | 'allocate' | 'free' | 'uncached', number[]> = {
      node: [],
      get: [],
      allocate: [],
      free: [],
      uncached: [],
    };
    for (let i = -3; i < RUNS; i++) {
      // one of each in turn, so that drift of the machine falls on all of them alike
      const addr = addressXml(addressForIndex(ar, 500_000 + (i + 3), 1, { fixedOned: true }));
      const n = timeProcess(['-e', '0'], getInput, env);
      const g = runAction('get_address', getInput, 1000 + i).ms;
      const a = runAction('allocate_address', actionInput(addr), 2000 + i).ms;
      const f = runAction('free_address', actionInput(addr), 3000 + i).ms;
      const u = runAction('get_address', getInput, 5000 + i, { PGIPAM_NO_CODE_CACHE: '1' }).ms;
      if (i < 0) continue; // warm-up
      times.uncached.push(u);
      times.node.push(n);
      times.get.push(g);
      times.allocate.push(a);
      times.free.push(f);
    }
    const nodeMed = median(times.node);
    const getMed = median(times.get);
    out('');
    out(`node -e 0:                median ${nodeMed.toFixed(1)} ms (p95 ${pct(times.node, 0.95).toFixed(1)} ms)`);
    for (const k of ['get', 'allocate', 'free'] as const)
      out(
        `one ${`${k}_address`.padEnd(16)} process: median ${median(times[k]).toFixed(1)} ms (p95 ${pct(times[k], 0.95).toFixed(1)} ms), ratio to node -e 0: ${(median(times[k]) / nodeMed).toFixed(2)}`,
      );
    out(`the driver's own cost in get_address: ${(getMed - nodeMed).toFixed(1)} ms`);
    out(
      `get_address without its V8 code cache (PGIPAM_NO_CODE_CACHE=1): median ${median(times.uncached).toFixed(1)} ms, ratio to node -e 0: ${(median(times.uncached) / nodeMed).toFixed(2)}; the cache saves ${(median(times.uncached) - getMed).toFixed(1)} ms`,
    );
    // where one get_address's time goes (PGIPAM_DEBUG's timings line), medians over the runs
    const phases: Record<string, number[]> = {};
    let shape = '';
    for (let i = 0; i < RUNS; i++) {
      const line = /timings: (.*)$/m.exec(runAction('get_address', getInput, 4000 + i, { PGIPAM_DEBUG: '1' }).stderr)?.[1] ?? '';
      for (const m of line.matchAll(/(start to code|stdin read|request parsed|config|connect|total) ([\d.]+) ms/g))
        (phases[m[1]!] ??= []).push(Number(m[2]));
      const trips = /(\d+) round trips \((\d+) statements\): ([\d. ]+) ms/.exec(line);
      if (trips) {
        shape = `${trips[1]} round trips, ${trips[2]} statements`;
        trips[3]!
          .trim()
          .split(' ')
          .forEach((x, j) => (phases[`round trip ${j + 1}`] ??= []).push(Number(x)));
      }
    }
    out(
      `where a get_address's time goes (inside the process, medians): ${Object.entries(phases)
        .map(([k, v]) => `${k} ${median(v).toFixed(1)} ms`)
        .join(', ')}; ${shape}`,
    );

    // 1b. what SCRAM's key stretching costs a connection: a platform role whose verifier has
    // PostgreSQL's default 4,096 iterations vs one with 16 (enough for a 256-bit random password,
    // which no dictionary holds), get_address with each in turn
    const roleUrl = async (name: string, iterations: number) => {
      const password = crypto.randomBytes(32).toString('base64url');
      const info = await addPlatform(db, name, { password }, silentContext);
      await db.query(`alter role ${pg.escapeIdentifier(info.role!)} password ${pg.escapeLiteral(scramVerifier(password, iterations))}`);
      const u = new URL(server.url);
      u.username = info.role!;
      u.password = password;
      const r = await registerAddressRange(
        db,
        { ar: { TYPE: 'IP4', IP: iterations === 4096 ? '100.96.0.0' : '100.97.0.0', SIZE: '65536', IPAM_MAD: 'pgipam' }, address: {} },
        { ...silentContext, platform: name },
      );
      return { url: u.toString(), input: toBase64(actionData(arXmlFormB(storedAr(r.reply, 0)), addressXml({ size: 1 }))) };
    };
    const slow = await roleUrl('bench-scram-4096', 4096);
    const fast = await roleUrl('bench-scram-16', 16);
    const auth: Record<'slow' | 'fast', { total: number[]; connect: number[] }> = {
      slow: { total: [], connect: [] },
      fast: { total: [], connect: [] },
    };
    for (let i = -2; i < RUNS; i++) {
      for (const [k, r] of [
        ['slow', slow],
        ['fast', fast],
      ] as const) {
        const run = runAction('get_address', r.input, 6000 + i, { PGIPAM_DATABASE_URL: r.url, PGIPAM_DEBUG: '1' });
        if (i < 0) continue;
        auth[k].total.push(run.ms);
        auth[k].connect.push(Number(/connect ([\d.]+) ms/.exec(run.stderr)?.[1] ?? NaN));
      }
    }
    out(
      `get_address as a platform role, SCRAM verifier of 4,096 iterations: median ${median(auth.slow.total).toFixed(1)} ms (connect ${median(auth.slow.connect).toFixed(1)} ms); of 16 iterations: median ${median(auth.fast.total).toFixed(1)} ms (connect ${median(auth.fast.connect).toFixed(1)} ms)`,
    );

    await compareConnections(runAction, getInput, server, sockDir, nodeMed, out);
    await compareBouncer(runAction, getInput, server.url, () => timeProcess(['-e', '0'], getInput, env), out);

    if (ONLY_PROCESSES) return;
    // 2. library cost per allocation, one connection, one call per allocation
    const register = async (ip: string, size: number) =>
      (await registerAddressRange(db, { ar: { TYPE: 'IP4', IP: ip, SIZE: String(size), IPAM_MAD: 'pgipam' }, address: {} }, silentContext))
        .reply;
    const empty16 = await register('10.1.0.0', 65536);
    const full16 = await register('10.2.0.0', 65536);
    const leased16 = await fill(db, Number(full16.PGIPAM_RANGE_ID), 65536, 65536);
    const slash8 = await register('11.0.0.0', 2 ** 24);
    const leased8 = await fill(db, Number(slash8.PGIPAM_RANGE_ID), 2 ** 24, 2 ** 18);
    await perAllocation(db, empty16, 50); // warm-up
    const e = await perAllocation(db, empty16, ALLOCS);
    const f = await perAllocation(db, full16, Math.min(ALLOCS, 600));
    const b = await perAllocation(db, slash8, ALLOCS);
    out('');
    out(`library get_address, empty /16:            median ${e.median.toFixed(3)} ms  p95 ${e.p95.toFixed(3)} ms`);
    out(
      `library get_address, 99% full /16 (${leased16} leases, 1% holes spread out): median ${f.median.toFixed(3)} ms  p95 ${f.p95.toFixed(3)} ms`,
    );
    out(`library get_address, /8 (${leased8} leases):  median ${b.median.toFixed(3)} ms  p95 ${b.p95.toFixed(3)} ms`);
    out(`ratio 99% full /16 / empty /16: ${(f.median / e.median).toFixed(2)}`);
    out(`ratio /8 / empty /16:           ${(b.median / e.median).toFixed(2)}`);

    // 2b. throughput: 8 connections allocating at once, all on one range (they queue on its
    // lock) or spread over 8 ranges
    const clients = await Promise.all(
      Array.from({ length: 8 }, async () => {
        const c = new pg.Client({ connectionString: server.url });
        c.on('error', () => {});
        await c.connect();
        return c;
      }),
    );
    const oneRange = await register('20.0.0.0', 2 ** 20);
    const eight: Array<Record<string, string>> = [];
    for (let i = 0; i < 8; i++) eight.push(await register(`21.${i * 16}.0.0`, 2 ** 20));
    const throughput = async (pick: (i: number) => Record<string, string>) => {
      let n = 0;
      const until = Date.now() + 3000;
      await Promise.all(
        clients.map(async (c, i) => {
          while (Date.now() < until) {
            await getAddress(c, { ar: pick(i), address: { SIZE: '1' } }, silentContext);
            n++;
          }
        }),
      );
      return n / 3;
    };
    const sixtyFour: Array<Record<string, string>> = [];
    for (let i = 0; i < 64; i++) sixtyFour.push(await register(`22.${i * 4}.0.0`, 2 ** 18));
    let spread = 0;
    const t1 = await throughput(() => oneRange);
    const t8 = await throughput((i) => eight[i]!);
    const t64 = await throughput(() => sixtyFour[spread++ % 64]!);
    for (const c of clients) await c.end();
    out('');
    out(`throughput, 8 connections on one range:    ${t1.toFixed(0)} allocations/s`);
    out(`throughput, 8 connections on 8 ranges:     ${t8.toFixed(0)} allocations/s`);
    out(`throughput, 8 connections over 64 ranges:  ${t64.toFixed(0)} allocations/s`);
    // the server's own pace on this machine: pgbench, 8 clients, a 1-row UPDATE, same server
    const pgbench = ['/usr/lib/postgresql/15/bin/pgbench', '/usr/bin/pgbench'].find((f) => fs.existsSync(f));
    if (!pgbench) out('pgbench comparison skipped: apt-get install postgresql-client-15 (pgbench)');
    else {
      await db.query('create table if not exists public.bench_row (id int primary key, n bigint not null default 0)');
      await db.query('insert into public.bench_row (id) select generate_series(1, 1000) on conflict do nothing');
      const script = path.join(os.tmpdir(), `pgipam-bench-${process.pid}.sql`);
      fs.writeFileSync(script, '\\set id random(1, 1000)\nupdate public.bench_row set n = n + 1 where id = :id;\n');
      const u = new URL(server.url);
      const r = spawnSync(
        pgbench,
        [
          '-n',
          '-c',
          '8',
          '-j',
          '2',
          '-T',
          '3',
          '-f',
          script,
          '-h',
          u.hostname,
          '-p',
          u.port,
          '-U',
          decodeURIComponent(u.username),
          u.pathname.slice(1),
        ],
        {
          env: { PATH: process.env.PATH, PGPASSWORD: decodeURIComponent(u.password) },
          encoding: 'utf8',
        },
      );
      fs.rmSync(script, { force: true });
      const tps = Number(/tps = ([\d.]+)/.exec(r.stdout)?.[1] ?? NaN);
      out(`pgbench, 8 clients, 1-row UPDATE:          ${tps.toFixed(0)} tps`);
      out(`ratio allocations/s over 64 ranges / pgbench tps: ${(t64 / tps).toFixed(3)}`);
    }

    await apiRate(db, server.url, out);

    // 3. carving subnets from pools: empty vs 90% carved
    const ctx = silentContext;
    const carve = async (ar: Record<string, string>, n: number) => {
      const times: number[] = [];
      for (let i = 0; i < n; i++) {
        const t0 = process.hrtime.bigint();
        await registerAddressRange(db, { ar: { IPAM_MAD: 'pgipam', ...ar }, address: {} }, ctx);
        times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      return { median: median(times), p95: pct(times, 0.95) };
    };
    await addPool(db, 'empty8', { prefixes: ['12.0.0.0/8'] }, ctx);
    await addPool(db, 'full8', { prefixes: ['13.0.0.0/8'] }, ctx);
    const carved8 = await fillPool8(db, 'full8');
    await addPool(db, 'empty40', { prefixes: ['2001:db8:a00::/40'] }, ctx);
    await addPool(db, 'full40', { prefixes: ['2001:db8:b00::/40'] }, ctx);
    const carved40 = await fillPool40(db, 'full40');
    const CARVES = Math.min(ALLOCS, 300);
    await carve({ TYPE: 'IP4', SIZE: '253', PGIPAM_POOL: 'empty8' }, 20); // warm-up
    // the two sides alternate, one carve each, so that drift of the machine falls on both
    const alternate = async (a: Record<string, string>, b: Record<string, string>, n: number) => {
      const ta: number[] = [];
      const tb: number[] = [];
      for (let i = 0; i < n; i++) {
        ta.push((await carve(a, 1)).median);
        tb.push((await carve(b, 1)).median);
      }
      return [
        { median: median(ta), p95: pct(ta, 0.95) },
        { median: median(tb), p95: pct(tb, 0.95) },
      ] as const;
    };
    const [c8e, c8f] = await alternate(
      { TYPE: 'IP4', SIZE: '253', PGIPAM_POOL: 'empty8' },
      { TYPE: 'IP4', SIZE: '253', PGIPAM_POOL: 'full8' },
      CARVES,
    );
    const [c40e, c40f] = await alternate(
      { TYPE: 'IP6', SIZE: '1', PGIPAM_POOL: 'empty40' },
      { TYPE: 'IP6', SIZE: '1', PGIPAM_POOL: 'full40' },
      CARVES,
    );
    out('');
    out(`register carving a /24, empty /8:            median ${c8e.median.toFixed(3)} ms  p95 ${c8e.p95.toFixed(3)} ms`);
    out(`register carving a /24, 90% carved /8 (${carved8}): median ${c8f.median.toFixed(3)} ms  p95 ${c8f.p95.toFixed(3)} ms`);
    out(`register carving a /64, empty /40:           median ${c40e.median.toFixed(3)} ms  p95 ${c40e.p95.toFixed(3)} ms`);
    out(`register carving a /64, 90% carved /40 (${carved40}): median ${c40f.median.toFixed(3)} ms  p95 ${c40f.p95.toFixed(3)} ms`);
    out(`ratio 90% carved /8 / empty /8:   ${(c8f.median / c8e.median).toFixed(2)}`);
    out(`ratio 90% carved /40 / empty /40: ${(c40f.median / c40e.median).toFixed(2)}`);

    // 4. carving a subnet plus a VLAN: a VLAN pool with 4,000 of its 4,094 IDs taken (the 94 free
    // ones spread out, so its free list is fragmented) vs an empty one, the two alternating
    await addVlanPool(db, 'vempty', '1-4094', { domain: 'bench-a', bridge: 'br{vlan}' }, ctx);
    await addVlanPool(db, 'vfull', '1-4094', { domain: 'bench-b', bridge: 'br{vlan}' }, ctx);
    const taken = Array.from({ length: 4094 }, (_, i) => i + 1).filter((id) => id % 43 !== 0 || id > 43 * 94);
    await reserveVlans(db, 'vfull', formatVlanSpans(taken.map((id) => [id, id] as [number, number])), 'bench', ctx);
    await addPool(db, 'vlane', { prefixes: ['14.0.0.0/8'], vlanPool: 'vempty' }, ctx);
    await addPool(db, 'vlanf', { prefixes: ['15.0.0.0/8'], vlanPool: 'vfull' }, ctx);
    const VLAN_CARVES = 90;
    const ve: number[] = [];
    const vf: number[] = [];
    for (let i = 0; i < VLAN_CARVES; i++) {
      ve.push((await carve({ TYPE: 'IP4', SIZE: '20', PGIPAM_POOL: 'vlane' }, 1)).median);
      vf.push((await carve({ TYPE: 'IP4', SIZE: '20', PGIPAM_POOL: 'vlanf' }, 1)).median);
    }
    out('');
    out(
      `register carving a /27 + VLAN, empty VLAN pool:            median ${median(ve).toFixed(3)} ms  p95 ${pct(ve, 0.95).toFixed(3)} ms`,
    );
    out(
      `register carving a /27 + VLAN, ${taken.length} of 4094 IDs taken: median ${median(vf).toFixed(3)} ms  p95 ${pct(vf, 0.95).toFixed(3)} ms`,
    );
    out(`ratio VLAN pool 4000 taken / empty: ${(median(vf) / median(ve)).toFixed(2)}`);
    await db.end();
  } finally {
    fs.rmSync(fifo, { force: true });
    fs.rmSync(sockDir, { recursive: true, force: true });
    await server.stop();
  }
}

main().catch((e) => {
  process.stderr.write(`bench failed: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
