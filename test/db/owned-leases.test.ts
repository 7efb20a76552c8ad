// Leases for what is not OpenNebula (admin/owned-leases.ts): idempotent for their owner, covered
// by the same constraints and history, and left alone by oned's free_address.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkDatabase } from '../../src/admin/check';
import { leaseFree, leaseGet, leaseTake } from '../../src/admin/owned-leases';
import { addPool } from '../../src/admin/pool-admin';
import { reserve } from '../../src/admin/reservations';
import { connect } from '../../src/db/client';
import { loadConfig } from '../../src/config';
import { allocateAddress, freeAddress, getAddress, registerAddressRange } from '../../src/allocator/index';
import { freeAddressInTransaction } from '../../src/allocator/free-address';
import { type TestDb, createTestDatabase, testContext } from '../support/db';

let t: TestDb;
const ctx = testContext('own');
let ar: Record<string, string>;
beforeAll(async () => {
  t = await createTestDatabase('owned_leases');
  await addPool(t.db, 'metal', { prefixes: ['10.70.0.0/24'] }, ctx);
  ({ reply: ar } = await registerAddressRange(
    t.db,
    { ar: { TYPE: 'IP4', SIZE: '6', IPAM_MAD: 'pgipam', PGIPAM_POOL: 'metal' }, address: {} },
    ctx,
  ));
});
afterAll(async () => t?.drop());

describe('owned leases', () => {
  it('get is idempotent per owner, takes what oned has not, and oned then passes it by', async () => {
    const a = await leaseGet(t.db, { owner: 'baremetal/srv-42', pool: 'metal' }, ctx);
    expect(a).toMatchObject({ owner: 'baremetal/srv-42', ip: ar.IP, size: 1, pool: 'metal', created: true });
    const again = await leaseGet(t.db, { owner: 'baremetal/srv-42', pool: 'metal' }, ctx);
    expect(again).toMatchObject({ ip: a.ip, created: false });
    const b = await leaseGet(t.db, { owner: 'baremetal/srv-43', rangeId: Number(ar.PGIPAM_RANGE_ID) }, ctx);
    expect(b.ip).not.toBe(a.ip);
    // oned's get_address takes the next free one
    const vm = await getAddress(t.db, { ar, address: { SIZE: '1' } }, ctx);
    expect([a.ip, b.ip]).not.toContain(vm.ip);
    await expect(leaseGet(t.db, { owner: 'baremetal/srv-42', pool: 'metal', size: 2 }, ctx)).rejects.toThrow(/already holds/);
    const { rows } = await t.db.query(`select event, detail->>'owner' as owner from pgipam.history where detail ? 'owner' order by id`);
    expect(rows).toEqual([
      { event: 'address_leased', owner: 'baremetal/srv-42' },
      { event: 'address_leased', owner: 'baremetal/srv-43' },
    ]);
  });

  it("take is idempotent, names a holder, and free frees only the owner's lease", async () => {
    const vip = (n: number) => `10.70.0.${Number(ar.IP!.split('.')[3]) + n}`;
    const taken = await leaseTake(t.db, { owner: 'vip/web', ip: vip(4) }, ctx);
    expect(taken).toMatchObject({ ip: vip(4), created: true, kind: 'allocation' });
    expect(await leaseTake(t.db, { owner: 'vip/web', ip: vip(4) }, ctx)).toMatchObject({ created: false });
    await expect(leaseTake(t.db, { owner: 'vip/db', ip: vip(4) }, ctx)).rejects.toThrow(
      /is not free: [0-9.]+ leased to vip\/web \(not OpenNebula.s\) since /,
    );
    // oned cannot allocate it either, and its free_address leaves it (both paths)
    await expect(allocateAddress(t.db, { ar, address: { IP: vip(4), SIZE: '1' } }, ctx)).rejects.toThrow(/to vip\/web/);
    const c1 = testContext('f1');
    await freeAddress(t.db, { ar, address: { IP: vip(4), SIZE: '1' } }, c1);
    expect(c1.lines.join('\n')).toMatch(/leased to vip\/web, not to OpenNebula; that lease stays/);
    const c2 = testContext('f2');
    await freeAddressInTransaction(t.db, { ar, address: { IP: vip(4), SIZE: '1' } }, c2);
    expect(c2.lines).toEqual(c1.lines);
    // free: another owner's, OpenNebula's and an operator's are refused; the owner's goes; again is nothing
    await expect(leaseFree(t.db, { ip: vip(4), owner: 'vip/db' }, ctx)).rejects.toThrow(/leased to vip\/web, not to vip\/db/);
    const onedIp = (await getAddress(t.db, { ar, address: { SIZE: '1' } }, ctx)).ip;
    await expect(leaseFree(t.db, { ip: onedIp, owner: 'vip/web' }, ctx)).rejects.toThrow(/OpenNebula's .* freed by OpenNebula/);
    await reserve(t.db, vip(5), 'gateway', 'default', ctx);
    await expect(leaseFree(t.db, { ip: vip(5) }, ctx)).rejects.toThrow(/reserved by an operator/);
    expect((await leaseFree(t.db, { ip: vip(4), owner: 'vip/web' }, ctx)).freed).toMatchObject({ ip: vip(4), owner: 'vip/web' });
    expect((await leaseFree(t.db, { ip: vip(4), owner: 'vip/web' }, ctx)).freed).toBeNull();
    await expect(leaseTake(t.db, { owner: 'Bad Owner', ip: vip(4) }, ctx)).rejects.toThrow(/is not kind\/name/);
    expect((await checkDatabase(t.db)).problems).toEqual([]);
  });

  it('20 retries of one request at once make one lease', async () => {
    const config = loadConfig({ PGIPAM_DATABASE_URL: t.url, PGIPAM_CONFIG: '/dev/null' });
    const dbs = await Promise.all(Array.from({ length: 20 }, () => connect(config, { applicationName: 'pgipam/test' })));
    try {
      const got = await Promise.all(dbs.map((db) => leaseGet(db, { owner: 'dns/ns1', pool: 'metal' }, ctx)));
      expect(new Set(got.map((g) => g.ip)).size).toBe(1);
      expect(got.filter((g) => g.created)).toHaveLength(1);
    } finally {
      await Promise.all(dbs.map((db) => db.end()));
    }
  });
});
