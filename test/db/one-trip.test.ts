// The one-trip path (migration 11, allocator/one-trip.ts) against the transactional path it
// stands in for: the same seeded operations on two identical databases, one through getAddress /
// allocateAddress / freeAddress (one trip where it can, the transaction where it declines), one
// through the *InTransaction functions only. After every step the results, the refusals, the log
// lines and every row of leases, free extents and history must be the same; the one-trip path
// must have done most of the work (its history rows carry a token). Then what it must decline,
// and that a platform's role cannot use it to reach another platform's range.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkDatabase } from '../../src/admin/check';
import { reserve } from '../../src/admin/reservations';
import { formatIPv4, formatMac, parseIPv4 } from '../../src/address';
import { allocateAddress, allocateAddressInTransaction } from '../../src/allocator/allocate-address';
import { freeAddress, freeAddressInTransaction } from '../../src/allocator/free-address';
import { getAddress, getAddressInTransaction } from '../../src/allocator/get-address';
import { registerAddressRange } from '../../src/allocator/index';
import { SCHEMA_VERSION } from '../../src/db/schema';
import type { IpamRequest } from '../../src/ipam-request';
import { type TestDb, createTestDatabase, testContext } from '../support/db';
import { addTestPlatform, dropPlatformRoles } from '../support/platforms';
import { makeRng, seedFromEnv } from '../support/random';

const SEED = seedFromEnv('PGIPAM_ONE_TRIP_SEED');
const roles: string[] = [];
let oneTrip: TestDb;
let reference: TestDb;
beforeAll(async () => {
  [oneTrip, reference] = await Promise.all([createTestDatabase('one_trip'), createTestDatabase('one_trip_ref')]);
});
afterAll(async () => {
  await Promise.all([oneTrip?.drop(), reference?.drop()]);
  await dropPlatformRoles(roles);
});

// Every row the actions write, without what differs between two databases by nature (times, ids,
// the one-trip token).
async function rows(db: pg.Client): Promise<string> {
  const q = async (sql: string) => JSON.stringify((await db.query(sql)).rows);
  return [
    await q(
      `select range_id, first_idx, last_idx, kind, request_id, note, held_until is not null as held, operator from pgipam.lease order by 1, 2`,
    ),
    await q(`select range_id, first_idx, last_idx from pgipam.free_extent order by 1, 2`),
    await q(`select event, range_id, first_idx, size, address, platform, request_id, detail from pgipam.history order by id`),
    await q(`select id, mac_first from pgipam.address_range order by id`),
  ].join('\n');
}

type Op = (db: pg.Client, req: IpamRequest, ctx: ReturnType<typeof testContext>) => Promise<unknown>;

async function outcome(op: Op, db: pg.Client, req: IpamRequest, requestId: string): Promise<string> {
  const ctx = testContext(requestId);
  try {
    const r = await op(db, req, ctx);
    return JSON.stringify({ r, log: ctx.lines });
  } catch (e) {
    // the holder's time differs between the two databases by nature
    return JSON.stringify({ error: (e as Error).message.replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, '<time>'), log: ctx.lines });
  }
}

describe(`one trip or one transaction: the same result (seed ${SEED}; replay with PGIPAM_ONE_TRIP_SEED=${SEED})`, () => {
  it('600 random gets, allocates and frees on ranges with and without a hold time, reservations and MACs', async () => {
    const rng = makeRng(SEED);
    const ars: Array<Record<string, string>> = [];
    for (const db of [oneTrip.db, reference.db]) {
      const ctx = testContext('setup');
      const got: Array<Record<string, string>> = [];
      for (const [ip, hold] of [
        ['10.0.0.0', '0'],
        ['10.1.0.0', '300'],
      ] as const) {
        const { reply } = await registerAddressRange(
          db,
          { ar: { TYPE: 'IP4', IP: ip, SIZE: '48', IPAM_MAD: 'pgipam', PGIPAM_HOLD_SECONDS: hold }, address: {} },
          ctx,
        );
        got.push(reply);
      }
      await reserve(db, '10.0.0.20-10.0.0.22', 'router', 'default', ctx);
      await reserve(db, '10.1.0.5', 'vip', 'default', ctx);
      if (db === oneTrip.db) ars.push(...got);
    }
    // oned's AR: the reply, plus the MAC oned gives an IPv4 AR (MAC_PREFIX and the IP)
    const macOf = (ip: string) => formatMac(0x02_00 * 2 ** 32 + parseIPv4(ip));
    const arFor = (i: number): Record<string, string> => ({ ...ars[i]!, ...(i === 1 ? { MAC: macOf(ars[i]!.IP!) } : {}) });
    let oneTripRows = 0;
    for (let step = 0; step < 600; step++) {
      const which = rng.int(0, 1);
      const ar = arFor(which);
      const base = parseIPv4(ar.IP!);
      const index = rng.int(0, 50); // a few past the end of the range
      const size = String(rng.int(1, 3));
      const address: Record<string, string> = { IP: formatIPv4(base + index), SIZE: size };
      if (rng.int(0, 3) === 0) address.MAC = macOf(formatIPv4(base + index + (rng.int(0, 9) === 0 ? 1 : 0)));
      const kind = rng.int(0, 9);
      const [fast, slow]: [Op, Op] =
        kind < 4
          ? [getAddress, getAddressInTransaction]
          : kind < 7
            ? [allocateAddress, allocateAddressInTransaction]
            : [freeAddress, freeAddressInTransaction];
      const req: IpamRequest = kind < 4 ? { ar, address: { SIZE: size } } : { ar, address };
      if (rng.int(0, 19) === 0) {
        // some holds run out
        for (const db of [oneTrip.db, reference.db])
          await db.query(`update pgipam.lease set held_until = now() - interval '1 second' where kind = 'hold' and first_idx % 3 = 0`);
      }
      const a = await outcome(fast, oneTrip.db, req, String(step));
      const b = await outcome(slow, reference.db, req, String(step));
      const where = `seed ${SEED}, step ${step}: ${fast.name} ${JSON.stringify(req.address)} on range ${which}`;
      expect(a, where).toBe(b);
      expect(await rows(oneTrip.db), where).toBe(await rows(reference.db));
    }
    const { rows: h } = await oneTrip.db.query(
      `select count(*) filter (where action_token is not null)::int as fast, count(*)::int as all from pgipam.history where event like 'address_%'`,
    );
    oneTripRows = h[0].fast;
    // most of the work went one trip; the rest was declined and done by the transaction
    expect(oneTripRows).toBeGreaterThan(h[0].all / 3);
    expect(oneTripRows).toBeLessThan(h[0].all);
    expect((await checkDatabase(oneTrip.db)).problems).toEqual([]);
  });
});

describe('what the one-trip function declines', () => {
  const call = (db: pg.Client, ar: object, version = SCHEMA_VERSION) =>
    db.query(`select * from pgipam.one_trip_get_address($1, 'default', '1', $2, false, 'test', $3::jsonb, 1)`, [
      version,
      String(Math.floor(Math.random() * 1e12)),
      JSON.stringify(ar),
    ]);

  it('another schema version, another space, an AR that names other addresses', async () => {
    const { reply } = await registerAddressRange(
      oneTrip.db,
      { ar: { TYPE: 'IP4', IP: '10.9.0.0', SIZE: '8', IPAM_MAD: 'pgipam' }, address: {} },
      testContext(),
    );
    const id = Number(reply.PGIPAM_RANGE_ID);
    await expect(call(oneTrip.db, { range_id: id }, SCHEMA_VERSION - 1)).rejects.toMatchObject({ code: 'PI100' });
    await expect(call(oneTrip.db, { range_id: id, ip4: parseIPv4('10.9.0.1') })).rejects.toMatchObject({ code: 'PI100' });
    await expect(call(oneTrip.db, { range_id: id, type: 'IP6' })).rejects.toMatchObject({ code: 'PI100' });
    await expect(call(oneTrip.db, { range_id: id, space_given: true, space: 'elsewhere' })).rejects.toMatchObject({ code: 'PI100' });
    await expect(call(oneTrip.db, { range_id: id, size: 0 })).rejects.toMatchObject({ code: 'PI100' });
    // and the plain case goes through
    expect((await call(oneTrip.db, { range_id: id, ip4: parseIPv4('10.9.0.0'), type: 'IP4' })).rows[0].address).toBe('10.9.0.0');
  });

  it("a platform's role reaches only its own ranges, whatever platform the call names", async () => {
    const ctx = testContext();
    const a = await addTestPlatform(oneTrip, 'ota', roles, ctx);
    const b = await addTestPlatform(oneTrip, 'otb', roles, ctx);
    const { reply } = await registerAddressRange(
      oneTrip.db,
      { ar: { TYPE: 'IP4', IP: '10.8.0.0', SIZE: '8', IPAM_MAD: 'pgipam' }, address: {} },
      { ...ctx, platform: b.name },
    );
    const asA = new pg.Client({ connectionString: a.url });
    await asA.connect();
    try {
      const before = await rows(oneTrip.db);
      for (const platform of ['default', a.name, b.name]) {
        await expect(
          asA.query(`select * from pgipam.one_trip_get_address($1, $2, '1', 7, false, 'test', $3::jsonb, 1)`, [
            SCHEMA_VERSION,
            platform,
            JSON.stringify({ range_id: Number(reply.PGIPAM_RANGE_ID) }),
          ]),
        ).rejects.toMatchObject({ code: 'PI100' });
      }
      // the library, as platform a, gets the transactional path's refusal
      await expect(getAddress(asA, { ar: reply, address: { SIZE: '1' } }, { ...ctx, platform: a.name })).rejects.toThrow(
        /has no range .* for platform/,
      );
      expect(await rows(oneTrip.db)).toBe(before);
    } finally {
      await asA.end();
    }
  });
});
