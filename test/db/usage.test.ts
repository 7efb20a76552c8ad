// pgipam usage from a history written with known times: a block freed address by address, a free
// on hold, a lease adopted from a hold, a range removed with addresses still leased, use that
// began before --since and runs past --until.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/client';
import { usage } from '../../src/admin/usage';
import { type TestDb, createTestDatabase } from '../support/db';

let t: TestDb;
const T0 = Date.parse('2026-11-01T00:00:00Z');
const at = (hours: number) => new Date(T0 + hours * 3_600_000);

beforeAll(async () => {
  t = await createTestDatabase('usage');
  // the database stamps each row's time (migration 4); this history is written with chosen times
  await t.db.query('alter table pgipam.history disable trigger history_stamp');
  const space = (await t.db.query<{ id: string }>("select id::text from pgipam.space where name = 'default'")).rows[0]!.id;
  const row = (h: number, event: string, range: number, [first, size]: [number, number], platform: string, detail = {}) =>
    t.db.query(
      `insert into pgipam.history (at, event, space_id, range_id, first_idx, size, platform, detail) values ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [at(h), event, space, range, first, size, platform, JSON.stringify(detail)],
    );
  await row(-2, 'range_registered', 101, [0, 64], 'default', { pool: 'p1' });
  await row(-1, 'address_leased', 101, [0, 4], 'default'); // a reservation's block, in use before --since
  await row(2, 'address_freed', 101, [0, 1], 'default', { was: 'lease' });
  await row(3, 'address_freed', 101, [1, 1], 'default', { was: 'lease' });
  await row(23, 'address_allocated', 101, [10, 1], 'default');
  await row(25, 'range_removed', 101, [0, 64], 'default'); // 2, 3 and 10 still leased
  await row(1, 'range_registered', 102, [0, 8], 'edge', { pool: null });
  await row(1, 'address_leased', 102, [0, 1], 'edge');
  await row(5, 'address_freed', 102, [0, 1], 'edge', { was: 'lease', hold_seconds: 3600 }); // on hold: not use
  await row(7, 'reconcile_adopted', 102, [0, 1], 'edge', { owner: 'VM 9' }); // runs past --until
  await row(30, 'address_reserved', 102, [5, 1], 'edge'); // an operator's reservation: not use
  await t.db.query('alter table pgipam.history enable trigger history_stamp');
});
afterAll(() => t.drop());

const r2 = (n: number) => Math.round(n * 100) / 100;

describe('pgipam usage', () => {
  it('counts address-hours and peaks per day and platform', async () => {
    const u = await usage(t.db as unknown as Db, { since: at(0), until: at(48), by: 'platform', period: 'day' });
    expect(u.rows.map((r) => [r.periodStart.toISOString().slice(0, 10), r.group, r2(r.addressHours), r.peak, r.started])).toEqual([
      // 0: 2 h, 1: 3 h, 2 and 3: 24 h each, 10: 1 h
      ['2026-11-01', 'default', 54, 4, 1],
      // 1 h to 5 h, then adopted from 7 h
      ['2026-11-01', 'edge', 21, 1, 2],
      // 2, 3 and 10 until the range is removed at 01:00
      ['2026-11-02', 'default', 3, 3, 0],
      ['2026-11-02', 'edge', 24, 1, 0],
    ]);
  });

  it('groups by range and pool over one period, and cuts at --since and --until', async () => {
    const byRange = await usage(t.db as unknown as Db, { since: at(0), until: at(48), by: 'range', period: 'all' });
    expect(byRange.rows.map((r) => [r.group, r2(r.addressHours), r.peak])).toEqual([
      ['101', 57, 4],
      ['102', 45, 1],
    ]);
    const byPool = await usage(t.db as unknown as Db, { since: at(0), until: at(48), by: 'pool', period: 'all' });
    expect(byPool.rows.map((r) => [r.group, r2(r.addressHours)])).toEqual([
      ['(no pool)', 45],
      ['p1', 57],
    ]);
    const hour = await usage(t.db as unknown as Db, { since: at(2.5), until: at(3.5), by: 'range', period: 'hour' });
    expect(hour.rows.map((r) => [r.periodStart.toISOString().slice(11, 16), r.group, r2(r.addressHours), r.peak])).toEqual([
      ['02:00', '101', 1.5, 3], // 1, 2, 3 from 02:30
      ['02:00', '102', 0.5, 1],
      ['03:00', '101', 1, 2], // 2 and 3 until 03:30; 1 was freed at 03:00 sharp
      ['03:00', '102', 0.5, 1],
    ]);
  });
});
