// Short versions of the stress runs (npm run stress runs the long ones): 64 action processes in
// flight, random operations, random SIGKILLs, a PostgreSQL restart, then a model check.
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { migrate } from '../../src/db/migrate';
import { startEmbeddedPostgres, type EmbeddedServer } from '../support/embedded';
import { seedFromEnv } from '../support/random';
import { formatReport, runStress } from '../scripts/stress';
import { createTestDatabase, type TestDb } from '../support/db';

const dbs: TestDb[] = [];
let server: EmbeddedServer | undefined;
afterAll(async () => {
  for (const d of dbs) await d.drop();
  await server?.stop();
});

describe('stress with a checker', () => {
  it('64 processes, random operations and SIGKILLs: no violation', async () => {
    const t = await createTestDatabase('stress');
    dbs.push(t);
    const seed = seedFromEnv('PGIPAM_STRESS_SEED');
    const report = await runStress({ databaseUrl: t.url, durationMs: 8000, concurrency: 64, killProbability: 0.12, seed });
    const text = formatReport(report);
    console.log(text);
    expect(report.violations, text).toEqual([]);
    expect(report.ops.get.ok + report.ops.allocate.ok).toBeGreaterThan(20);
    expect(report.ops.free.ok).toBeGreaterThan(0);
    expect(report.killed).toBeGreaterThan(0);
    expect(report.leasesChecked).toBeGreaterThan(10);
  });

  it("the checker catches a lease lost behind the driver's back", async () => {
    const t = await createTestDatabase('stress_tamper');
    dbs.push(t);
    const report = await runStress({
      databaseUrl: t.url,
      durationMs: 2500,
      concurrency: 16,
      killProbability: 0,
      seed: 7,
      beforeCheck: async (db) => {
        await db.query(`delete from pgipam.lease where ctid = (select ctid from pgipam.lease where kind = 'lease' limit 1)`);
      },
    });
    expect(report.violations.join('\n')).toMatch(/leased \+ \d+ free != size|was given by the driver and never freed, but is not leased/);
  });

  it('PostgreSQL restarted mid-run: actions fail fast with one clear line, invariants hold', async () => {
    server = await startEmbeddedPostgres({ label: 'restart' });
    const db = new pg.Client({ connectionString: server.url });
    await db.connect();
    await migrate(db);
    await db.end();
    const seed = seedFromEnv('PGIPAM_STRESS_SEED');
    const report = await runStress({
      databaseUrl: server.url,
      durationMs: 10_000,
      concurrency: 32,
      killProbability: 0.05,
      seed,
      restart: { atMs: 3000, downMs: 2500, stop: server.pause, start: server.resume },
    });
    const text = formatReport(report);
    console.log(text);
    expect(report.violations, text).toEqual([]);
    expect(report.restarts).toBe(1);
    expect(report.outageFailures).toBeGreaterThan(0);
    // connect_timeout_ms is 3000 in the stress environment; the rest is process start-up while
    // dozens of processes share two cores. The 12 s watchdog bounds every process.
    expect(report.medianOutageFailureMs).toBeLessThan(6000);
    expect(report.slowestOutageFailureMs).toBeLessThan(20_000);
  });
});
