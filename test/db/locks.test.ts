// The lock order of src/allocator/locks.ts, tried: registrations carving from one pool,
// unregistrations and removals of its ranges, and reservations across the pool and its ranges, all
// at once on separate connections. PostgreSQL counts every deadlock it breaks
// (pg_stat_database.deadlocks); with one lock order there is none to break.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerAddressRange, unregisterAddressRange } from '../../src/allocator';
import { reserve, unreserve } from '../../src/admin/reservations';
import { addPool } from '../../src/admin/pool-admin';
import { removeRange } from '../../src/admin/range-admin';
import { isIpamError } from '../../src/errors';
import { type TestDb, checkConsistency, createTestDatabase, testContext } from '../support/db';

let t: TestDb;
const clients: pg.Client[] = [];
beforeAll(async () => {
  t = await createTestDatabase('locks');
});
afterAll(async () => {
  for (const c of clients) await c.end().catch(() => {});
  await t?.drop();
});

async function deadlocks(): Promise<number> {
  await t.db.query('select pg_stat_clear_snapshot()');
  const { rows } = await t.db.query<{ n: string }>('select deadlocks::text as n from pg_stat_database where datname = current_database()');
  return Number(rows[0]!.n);
}

describe('one lock order', () => {
  it('register, unregister, range rm, reserve and unreserve of the same pool and ranges never deadlock', async () => {
    await addPool(t.db, 'contended', { prefixes: ['10.120.0.0/24'], gateway: 'none' }, testContext());
    for (let i = 0; i < 6; i++) {
      const c = new pg.Client({ connectionString: t.url });
      await c.connect();
      clients.push(c);
    }
    const before = await deadlocks();
    const unexpected: string[] = [];
    const expected = (e: unknown) => isIpamError(e) && ['NO_FREE_ADDRESS', 'NOT_FOUND', 'ADDRESS_IN_USE', 'CONFLICT'].includes(e.code);
    const live: Array<Record<string, string>> = [];
    const worker = async (c: pg.Client, w: number) => {
      const ctx = testContext(`w${w}`);
      for (let round = 0; round < 25; round++) {
        try {
          switch ((w + round) % 5) {
            case 0:
            case 1:
              live.push(
                (
                  await registerAddressRange(
                    c as never,
                    { ar: { IPAM_MAD: 'pgipam', TYPE: 'IP4', SIZE: '12', PGIPAM_POOL: 'contended' }, address: {} },
                    ctx,
                  )
                ).reply,
              );
              break;
            case 2: {
              const ar = live.shift();
              if (ar) await unregisterAddressRange(c as never, { ar, address: {} }, ctx);
              break;
            }
            case 3:
              // spans the pool's free space and several ranges at once
              await reserve(
                c as never,
                `10.120.0.${(round * 7) % 200}-10.120.0.${((round * 7) % 200) + 40}`,
                `contention ${w}`,
                'default',
                ctx,
              );
              await unreserve(c as never, `10.120.0.0/24`, 'default', ctx);
              break;
            case 4: {
              const ar = live.pop();
              if (ar) await removeRange(c as never, Number(ar.PGIPAM_RANGE_ID), true, ctx);
              break;
            }
          }
        } catch (e) {
          if (!expected(e)) unexpected.push(`${(e as Error).message}`);
        }
      }
    };
    await Promise.all(clients.map((c, w) => worker(c, w)));
    for (const c of clients.splice(0)) await c.end();
    // the cumulative statistics reach pg_stat_database when a backend ends or within a second
    await new Promise((r) => setTimeout(r, 1500));
    expect(unexpected).toEqual([]);
    expect((await deadlocks()) - before).toBe(0);
    expect(await checkConsistency(t.db)).toEqual([]);
  });
});
