// Seeded random sequences against the two free-space structures, with the consistency checker
// after every step: a range's free extents (get, allocate, free, reserve) and a pool's buddy list
// (carve, take, return). Both must end exactly where they started.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkDatabase } from '../../src/admin/check';
import { formatIPv4, parseIPv4 } from '../../src/address';
import { isIpamError } from '../../src/errors';
import { makeRng, seedFromEnv } from '../support/random';
import { type TestDb, createTestDatabase, testContext } from '../support/db';
import { allocateAddress, freeAddress, registerAddressRange, unregisterAddressRange } from '../../src/allocator/index';
import { getAddress } from '../../src/allocator/get-address';
import { addPool } from '../../src/admin/pool-admin';

const SEED = seedFromEnv('PGIPAM_PROPERTY_SEED');
let t: TestDb;
const ctx = testContext('prop');
beforeAll(async () => {
  t = await createTestDatabase('property');
});
afterAll(async () => t?.drop());

// Refusals the operations may give; anything else fails the test.
const EXPECTED = /no free address|no block of|is not free|has no free IPv4|is already taken|overlaps/;

async function expectConsistent(where: string) {
  const { problems } = await checkDatabase(t.db);
  expect(problems, `seed ${SEED}, ${where}`).toEqual([]);
}

describe(`random sequences (seed ${SEED}; replay with PGIPAM_PROPERTY_SEED=${SEED})`, () => {
  it('a range: 400 random gets, allocates and frees keep leases and free extents exact', async () => {
    const rng = makeRng(SEED);
    const { reply: ar } = await registerAddressRange(
      t.db,
      { ar: { TYPE: 'IP4', IP: '10.0.0.0', SIZE: '64', IPAM_MAD: 'pgipam' }, address: {} },
      ctx,
    );
    const held = new Set<number>();
    for (let step = 0; step < 400; step++) {
      const op = rng.int(0, 2);
      try {
        if (op === 0) {
          const size = rng.chance(0.7) ? 1 : rng.int(2, 6);
          const r = await getAddress(t.db, { ar, address: { SIZE: String(size) } }, ctx);
          for (let i = r.index; i < r.index + size; i++) {
            expect(held.has(i), `seed ${SEED} step ${step}: get gave ${i} twice`).toBe(false);
            held.add(i);
          }
        } else if (op === 1) {
          const i = rng.int(0, 63);
          await allocateAddress(t.db, { ar, address: { IP: formatIPv4(parseIPv4('10.0.0.0') + i), SIZE: '1' } }, ctx);
          expect(held.has(i), `seed ${SEED} step ${step}: allocate took held ${i}`).toBe(false);
          held.add(i);
        } else {
          const i = rng.int(0, 63);
          await freeAddress(t.db, { ar, address: { IP: formatIPv4(parseIPv4('10.0.0.0') + i), SIZE: '1' } }, ctx);
          held.delete(i);
        }
      } catch (e) {
        if (!isIpamError(e) || !EXPECTED.test(e.message)) throw e;
      }
      await expectConsistent(`range step ${step}`);
    }
    for (const i of held) await freeAddress(t.db, { ar, address: { IP: formatIPv4(parseIPv4('10.0.0.0') + i), SIZE: '1' } }, ctx);
    const { rows } = await t.db.query('select first_idx::int, last_idx::int from pgipam.free_extent where range_id = $1', [
      ar.PGIPAM_RANGE_ID,
    ]);
    expect(rows).toEqual([{ first_idx: 0, last_idx: 63 }]);
  });

  it('a pool: 300 random carves, explicit takes and returns keep the buddy list exact and merge back to one block', async () => {
    const rng = makeRng(SEED + 1);
    await addPool(t.db, 'prop', { prefixes: ['10.64.0.0/20'], gateway: rng.pick(['first', 'none', 'last']) }, ctx);
    const live: Array<Record<string, string>> = [];
    for (let step = 0; step < 300; step++) {
      try {
        if (live.length && rng.chance(0.4)) {
          const ar = live.splice(rng.int(0, live.length - 1), 1)[0]!;
          await unregisterAddressRange(t.db, { ar, address: {} }, ctx);
        } else if (rng.chance(0.75)) {
          const size = rng.pick([1, 2, 5, 13, 30, 60, 100, 250, 500]);
          live.push(
            (
              await registerAddressRange(
                t.db,
                { ar: { TYPE: 'IP4', SIZE: String(size), PGIPAM_POOL: 'prop', IPAM_MAD: 'pgipam' }, address: {} },
                ctx,
              )
            ).reply,
          );
        } else {
          const len = rng.int(24, 29);
          const net = parseIPv4('10.64.0.0') + rng.int(0, 2 ** (len - 20) - 1) * 2 ** (32 - len);
          const ar = {
            TYPE: 'IP4',
            IP: formatIPv4(net + 1),
            SIZE: String(2 ** (32 - len) - 2),
            NETWORK_ADDRESS: `${formatIPv4(net)}/${len}`,
            IPAM_MAD: 'pgipam',
          };
          live.push((await registerAddressRange(t.db, { ar, address: {} }, ctx)).reply);
        }
      } catch (e) {
        if (!isIpamError(e) || !EXPECTED.test(e.message)) throw e;
      }
      await expectConsistent(`pool step ${step}`);
    }
    for (const ar of live) await unregisterAddressRange(t.db, { ar, address: {} }, ctx);
    const { rows } = await t.db.query(
      `select f.network::text, f.prefix_length from pgipam.pool_free_block f join pgipam.pool p on p.id = f.pool_id where p.name = 'prop'`,
    );
    expect(rows).toEqual([{ network: String(parseIPv4('10.64.0.0')), prefix_length: 20 }]);
  });
});
