// Platforms, grants and row-level security: a front-end's credentials reach only its own ranges
// and the pools granted to it, even with hand-written SQL.
import crypto from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { addPlatform, grantPool, revokePool, listPlatforms } from '../../src/admin/platforms';
import { parseTemplate } from '../../src/driver/template';
import { EMPTY_ADDRESS, actionData, addressXml, arXmlFormA, arXmlFormB, storedAr, toBase64 } from '../support/oned-sim';
import { type TestDb, createTestDatabase, testContext } from '../support/db';
import { runActionProcess } from '../support/processes';
import { addPool } from '../../src/admin/pool-admin';

let t: TestDb;
const ctx = testContext('acl');
const suffix = crypto.randomBytes(3).toString('hex');
const A = `zone-a-${suffix}`;
const B = `zone-b-${suffix}`;
const urls: Record<string, string> = {};
const clients: pg.Client[] = [];

function urlFor(role: string, password: string): string {
  const u = new URL(t.url);
  u.username = role;
  u.password = password;
  return u.toString();
}

async function as(platform: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: urls[platform] });
  await c.connect();
  clients.push(c);
  return c;
}

const registerVia = (platform: string, request: Record<string, string>) =>
  runActionProcess('register_address_range', toBase64(actionData(arXmlFormA({ IPAM_MAD: 'pgipam', ...request }), EMPTY_ADDRESS)), {
    PGIPAM_DATABASE_URL: urls[platform]!,
  });

beforeAll(async () => {
  t = await createTestDatabase('access');
  for (const name of [A, B]) {
    const password = crypto.randomBytes(12).toString('hex');
    const p = await addPlatform(t.db, name, { password, description: 'test front-end' }, ctx);
    urls[name] = urlFor(p.role!, password);
  }
  await addPool(t.db, 'shared', { prefixes: ['10.100.0.0/24'], gateway: 'none' }, ctx);
  await addPool(t.db, 'secret', { prefixes: ['10.101.0.0/16'], restricted: true }, ctx);
  await grantPool(t.db, B, 'secret', ctx);
});
afterAll(async () => {
  for (const c of clients) await c.end().catch(() => {});
  await t?.drop();
  // login roles are cluster-wide: remove the ones this file created
  const admin = new pg.Client({ connectionString: inject('pgAdminUrl') });
  await admin.connect();
  for (const r of [A, B]) await admin.query(`drop role if exists "pgipam_${r.replace(/-/g, '_')}"`);
  await admin.end();
});

describe('platforms and grants', () => {
  it('lists platforms with their roles and granted pools', async () => {
    const list = await listPlatforms(t.db);
    expect(list.find((p) => p.name === B)).toMatchObject({ role: `pgipam_zone_b_${suffix}`, pools: ['secret'] });
    expect(list.find((p) => p.name === 'default')).toMatchObject({ role: null });
  });

  it('refuses a platform that is not granted a restricted pool, through the executable', async () => {
    const r = await registerVia(A, { TYPE: 'IP4', SIZE: '10', PGIPAM_POOL: 'secret' });
    expect(r.exitCode).toBe(255);
    expect(r.reason).toBe('pool "secret" does not exist (or this platform may not use it): see "pgipam pool list"');
    const ok = await registerVia(B, { TYPE: 'IP4', SIZE: '10', PGIPAM_POOL: 'secret' });
    expect(ok.reason).toBe('');
    expect(parseTemplate(ok.stdout).values.PGIPAM_POOL).toBe('secret');
  });

  it('gives the same refusal to a front-end that connects as the owner but names the platform', async () => {
    const r = await runActionProcess(
      'register_address_range',
      toBase64(actionData(arXmlFormA({ IPAM_MAD: 'pgipam', TYPE: 'IP4', SIZE: '10', PGIPAM_POOL: 'secret' }), EMPTY_ADDRESS)),
      { PGIPAM_DATABASE_URL: t.url, PGIPAM_PLATFORM: A },
    );
    expect(r.reason).toBe(`platform "${A}" may not use pool "secret": grant it with "pgipam platform grant ${A} secret"`);
    const unknown = await runActionProcess(
      'get_address',
      toBase64(actionData(arXmlFormB({ TYPE: 'IP4', IP: '10.0.0.1', SIZE: '1' }), addressXml({ size: 1 }))),
      { PGIPAM_DATABASE_URL: t.url, PGIPAM_PLATFORM: 'nobody' },
    );
    expect(unknown.reason).toBe('platform "nobody" is not known to the database: add it with "pgipam platform add nobody"');
  });

  it('row-level security holds against hand-written SQL', async () => {
    const a = await as(A);
    const b = await as(B);
    const secretId = (await t.db.query(`select id from pgipam.pool where name = 'secret'`)).rows[0].id;
    // A cannot see the restricted pool, its prefixes or free space, nor B's ranges, leases or history
    expect((await a.query(`select * from pgipam.pool where name = 'secret'`)).rowCount).toBe(0);
    expect((await a.query(`select * from pgipam.pool_prefix where pool_id = $1`, [secretId])).rowCount).toBe(0);
    expect((await a.query(`select * from pgipam.pool_free_block where pool_id = $1`, [secretId])).rowCount).toBe(0);
    expect((await b.query(`select * from pgipam.address_range`)).rowCount).toBe(1);
    expect((await a.query(`select * from pgipam.address_range`)).rowCount).toBe(0);
    expect((await a.query(`select * from pgipam.history`)).rowCount).toBe(0);
    expect((await b.query(`select * from pgipam.history`)).rowCount).toBeGreaterThan(0);
    // and cannot change them
    // (pool free space is not a platform's to delete at all since migration 4: issue 15 item 5)
    await expect(a.query(`delete from pgipam.pool_free_block where pool_id = $1`, [secretId])).rejects.toMatchObject({ code: '42501' });
    expect((await a.query(`update pgipam.address_range set attrs = '{}'`)).rowCount).toBe(0);
    expect((await a.query(`delete from pgipam.lease`)).rowCount).toBe(0);
    await expect(
      a.query(`insert into pgipam.pool_free_block (pool_id, family, network, prefix_length) values ($1, 4, 0, 8)`, [secretId]),
    ).rejects.toMatchObject({ code: '42501' });
    await expect(
      a.query(`insert into pgipam.address_range (space_id, ar_type, size, ip4_first, platform) values (1, 'IP4', 1, 1, $1)`, [B]),
    ).rejects.toMatchObject({ code: '42501' });
    await expect(a.query(`insert into pgipam.history (event, platform) values ('forged', $1)`, [B])).rejects.toMatchObject({
      code: '42501',
    });
    // no DDL, no pool changes, no history rewriting
    await expect(a.query(`create table pgipam.evil (x int)`)).rejects.toMatchObject({ code: '42501' });
    await expect(a.query(`update pgipam.pool set restricted = false`)).rejects.toMatchObject({ code: '42501' });
    await expect(a.query(`insert into pgipam.pool_grant (pool_id, platform) values ($1, $2)`, [secretId, A])).rejects.toMatchObject({
      code: '42501',
    });
    await expect(b.query(`delete from pgipam.history`)).rejects.toMatchObject({ code: '42501' });
    await expect(a.query(`drop table pgipam.lease`)).rejects.toMatchObject({ code: '42501' });
  });

  it('an overlap with another platform is still refused (constraints see every row)', async () => {
    const b = await registerVia(B, { TYPE: 'IP4', IP: '192.0.2.0', SIZE: '16' });
    expect(b.exitCode).toBe(0);
    const a = await registerVia(A, { TYPE: 'IP4', IP: '192.0.2.8', SIZE: '16' });
    expect(a.exitCode).toBe(255);
    expect(a.reason).toMatch(/the AR overlaps another range in address space "default"/);
  });

  it("a platform cannot lease from another platform's range by naming its id", async () => {
    const b = await registerVia(B, { TYPE: 'IP4', IP: '198.51.100.0', SIZE: '8' });
    const ar = storedAr(parseTemplate(b.stdout).values, 0);
    const r = await runActionProcess('get_address', toBase64(actionData(arXmlFormB(ar), addressXml({ size: 1 }))), {
      PGIPAM_DATABASE_URL: urls[A]!,
    });
    expect(r.exitCode).toBe(255);
    expect(r.reason).toMatch(/^pgipam has no range \d+/);
  });

  it("a revoked grant stops leasing from the pool's ranges, but frees still work", async () => {
    const reg = await registerVia(B, { TYPE: 'IP4', SIZE: '10', PGIPAM_POOL: 'secret' });
    const ar = storedAr(parseTemplate(reg.stdout).values, 0);
    const lease = await runActionProcess('get_address', toBase64(actionData(arXmlFormB(ar), addressXml({ size: 1 }))), {
      PGIPAM_DATABASE_URL: urls[B]!,
    });
    expect(lease.exitCode).toBe(0);
    await revokePool(t.db, B, 'secret', ctx);
    try {
      const refused = await runActionProcess('get_address', toBase64(actionData(arXmlFormB(ar), addressXml({ size: 1 }))), {
        PGIPAM_DATABASE_URL: urls[B]!,
      });
      expect(refused.reason).toMatch(new RegExp(`^platform "${B}" may not use pool #\\d+ of range \\d+`));
      const ip = parseTemplate(lease.stdout).values.IP!;
      const freed = await runActionProcess('free_address', toBase64(actionData(arXmlFormB(ar), addressXml({ ip, size: 1 }))), {
        PGIPAM_DATABASE_URL: urls[B]!,
      });
      expect(freed.exitCode).toBe(0);
    } finally {
      await grantPool(t.db, B, 'secret', ctx);
    }
  });

  it('two platforms racing for the last subnet of a shared pool: one wins, the rest are refused cleanly', async () => {
    const first = await registerVia(A, { TYPE: 'IP4', SIZE: '100', PGIPAM_POOL: 'shared' });
    expect(parseTemplate(first.stdout).values.PGIPAM_SUBNET).toBe('10.100.0.0/25');
    const runs = await Promise.all([A, B, A, B, A, B].map((p) => registerVia(p, { TYPE: 'IP4', SIZE: '100', PGIPAM_POOL: 'shared' })));
    const ok = runs.filter((r) => r.exitCode === 0);
    expect(ok).toHaveLength(1);
    expect(parseTemplate(ok[0]!.stdout).values.PGIPAM_SUBNET).toBe('10.100.0.128/25');
    for (const r of runs.filter((x) => x.exitCode !== 0)) expect(r.reason).toBe('pool "shared" has no free IPv4 /25 for 100 addresses');
    const { rows } = await t.db.query(
      `select platform, count(*)::int as n from pgipam.address_range r join pgipam.pool p on p.id = r.pool_id where p.name = 'shared' group by platform`,
    );
    expect(rows.reduce((a: number, r: { n: number }) => a + r.n, 0)).toBe(2);
  });
});
