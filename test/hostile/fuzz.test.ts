// Fuzzing the decoder and every action: seeded (the seed is printed on failure), thousands of
// cases. Every case ends in a valid reply or in one clear line, a non-zero exit and an unchanged
// database; never a crash, a hang, an internal error or a changed database on failure.
import { PassThrough, Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodePayload, parseActionXml } from '../../src/driver/request';
import { ACTION_DEFINITIONS } from '../../src/driver/action-definitions';
import { ACTION_NAMES, executeAction } from '../../src/driver/action-runner';
import { parseTemplate } from '../../src/driver/template';
import { IpamError, reasonLines } from '../../src/errors';
import { makeRng, seedFromEnv } from '../support/random';
import { storedAr, type Attrs } from '../support/oned-sim';
import { type TestDb, createTestDatabase, snapshot, testContext } from '../support/db';
import { mutate } from '../support/fuzz';
import { runActionProcess } from '../support/processes';
import { registerAddressRange } from '../../src/allocator/index';
import { addPool } from '../../src/admin/pool-admin';

const SEED = seedFromEnv('PGIPAM_FUZZ_SEED');
const CASES = Number(process.env.PGIPAM_FUZZ_CASES ?? 600);
let t: TestDb;
const ars: Attrs[] = [];

beforeAll(async () => {
  t = await createTestDatabase('fuzz');
  const ctx = testContext('setup');
  await addPool(t.db, 'fz', { prefixes: ['10.128.0.0/16', '2001:db8:f::/48'], isDefault: true }, ctx);
  const setup: Array<Record<string, string>> = [
    { TYPE: 'IP4', IP: '10.0.0.0', SIZE: '64', NETWORK_MASK: '255.255.255.0' },
    { TYPE: 'IP4_6_STATIC', IP: '10.1.0.1', SIZE: '32', IP6: '2001:db8:1::1', PREFIX_LENGTH: '64' },
    { TYPE: 'IP6_STATIC', IP6: '2001:db8:2::10', PREFIX_LENGTH: '64', SIZE: '100' },
    { TYPE: 'ETHER', SIZE: '50', MAC: '02:aa:00:00:00:00' },
    { TYPE: 'IP4', SIZE: '20', PGIPAM_POOL: 'fz' },
  ];
  for (const ar of setup) {
    const { reply } = await registerAddressRange(t.db, { ar: { IPAM_MAD: 'pgipam', ...ar }, address: {} }, ctx);
    ars.push(storedAr(reply, ars.length));
  }
});
afterAll(async () => t?.drop());

function collect(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let buf = '';
  stream.on('data', (d) => (buf += d.toString()));
  return { stream, text: () => buf };
}

describe(`fuzz (seed ${SEED}; replay with PGIPAM_FUZZ_SEED=${SEED})`, () => {
  it('the decoder returns a request or refuses with BAD_REQUEST, for 5000 hostile inputs', () => {
    const rng = makeRng(SEED);
    for (let i = 0; i < 5000; i++) {
      const c = mutate(rng, rng.pick(ACTION_NAMES), rng.pick(ars), rng.int(0, 70));
      const started = Date.now();
      try {
        const req = parseActionXml(decodePayload(c.input));
        for (const v of [...Object.values(req.ar), ...Object.values(req.address)]) expect(typeof v).toBe('string');
      } catch (e) {
        if (!(e instanceof IpamError) || e.code !== 'BAD_REQUEST')
          throw new Error(`seed ${SEED} case ${i} (${c.description}): ${(e as Error).stack}`);
      }
      expect(Date.now() - started, `seed ${SEED} case ${i}`).toBeLessThan(500);
    }
  });

  it(`every action on the database: ${CASES} hostile requests`, async () => {
    const rng = makeRng(SEED + 1);
    const env = { PGIPAM_DATABASE_URL: t.url, PGIPAM_CONFIG: '/dev/null' };
    let ok = 0;
    let refused = 0;
    for (let i = 0; i < CASES; i++) {
      const action = rng.pick(ACTION_NAMES);
      const c = mutate(rng, action, rng.pick(ars), rng.int(0, 70));
      const where = `seed ${SEED} case ${i} ${action} (${c.description})`;
      const before = await snapshot(t.db);
      const out = collect();
      const err = collect();
      let error: IpamError | undefined;
      const stdin = Readable.from([Buffer.from(c.input)]) as unknown as NodeJS.ReadStream;
      const code = await executeAction(ACTION_DEFINITIONS[action], {
        argv: [String(i)],
        env,
        stdin,
        stdout: out.stream,
        stderr: err.stream,
        onError: (e) => (error = e),
      });
      const stdout = out.text();
      const reasons = reasonLines(err.text());
      expect(err.text(), where).toMatch(/^[\x0a\x20-\x7e]*$/);
      if (code === 0) {
        ok++;
        expect(reasons, where).toEqual([]);
        if (action === 'register_address_range') expect(parseTemplate(stdout).name, where).toBe('AR');
        else if (action === 'get_address') expect(parseTemplate(stdout).values.IP, where).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
        else expect(stdout, where).toBe('');
      } else {
        refused++;
        expect(code, where).toBe(255);
        expect(stdout, where).toBe('');
        expect(reasons, where).toHaveLength(1);
        expect(error?.code, `${where}: ${reasons[0]}`).not.toBe('INTERNAL');
        expect(await snapshot(t.db), `${where}: database changed on failure: ${reasons[0]}`).toBe(before);
      }
    }
    console.log(`fuzz seed ${SEED}: ${CASES} action cases, ${ok} succeeded, ${refused} refused cleanly`);
    expect(refused).toBeGreaterThan(CASES / 4);
  });

  it('the real executables never print a crash trace (60 cases, 6 at a time)', async () => {
    const rng = makeRng(SEED + 2);
    const cases = Array.from({ length: 60 }, () => {
      const action = rng.pick(ACTION_NAMES);
      return { action, c: mutate(rng, action, rng.pick(ars), rng.int(0, 70)) };
    });
    for (let i = 0; i < cases.length; i += 6) {
      const runs = await Promise.all(
        cases.slice(i, i + 6).map(({ action, c }) => runActionProcess(action, c.input, { PGIPAM_DATABASE_URL: t.url })),
      );
      runs.forEach((r, j) => {
        const where = `seed ${SEED} exe case ${i + j} ${cases[i + j]!.action} (${cases[i + j]!.c.description})`;
        expect([0, 255], where).toContain(r.exitCode);
        expect(r.stderr, where).not.toMatch(/^\s+at |TypeError|ReferenceError|node:internal/m);
        if (r.exitCode !== 0) expect(r.stdout, where).toBe('');
      });
    }
  });
});
