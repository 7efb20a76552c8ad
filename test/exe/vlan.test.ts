// VLAN pools (issue 12): a carved network takes its own VLAN ID with its subnet, in one
// transaction; the database holds one holder per ID per domain, also when platforms race.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { parseTemplate } from '../../src/driver/template';
import { addTestPlatform, dropPlatformRoles } from '../support/platforms';
import { type TestDb, checkConsistency, createTestDatabase, snapshot } from '../support/db';
import { EMPTY_ADDRESS, actionData, arXmlFormA, arXmlFormB, storedAr, toBase64 } from '../support/oned-sim';
import { runActionProcess, runCliLine, runCliProcess } from '../support/processes';

let t: TestDb | undefined;
const roles: string[] = [];
afterEach(async () => {
  await t?.drop();
  t = undefined;
});
afterAll(() => dropPlatformRoles(roles));

const cli = runCliLine;

const register = (env: Record<string, string>, ar: Record<string, string>, id = '7') =>
  runActionProcess('register_address_range', toBase64(actionData(arXmlFormA({ IPAM_MAD: 'pgipam', ...ar }), EMPTY_ADDRESS)), env, [id]);

describe('VLAN pools', () => {
  it('gives each carved network the lowest free VLAN ID with its bridge, skips reserved IDs, refuses a taken one, and takes it back', async () => {
    t = await createTestDatabase('vlan_pool');
    const env = { PGIPAM_DATABASE_URL: t.url };
    const ok = async (args: string[]) => expect((await cli(env, args)).stderr).toBe('');
    await ok(['vlan-pool', 'add', 'fabric-a', '--ids', '100-102,200', '--bridge', 'br{vlan}', '--phydev', 'bond0', '--vn-mad', '802.1Q']);
    await ok(['vlan-pool', 'reserve', 'fabric-a', '101', '--reason', 'uplink to the core']);
    await ok(['pool', 'add', 'tenants', '--prefix', '10.60.0.0/16', '--vlan-pool', 'fabric-a', '--default']);

    const carve = async (extra: Record<string, string> = {}) => {
      const r = await register(env, { TYPE: 'IP4', SIZE: '10', ...extra });
      return { exit: r.exitCode, reason: r.reason, reply: r.exitCode === 0 ? parseTemplate(r.stdout).values : {} };
    };
    const first = await carve();
    expect(first).toMatchObject({
      exit: 0,
      reply: { VLAN_ID: '100', BRIDGE: 'br100', PHYDEV: 'bond0', VN_MAD: '802.1Q', PGIPAM_SUBNET: '10.60.0.0/28' },
    });
    const second = await carve();
    expect(second.reply).toMatchObject({ VLAN_ID: '102', BRIDGE: 'br102' }); // 101 is reserved
    const named = await carve({ VLAN_ID: '100' });
    expect(named).toEqual({
      exit: 255,
      reason: `VLAN_ID 100 of domain default is taken: by range ${first.reply.PGIPAM_RANGE_ID} of platform "default"`,
      reply: {},
    });
    const reserved = await carve({ VLAN_ID: '101' });
    expect(reserved.reason).toBe('VLAN_ID 101 of domain default is taken: reserved (uplink to the core)');
    // an ID outside every VLAN pool of the domain, named by the AR, is the AR's when free
    expect((await carve({ VLAN_ID: '3000' })).reply).toMatchObject({ VLAN_ID: '3000', BRIDGE: 'br3000' });
    expect((await carve()).reply).toMatchObject({ VLAN_ID: '200' });
    // none left: refused, nothing carved
    const before = await snapshot(t.db);
    expect(await carve()).toEqual({ exit: 255, reason: 'VLAN pool "fabric-a" (domain default) has no free VLAN ID', reply: {} });
    expect(await snapshot(t.db)).toBe(before);

    const found = await cli(env, ['find', '102']);
    expect(found.stdout).toMatch(
      new RegExp(
        `^VLAN 102 of domain default \\(VLAN pool fabric-a\\): range ${second.reply.PGIPAM_RANGE_ID} \\(10\\.60\\.0\\.18\\), platform default, since `,
      ),
    );
    const show = JSON.parse((await cli(env, ['vlan-pool', 'show', 'fabric-a', '--json'])).stdout);
    expect(show).toMatchObject({ ids: '100-102,200', size: 4, used: 3, reserved: 1, free: 0, addressPools: ['tenants'] });
    expect((await cli(env, ['pool', 'show', 'tenants'])).stdout).toMatch(
      /vlan pool fabric-a \(domain default\): 3 held by networks, 1 reserved, 0 free of 4/,
    );

    // unregister gives the ID back; the next network gets it
    const ar = storedAr(first.reply, 0);
    const un = await runActionProcess('unregister_address_range', toBase64(actionData(arXmlFormB(ar), EMPTY_ADDRESS)), env);
    expect([un.exitCode, un.reason]).toEqual([0, '']);
    expect((await carve()).reply).toMatchObject({ VLAN_ID: '100' });
    // a VLAN pool in use cannot go, nor an ID held leave it
    expect((await cli(env, ['vlan-pool', 'rm', 'fabric-a'])).stderr).toMatch(/is used by address pool "tenants"/);
    expect((await cli(env, ['vlan-pool', 'set', 'fabric-a', '--remove-ids', '102'])).stderr).toMatch(
      /VLAN ID 102 is held \(by range \d+\)/,
    );
    await ok(['vlan-pool', 'set', 'fabric-a', '--add-ids', '201-203']);
    expect((await carve()).reply).toMatchObject({ VLAN_ID: '201' });
    const events = await t.db.query<{ event: string; n: number }>(
      "select event, count(*)::int as n from pgipam.history where event like 'vlan%' group by event order by event",
    );
    expect(events.rows).toEqual([
      { event: 'vlan_pool_changed', n: 1 },
      { event: 'vlan_pool_created', n: 1 },
      { event: 'vlan_reserved', n: 1 },
      { event: 'vlan_returned', n: 1 },
      { event: 'vlan_taken', n: 6 },
    ]);
    expect(await checkConsistency(t.db)).toEqual([]);
    // pgipam check finds VLAN bookkeeping damaged behind its back
    await t.db.query(
      "insert into pgipam.vlan_free_extent (vlan_pool_id, first, last) select id, 100, 100 from pgipam.vlan_pool where name = 'fabric-a'",
    );
    expect(await checkConsistency(t.db)).toEqual([
      '1 VLAN IDs both free and held',
      'VLAN pool fabric-a: 3 free + 5 held != 7 IDs in its spans',
    ]);
  });

  it('the database refuses a second holder of an ID in a domain, whoever writes it', async () => {
    t = await createTestDatabase('vlan_unique');
    await t.db.query("insert into pgipam.vlan_allocation (domain, vlan_id, reason, platform) values ('fab', 10, 'x', 'default')");
    await expect(
      t.db.query("insert into pgipam.vlan_allocation (domain, vlan_id, reason, platform) values ('fab', 10, 'y', 'default')"),
    ).rejects.toMatchObject({ code: '23505', constraint: 'vlan_allocation_pkey' });
    await t.db.query("insert into pgipam.vlan_allocation (domain, vlan_id, reason, platform) values ('other', 10, 'y', 'default')");
  });

  it('two platforms racing 8 processes (4 each) for the last 3 IDs: 3 networks, 5 clean refusals, distinct IDs', async () => {
    t = await createTestDatabase('vlan_race');
    const env = { PGIPAM_DATABASE_URL: t.url };
    await cli(env, ['vlan-pool', 'add', 'edge', '--ids', '500-502', '--restricted']);
    await cli(env, ['pool', 'add', 'shared', '--prefix', '10.61.0.0/16', '--vlan-pool', 'edge']);
    const ctx = { requestId: 't', platform: 'default', log: () => {} };
    const envs: Array<Record<string, string>> = [];
    for (const n of ['zone-a', 'zone-b']) {
      const { name, url } = await addTestPlatform(t, n, roles, ctx);
      envs.push({ PGIPAM_DATABASE_URL: url });
      // without a grant, the restricted VLAN pool is refused
      const denied = await register(envs[envs.length - 1]!, { TYPE: 'IP4', SIZE: '5', PGIPAM_POOL: 'shared' });
      expect(denied.reason).toBe(`platform "${name}" may not use VLAN pool "edge": grant it with "pgipam vlan-pool grant edge ${name}"`);
      expect((await cli(env, ['vlan-pool', 'grant', 'edge', name])).code).toBe(0);
    }
    const before = await t.db.query('select count(*)::int as n from pgipam.address_range');
    expect(before.rows[0].n).toBe(0);
    const runs = await Promise.all(
      Array.from({ length: 8 }, (_, i) => register(envs[i % 2]!, { TYPE: 'IP4', SIZE: '5', PGIPAM_POOL: 'shared' }, String(100 + i))),
    );
    const won = runs.filter((r) => r.exitCode === 0).map((r) => parseTemplate(r.stdout).values.VLAN_ID);
    expect(won.sort()).toEqual(['500', '501', '502']);
    expect(runs.filter((r) => r.exitCode !== 0).map((r) => r.reason)).toEqual(
      Array(5).fill('VLAN pool "edge" (domain default) has no free VLAN ID'),
    );
    const ranges = await t.db.query('select count(*)::int as n from pgipam.address_range');
    expect(ranges.rows[0].n).toBe(3); // the refused ones carved nothing
    expect(await checkConsistency(t.db)).toEqual([]);
  });
});

describe('SIZE means usable addresses', () => {
  const lease = (env: Record<string, string>, ar: Record<string, string>) =>
    runActionProcess('get_address', toBase64(actionData(arXmlFormB(ar), '<ADDRESS><SIZE>1</SIZE></ADDRESS>')), env);

  it('carves around reservations: SIZE 20 next to a reserved /25 lands in the free half, and only reserved space left is refused', async () => {
    t = await createTestDatabase('size_reserved');
    const env = { PGIPAM_DATABASE_URL: t.url };
    expect((await cli(env, ['pool', 'add', 'p', '--prefix', '10.171.0.0/24'])).code).toBe(0);
    expect((await cli(env, ['reserve', '10.171.0.0/25', '--reason', 'routers'])).code).toBe(0);
    const subnets: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await register(env, { TYPE: 'IP4', SIZE: '20', PGIPAM_POOL: 'p' });
      expect([r.exitCode, r.reason]).toEqual([0, '']);
      subnets.push(parseTemplate(r.stdout).values.PGIPAM_SUBNET!);
    }
    expect(subnets).toEqual(['10.171.0.128/27', '10.171.0.160/27', '10.171.0.192/27', '10.171.0.224/27']);
    const before = await snapshot(t.db);
    const full = await register(env, { TYPE: 'IP4', SIZE: '20', PGIPAM_POOL: 'p' });
    expect([full.exitCode, full.reason]).toEqual([255, 'pool "p" has no free IPv4 /27 for 20 addresses outside its reservations']);
    expect(await snapshot(t.db)).toBe(before);
  });

  it("never hands a VM the pool's DNS server or gateway, and every one of SIZE addresses leases exactly once", async () => {
    t = await createTestDatabase('size_dns');
    const env = { PGIPAM_DATABASE_URL: t.url };
    expect((await cli(env, ['pool', 'add', 'demo', '--prefix', '10.150.0.0/16', '--dns', '10.150.0.2', '--gateway', '5'])).code).toBe(0);
    const r = await register(env, { TYPE: 'IP4', SIZE: '12', PGIPAM_POOL: 'demo' });
    const reply = parseTemplate(r.stdout).values;
    // .0 network, .2 DNS, .5 gateway: a /28 has only .6 - .14 (9) in a row; a /27 has 12 from .6
    expect(reply).toMatchObject({ PGIPAM_SUBNET: '10.150.0.0/27', GATEWAY: '10.150.0.5', IP: '10.150.0.6', SIZE: '12' });
    const ar = storedAr(reply, 0);
    const got: string[] = [];
    for (let i = 0; i < 12; i++) {
      const g = await lease(env, ar);
      expect([g.exitCode, g.reason]).toEqual([0, '']);
      got.push(/IP\s*=\s*"([0-9.]+)"/.exec(g.stdout)![1]!);
    }
    expect(new Set(got).size).toBe(12);
    expect(got).not.toContain('10.150.0.2');
    expect(got).not.toContain('10.150.0.5');
    expect((await lease(env, ar)).reason).toMatch(/^no free address in range \d+ .*: 12 of 12 in use$/);
    const dns = JSON.parse((await cli(env, ['find', '10.150.0.2', '--json'])).stdout);
    expect(dns.matches[0]).toMatchObject({ pool: 'demo', range: null });
  });

  it('a reservation that lands while registrations run is carved around or lands after, never under a fresh range unseen', async () => {
    t = await createTestDatabase('size_race');
    const env = { PGIPAM_DATABASE_URL: t.url };
    expect((await cli(env, ['pool', 'add', 'q', '--prefix', '10.172.0.0/24'])).code).toBe(0);
    const runs = await Promise.all([
      ...Array.from({ length: 6 }, (_, i) => register(env, { TYPE: 'IP4', SIZE: '20', PGIPAM_POOL: 'q' }, String(10 + i))),
      runCliProcess(['reserve', '10.172.0.64/26', '--reason', 'late routers'], env),
    ]);
    expect(runs.every((r) => ('exitCode' in r ? r.exitCode : r.code) === 0 || ('reason' in r && /no free IPv4/.test(r.reason)))).toBe(true);
    // a range holding reserved addresses was registered before the reservation was made
    const { rows } = await t.db.query<{ id: string; registered: Date; reserved: Date }>(
      `select r.id::text, r.created_at as registered, min(l.created_at) as reserved from pgipam.address_range r
         join pgipam.lease l on l.range_id = r.id and l.kind = 'reservation' group by r.id`,
    );
    for (const row of rows) expect(row.registered.getTime()).toBeLessThanOrEqual(row.reserved.getTime());
    expect(await checkConsistency(t.db)).toEqual([]);
  });
});
