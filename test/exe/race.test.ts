// Many action processes at once against one small range: every address leased once, the overflow
// refused cleanly, no deadlock.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTemplate } from '../../src/driver/template';
import { EMPTY_ADDRESS, actionData, addressForIndex, addressXml, arXmlFormA, arXmlFormB, storedAr, toBase64 } from '../support/oned-sim';
import { type TestDb, checkConsistency, createTestDatabase } from '../support/db';
import { runActionProcess } from '../support/processes';

let t: TestDb;
let env: Record<string, string>;
beforeAll(async () => {
  t = await createTestDatabase('race');
  env = { PGIPAM_DATABASE_URL: t.url };
});
afterAll(async () => t?.drop());

async function register(request: Record<string, string>) {
  const r = await runActionProcess(
    'register_address_range',
    toBase64(actionData(arXmlFormA({ IPAM_MAD: 'pgipam', ...request }), EMPTY_ADDRESS)),
    env,
  );
  expect(r.exitCode).toBe(0);
  return storedAr(parseTemplate(r.stdout).values, 0);
}

describe('races between processes', () => {
  it('40 concurrent get_address on a range of 32: 32 distinct leases, 8 clean refusals', async () => {
    const ar = await register({ TYPE: 'IP4', IP: '10.200.0.0', SIZE: '32' });
    const input = toBase64(actionData(arXmlFormB(ar), addressXml({ size: 1 })));
    const runs = await Promise.all(Array.from({ length: 40 }, (_, i) => runActionProcess('get_address', input, env, [String(100 + i)])));
    const ok = runs.filter((r) => r.exitCode === 0);
    const refused = runs.filter((r) => r.exitCode !== 0);
    const ips = ok.map((r) => parseTemplate(r.stdout).values.IP);
    expect(ok).toHaveLength(32);
    expect(new Set(ips).size).toBe(32);
    expect(refused).toHaveLength(8);
    for (const r of refused) {
      expect(r.exitCode).toBe(255);
      expect(r.stdout).toBe('');
      expect(r.reason).toMatch(/^no free address in range \d+ .*: 32 of 32 in use$/);
    }
    const { rows } = await t.db.query('select count(*)::int as n from pgipam.lease where range_id = $1', [ar.PGIPAM_RANGE_ID]);
    expect(rows[0].n).toBe(32);
    expect(await checkConsistency(t.db)).toEqual([]);
  });

  it('12 processes allocating the same address: exactly one wins', async () => {
    const ar = await register({ TYPE: 'IP4', IP: '10.201.0.0', SIZE: '8' });
    const input = toBase64(actionData(arXmlFormB(ar), addressXml(addressForIndex(ar, 3, 1))));
    const runs = await Promise.all(
      Array.from({ length: 12 }, (_, i) => runActionProcess('allocate_address', input, env, [String(200 + i)])),
    );
    expect(runs.filter((r) => r.exitCode === 0)).toHaveLength(1);
    for (const r of runs.filter((x) => x.exitCode !== 0))
      expect(r.reason).toMatch(/^10\.201\.0\.3 is not free: 10\.201\.0\.3 allocated by allocate_address/);
  });

  it('overlapping registrations racing: exactly one range wins', async () => {
    const runs = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        runActionProcess(
          'register_address_range',
          toBase64(actionData(arXmlFormA({ IPAM_MAD: 'pgipam', TYPE: 'IP4', IP: `10.202.0.${i * 8}`, SIZE: '64' }), EMPTY_ADDRESS)),
          env,
        ),
      ),
    );
    expect(runs.filter((r) => r.exitCode === 0)).toHaveLength(1);
    for (const r of runs.filter((x) => x.exitCode !== 0)) expect(r.reason).toMatch(/overlaps range \d+/);
  });

  it('mixed get and free from many processes on several ranges keeps the free index exact', async () => {
    const ars = [];
    for (let i = 0; i < 3; i++) ars.push(await register({ TYPE: 'IP4', IP: `10.210.${i}.0`, SIZE: '16' }));
    const jobs = [];
    for (let i = 0; i < 36; i++) {
      const ar = ars[i % 3]!;
      jobs.push(
        i % 4 === 3
          ? runActionProcess('free_address', toBase64(actionData(arXmlFormB(ar), addressXml(addressForIndex(ar, i % 16, 1)))), env)
          : runActionProcess('get_address', toBase64(actionData(arXmlFormB(ar), addressXml({ size: 1 + (i % 2) }))), env),
      );
    }
    const runs = await Promise.all(jobs);
    for (const r of runs) if (r.exitCode !== 0) expect(r.reason).toMatch(/no free address|no block of 2/);
    expect(await checkConsistency(t.db)).toEqual([]);
  });
});
