// npm run bench: figures, not assertions. Prints
//   1. median wall time of one get_address process vs `node -e 0` on this machine (ratio);
//   2. the library's time per allocation on an empty vs a 99% full /16 and in a /8 (ratios).
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import pg from 'pg';
import { getAddress, registerAddressRange } from '../allocator/actions';
import { silentContext } from '../allocator/context';
import { migrate } from '../db/migrate';
import { startEmbeddedPostgres } from './embedded';
import { actionData, addressXml, arXmlFormB, storedAr, toBase64 } from './oned-sim';

const root = path.resolve(__dirname, '..');
const RUNS = Number(process.env.BENCH_RUNS ?? 25);
const ALLOCS = Number(process.env.BENCH_ALLOCS ?? 1000);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;

function timeProcess(args: string[], input: string | undefined, env: NodeJS.ProcessEnv): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, { input, env, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${args.join(' ')} failed: ${r.stderr}`);
  return ms;
}

// Leases 99% of the first `count` addresses of a range, leaving 1% single-address holes spread
// evenly (a worst case for allocators that scan leases), and rebuilds the free extents to match.
async function fill(db: pg.Client, rangeId: number, size: number, count: number): Promise<number> {
  const hole = `(i % 100 = 37)`;
  await db.query('begin');
  await db.query('delete from pgipam.free_extent where range_id = $1', [rangeId]);
  await db.query(`insert into pgipam.lease (range_id, first_idx, last_idx, kind) select $1::int8, i, i, 'lease' from generate_series(0, $2::int8 - 1) i where not ${hole}`, [rangeId, count]);
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
  const server = await startEmbeddedPostgres({ label: 'bench' });
  try {
    const db = new pg.Client({ connectionString: server.url });
    db.on('error', () => {});
    await db.connect();
    await migrate(db);
    const { rows: v } = await db.query<{ server_version: string }>('show server_version');
    out(`PostgreSQL ${v[0]!.server_version} (embedded, fsync off: numbers are CPU and round trips, not disk)`);

    // 1. process cost
    const reg = await registerAddressRange(db, { ar: { TYPE: 'IP4', IP: '100.64.0.0', SIZE: String(2 ** 20), IPAM_MAD: 'pgipam' }, address: {} }, silentContext);
    const ar = storedAr(reg.reply, 0);
    const env = { ...process.env, PGIPAM_DATABASE_URL: server.url, PGIPAM_CONFIG: '/dev/null' };
    const input = toBase64(actionData(arXmlFormB(ar), addressXml({ size: 1 })));
    const exe = path.join(root, 'remotes/ipam/pgipam/get_address');
    const nodeTimes: number[] = [];
    const getTimes: number[] = [];
    for (let i = 0; i < 3; i++) {
      timeProcess(['-e', '0'], undefined, env);
      timeProcess([exe, '1'], input, env);
    }
    for (let i = 0; i < RUNS; i++) {
      nodeTimes.push(timeProcess(['-e', '0'], undefined, env));
      getTimes.push(timeProcess([exe, String(i)], input, env));
    }
    const nodeMed = median(nodeTimes);
    const getMed = median(getTimes);
    out('');
    out(`one get_address process:  median ${getMed.toFixed(1)} ms (p95 ${pct(getTimes, 0.95).toFixed(1)} ms)`);
    out(`node -e 0:                median ${nodeMed.toFixed(1)} ms (p95 ${pct(nodeTimes, 0.95).toFixed(1)} ms)`);
    out(`ratio get_address / node -e 0: ${(getMed / nodeMed).toFixed(2)}  (the driver's own cost: ${(getMed - nodeMed).toFixed(1)} ms)`);

    // 2. library cost per allocation, one connection, one transaction per allocation
    const register = async (ip: string, size: number) =>
      (await registerAddressRange(db, { ar: { TYPE: 'IP4', IP: ip, SIZE: String(size), IPAM_MAD: 'pgipam' }, address: {} }, silentContext)).reply;
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
    out(`library get_address, 99% full /16 (${leased16} leases, 1% holes spread out): median ${f.median.toFixed(3)} ms  p95 ${f.p95.toFixed(3)} ms`);
    out(`library get_address, /8 (${leased8} leases):  median ${b.median.toFixed(3)} ms  p95 ${b.p95.toFixed(3)} ms`);
    out(`ratio 99% full /16 / empty /16: ${(f.median / e.median).toFixed(2)}`);
    out(`ratio /8 / empty /16:           ${(b.median / e.median).toFixed(2)}`);
    await db.end();
  } finally {
    await server.stop();
  }
}

main().catch((e) => {
  process.stderr.write(`bench failed: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
