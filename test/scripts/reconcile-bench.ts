// npm run bench:reconcile: figures, not assertions. How long `pgipam reconcile` takes on a cloud of
// NETWORKS networks with LEASES_PER_NETWORK leases each (1,000 x 100 = 100,000 by default), its
// onevnet output generated in the shape of a real oned's (test/support/oned-sim.ts, from
// test/fixtures/oned/snapshot-1), with 1% of the leases drifted (half leaked, half unknown).
// Prints the wall time of the CLI process (reading the XML, pgipam's snapshot, the comparison) for
// a run that only reports and one that repairs, and of `pgipam import --dry-run` on the same input.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { migrate } from '../../src/db/migrate';
import { registerAddressRange } from '../../src/allocator/index';
import { silentContext } from '../../src/allocator/context';
import { startEmbeddedPostgres } from '../support/embedded';
import { CLI } from '../support/processes';
import { type SimNetwork, onevnetListXml, onevnetShowXml, storedAr } from '../support/oned-sim';

const NETWORKS = Number(process.env.BENCH_NETWORKS ?? 1000);
const LEASES = Number(process.env.BENCH_LEASES_PER_NETWORK ?? 100);
const SIZE = 128;

async function main(): Promise<void> {
  const server = await startEmbeddedPostgres();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgipam-reconcile-bench-'));
  try {
    const db = new pg.Client({ connectionString: server.url });
    await db.connect();
    await migrate(db);
    const t0 = Date.now();
    const networks: SimNetwork[] = [];
    let drifted = 0;
    for (let n = 0; n < NETWORKS; n++) {
      const ip = `10.${100 + Math.floor(n / 256)}.${n % 256}.0`;
      const { reply } = await registerAddressRange(
        db as never,
        { ar: { IPAM_MAD: 'pgipam', TYPE: 'IP4', IP: ip, SIZE: String(SIZE) }, address: {} },
        silentContext,
      );
      const rangeId = Number(reply.PGIPAM_RANGE_ID);
      // pgipam's leases: 0 .. LEASES-1, one row each as get_address makes them
      await db.query('delete from pgipam.free_extent where range_id = $1', [rangeId]);
      await db.query(
        `insert into pgipam.lease (range_id, first_idx, last_idx, kind, created_at)
         select $1::int8, i, i, 'lease', now() - interval '1 day' from generate_series(0, $2::int8 - 1) i`,
        [rangeId, LEASES],
      );
      await db.query('insert into pgipam.free_extent (range_id, first_idx, last_idx) values ($1, $2, $3)', [rangeId, LEASES, SIZE - 1]);
      // oned's: the same, except that every 100th lease is leaked (in pgipam only) or unknown (in oned only)
      const leases = [];
      for (let i = 0; i < LEASES; i++) {
        const k = n * LEASES + i;
        if (k % 200 === 7) {
          drifted++;
          continue; // leaked
        }
        leases.push({ index: i, owner: 'VM' as const, id: k });
      }
      if (n % 2 === 0 && LEASES < SIZE) {
        leases.push({ index: LEASES, owner: 'VM' as const, id: 10_000_000 + n }); // unknown
        drifted++;
      }
      networks.push({ id: 1000 + n, name: `net-${n}`, ars: [{ attrs: storedAr(reply, 0), leases }] });
    }
    await db.query('analyze');
    const files = [path.join(dir, 'list.xml')];
    fs.writeFileSync(files[0]!, onevnetListXml(networks));
    for (const net of networks) {
      const f = path.join(dir, `show-${net.id}.xml`);
      fs.writeFileSync(f, onevnetShowXml(net));
      files.push(f);
    }
    const bytes = files.reduce((s, f) => s + fs.statSync(f).size, 0);
    const leases = networks.reduce((s, n) => s + n.ars[0]!.leases.length, 0);
    console.log(
      `cloud: ${NETWORKS} networks, ${leases} oned leases, ${NETWORKS * LEASES} pgipam leases, ${drifted} drifted; ${(bytes / 1e6).toFixed(1)} MB of onevnet XML (built in ${((Date.now() - t0) / 1000).toFixed(1)} s)`,
    );
    const env = { PATH: process.env.PATH ?? '', HOME: os.tmpdir(), PGIPAM_CONFIG: '/dev/null', PGIPAM_DATABASE_URL: server.url };
    const run = (label: string, args: string[]) => {
      const s = process.hrtime.bigint();
      const r = spawnSync(process.execPath, [CLI, ...args, ...files], { env, encoding: 'utf8', maxBuffer: 1 << 28 });
      const ms = Number(process.hrtime.bigint() - s) / 1e6;
      const summary = r.stdout.trim().split('\n').pop();
      console.log(
        `${label.padEnd(28)} ${(ms / 1000).toFixed(2)} s  exit ${r.status}  ${summary}${r.stderr ? `  stderr: ${r.stderr.trim()}` : ''}`,
      );
    };
    run('reconcile (report)', ['reconcile']);
    run('reconcile (report, again)', ['reconcile']);
    run('reconcile --fix', ['reconcile', '--fix']);
    run('reconcile after --fix', ['reconcile']);
    run('import --dry-run', ['import', '--dry-run']);
    await db.end();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    await server.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
