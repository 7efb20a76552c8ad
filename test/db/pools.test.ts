// Pools that carve networks, reservations and holds, on a real PostgreSQL.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type TestDb, checkConsistency, createTestDatabase, snapshot, testContext } from '../support/db';
import { allocateAddress, freeAddress, ipv4Layout, registerAddressRange, unregisterAddressRange } from '../../src/allocator/index';
import { getAddress } from '../../src/allocator/get-address';
import { addPool, poolInfo, removePool, setPool } from '../../src/admin/pool-admin';
import { find, history } from '../../src/admin/lookups';
import { reserve, unreserve } from '../../src/admin/reservations';
import { addSpace } from '../../src/admin/spaces';
import { rangeCells, removeRange, showRange } from '../../src/admin/range-admin';
import { poolMapText, rangeMapText } from '../../src/cli/render';
import { cidrCover, getPool } from '../../src/allocator/pool-space';

// Every test gets a database of its own and sets up the pools it needs.
let t: TestDb;
const ctx = testContext('r1');
beforeEach(async () => {
  t = await createTestDatabase('pools');
});
afterEach(async () => t?.drop());

type Attrs = Record<string, string>;
const register = async (ar: Attrs) => (await registerAddressRange(t.db, { ar: { IPAM_MAD: 'pgipam', ...ar }, address: {} }, ctx)).reply;
const unregister = (ar: Attrs) => unregisterAddressRange(t.db, { ar, address: {} }, ctx);

// The default pool "cloud", IPv4 and IPv6.
const cloudPool = () =>
  addPool(
    t.db,
    'cloud',
    {
      prefixes: ['10.20.0.0/16', '2001:db8:100::/48'],
      dns: '10.20.0.2 10.20.0.3',
      searchDomain: 'cloud.example',
      mtu: 1450,
      vlanId: 120,
      isDefault: true,
      extra: { OWNER: 'ops team' },
    },
    ctx,
  );

// The pool "lab" (172.30.0.0/22) holding three ranges: an explicit 172.30.1.0/24 and two carved /24s.
async function labPool(): Promise<{ explicit: Attrs; carved: Attrs[] }> {
  await addPool(t.db, 'lab', { prefixes: ['172.30.0.0/22'], gateway: 'none' }, ctx);
  const explicit = await register({ TYPE: 'IP4', IP: '172.30.1.0', SIZE: '256', NETWORK_MASK: '255.255.255.0' });
  const carved = [
    await register({ TYPE: 'IP4', SIZE: '254', PGIPAM_POOL: 'lab' }),
    await register({ TYPE: 'IP4', SIZE: '254', PGIPAM_POOL: 'lab' }),
  ];
  return { explicit, carved };
}

describe('IPv4 subnet layout', () => {
  it('picks the smallest subnet that holds SIZE usable addresses beside network, broadcast and gateway', () => {
    expect(ipv4Layout(1, 'first')).toEqual({ hostBits: 2, gateway: 1, start: 2, arSize: 1 });
    expect(ipv4Layout(2, 'first')).toEqual({ hostBits: 3, gateway: 1, start: 2, arSize: 2 });
    expect(ipv4Layout(253, 'first')).toEqual({ hostBits: 8, gateway: 1, start: 2, arSize: 253 });
    expect(ipv4Layout(254, 'first').hostBits).toBe(9);
    expect(ipv4Layout(254, 'none')).toEqual({ hostBits: 8, gateway: null, start: 1, arSize: 254 });
    expect(ipv4Layout(100, 'last')).toEqual({ hostBits: 7, gateway: 126, start: 1, arSize: 100 });
    // a gateway in the middle: the AR goes around it, all SIZE addresses leasable
    expect(ipv4Layout(10, '5')).toEqual({ hostBits: 5, gateway: 5, start: 6, arSize: 10 });
    expect(ipv4Layout(4, '5')).toEqual({ hostBits: 3, gateway: 5, start: 1, arSize: 4 });
  });
  it('covers spans with aligned blocks', () => {
    expect(cidrCover(4, 10n, 20n).map((b) => `${b.network}/${b.prefixLength}`)).toEqual(['10/31', '12/30', '16/30', '20/32']);
    expect(cidrCover(4, 0n, 2n ** 32n - 1n)).toEqual([{ family: 4, network: 0n, prefixLength: 0 }]);
  });
});

describe('carving from a pool', () => {
  it('carves the smallest aligned free subnet and replies with the network attributes', async () => {
    await cloudPool();
    const ar = await register({ TYPE: 'IP4', SIZE: '100' });
    expect(ar).toMatchObject({
      TYPE: 'IP4',
      IP: '10.20.0.4', // the pool's DNS servers .2 and .3 are never handed to a VM
      SIZE: '100',
      NETWORK_ADDRESS: '10.20.0.0',
      NETWORK_MASK: '255.255.255.128',
      GATEWAY: '10.20.0.1',
      DNS: '10.20.0.2 10.20.0.3',
      SEARCH_DOMAIN: 'cloud.example',
      GUEST_MTU: '1450',
      VLAN_ID: '120',
      OWNER: 'ops team',
      PGIPAM_POOL: 'cloud',
      PGIPAM_SUBNET: '10.20.0.0/25',
    });
    const next = await register({ TYPE: 'IP4', SIZE: '200', PGIPAM_POOL: 'cloud' });
    expect(next.PGIPAM_SUBNET).toBe('10.20.1.0/24');
    const small = await register({ TYPE: 'IP4', SIZE: '5' });
    expect(small.PGIPAM_SUBNET).toBe('10.20.0.128/29'); // best fit: the free /25's buddy, split
    // the user's own attributes win over the pool's
    const own = await register({ TYPE: 'IP4', SIZE: '5', DNS: '9.9.9.9' });
    expect(own.DNS).toBe('9.9.9.9');
  });

  it('never leases network, broadcast or gateway of a carved subnet', async () => {
    await cloudPool();
    const ar = await register({ TYPE: 'IP4', SIZE: '1' });
    expect(ar.NETWORK_MASK).toBe('255.255.255.252');
    expect((await getAddress(t.db, { ar, address: { SIZE: '1' } }, ctx)).ip).toBe(ar.IP);
    await expect(getAddress(t.db, { ar, address: { SIZE: '1' } }, ctx)).rejects.toThrow(/no free address/);
  });

  it('carves a /64 for IP6 and IP4_6 ARs and a static /64 for IP6_STATIC', async () => {
    await cloudPool();
    const v6 = await register({ TYPE: 'IP6', SIZE: '1000', PGIPAM_POOL: 'cloud' });
    expect(v6.GLOBAL_PREFIX).toBe('2001:db8:100::');
    const dual = await register({ TYPE: 'IP4_6', SIZE: '50' });
    expect(dual.GLOBAL_PREFIX).toBe('2001:db8:100:1::');
    expect(dual.IP).toMatch(/^10\.20\./);
    const st = await register({ TYPE: 'IP6_STATIC', PGIPAM_POOL: 'cloud', SIZE: '100' });
    expect(st).toMatchObject({ IP6: '2001:db8:100:2::2', PREFIX_LENGTH: '64', GATEWAY6: '2001:db8:100:2::1', SIZE: '100' });
    await addPool(t.db, 'ula', { prefixes: ['fd00:42::/56'] }, ctx);
    const ula = await register({ TYPE: 'IP6', SIZE: '10', PGIPAM_POOL: 'ula' });
    expect(ula.ULA_PREFIX).toBe('fd00:42::');
    expect(ula.GLOBAL_PREFIX).toBeUndefined();
  });

  it('returns subnets to the pool on unregister and merges them back into whole blocks', async () => {
    await addPool(t.db, 'tiny', { prefixes: ['192.168.8.0/24'] }, ctx);
    const a = await register({ TYPE: 'IP4', SIZE: '60', PGIPAM_POOL: 'tiny' });
    const b = await register({ TYPE: 'IP4', SIZE: '60', PGIPAM_POOL: 'tiny' });
    const c = await register({ TYPE: 'IP4', SIZE: '120', PGIPAM_POOL: 'tiny' });
    expect([a.PGIPAM_SUBNET, b.PGIPAM_SUBNET, c.PGIPAM_SUBNET]).toEqual(['192.168.8.0/26', '192.168.8.64/26', '192.168.8.128/25']);
    const before = await snapshot(t.db);
    await expect(register({ TYPE: 'IP4', SIZE: '1', PGIPAM_POOL: 'tiny' })).rejects.toThrow(/pool "tiny" has no free IPv4 \/30/);
    expect(await snapshot(t.db)).toBe(before);
    await unregister(b);
    await unregister(a);
    await unregister(c);
    const pool = (await getPool(t.db, 'tiny'))!;
    const info = await poolInfo(t.db, pool);
    expect(info.prefixes[0]).toMatchObject({ carved: 0n, free: 256n });
    const { rows } = await t.db.query('select count(*)::int as n from pgipam.pool_free_block where pool_id = $1', [pool.id]);
    expect(rows[0].n).toBe(1);
  });

  it('takes an explicit range inside a pool out of it, and refuses one that is taken', async () => {
    const { explicit: x, carved } = await labPool();
    expect(x).toMatchObject({ PGIPAM_POOL: 'lab', PGIPAM_SUBNET: '172.30.1.0/24' });
    // carving skipped 172.30.1.0/24
    expect(carved.map((c) => c.PGIPAM_SUBNET)).toEqual(['172.30.0.0/24', '172.30.2.0/24']);
    await expect(register({ TYPE: 'IP4', IP: '172.30.2.10', SIZE: '5', PGIPAM_SPACE: 'default' })).rejects.toThrow(
      /172\.30\.2\.10\/31 of pool "lab" is already taken by range \d+|overlaps range/,
    );
    await expect(register({ TYPE: 'IP4', IP: '172.30.3.250', SIZE: '10' })).rejects.toThrow(/straddles the edge of a pool prefix/);
    await expect(register({ TYPE: 'IP4', IP: '172.30.3.0', SIZE: '10', PGIPAM_POOL: 'cloud' })).rejects.toThrow(
      /172\.30\.3\.0 lies in pool lab, not in PGIPAM_POOL cloud/,
    );
    expect(await checkConsistency(t.db)).toEqual([]);
  });

  it('refuses what it cannot carve with one clear reason, changing nothing', async () => {
    await labPool();
    const before = await snapshot(t.db);
    await expect(register({ TYPE: 'IP4', SIZE: '10', PGIPAM_POOL: 'nope' })).rejects.toThrow(/pool "nope" does not exist/);
    await expect(register({ TYPE: 'IP4', SIZE: '100000', PGIPAM_POOL: 'lab' })).rejects.toThrow(/no free IPv4 \/15/);
    await expect(register({ TYPE: 'IP6', SIZE: '10', PGIPAM_POOL: 'lab' })).rejects.toThrow(/no free IPv6 \/64/);
    await expect(register({ TYPE: 'IP4', SIZE: '10', PGIPAM_POOL: 'lab', BAD: 'x]]>' })).rejects.toThrow(/\]\]>/);
    expect(await snapshot(t.db)).toBe(before);
  });

  it('pool add/set/rm keep their rules', async () => {
    await cloudPool();
    await labPool();
    await expect(addPool(t.db, 'dup', { prefixes: ['10.20.128.0/17'] }, ctx)).rejects.toThrow(/overlaps a prefix of pool "cloud"/);
    await expect(addPool(t.db, 'hostbits', { prefixes: ['10.99.0.1/16'] }, ctx)).rejects.toThrow(/host bits set/);
    await expect(removePool(t.db, 'lab', false, ctx)).rejects.toThrow(/still has 3 ranges/);
    await expect(setPool(t.db, 'lab', { removePrefixes: ['172.30.0.0/22'] }, ctx)).rejects.toThrow(/cannot remove 172\.30\.0\.0\/22/);
    await setPool(t.db, 'lab', { addPrefixes: ['172.31.0.0/24'], dns: '1.1.1.1' }, ctx);
    await setPool(t.db, 'lab', { removePrefixes: ['172.31.0.0/24'] }, ctx);
    expect((await getPool(t.db, 'lab'))!.dns).toBe('1.1.1.1');
    // a new prefix adopts a range registered before it existed
    await register({ TYPE: 'IP4', IP: '10.77.0.10', SIZE: '10' });
    await addPool(t.db, 'adopt', { prefixes: ['10.77.0.0/24'] }, ctx);
    const adopt = await poolInfo(t.db, (await getPool(t.db, 'adopt'))!);
    expect(adopt.ranges).toBe(1);
    expect(adopt.prefixes[0]!.carved).toBe(10n);
    expect(poolMapText(adopt.prefixes[0]!.cells)).toBe('..:##' + '.'.repeat(59)); // 10.77.0.10-19 in cells of 4 addresses
    const r = await removePool(t.db, 'adopt', true, ctx);
    expect(r.detached).toBe(1);
  });
});

describe('reservations, holds, find and history', () => {
  it('reserves inside ranges (refusing leased addresses) and pools (inherited by later ranges)', async () => {
    await addSpace(t.db, 'dc2', '', ctx);
    await addPool(t.db, 'dc2pool', { space: 'dc2', prefixes: ['10.50.0.0/24'], gateway: 'none' }, ctx);
    await reserve(t.db, '10.50.0.10-10.50.0.12', 'routers', 'dc2', ctx);
    const ar = await register({ TYPE: 'IP4', SIZE: '30', PGIPAM_POOL: 'dc2pool' });
    // the reserved .10-.12 leave no 30 leasable addresses in 10.50.0.0/27: carved around them
    expect([ar.PGIPAM_SUBNET, ar.IP, ar.SIZE]).toEqual(['10.50.0.32/27', '10.50.0.33', '30']);
    await allocateAddress(t.db, { ar, address: { IP: '10.50.0.40', SIZE: '1' } }, ctx);
    await expect(reserve(t.db, '10.50.0.40', 'appliance', 'dc2', ctx)).rejects.toThrow(/cannot reserve 10\.50\.0\.40: it is allocated/);
    const r = await reserve(t.db, '10.50.0.41', 'hardware appliance', 'dc2', ctx);
    expect(r.inRanges).toEqual([{ rangeId: Number(ar.PGIPAM_RANGE_ID), count: 1 }]);
    expect(r.inPools).toEqual([{ pool: 'dc2pool', count: '1' }]);
    const found = await find(t.db, '10.50.0.41');
    expect(found.matches[0]).toMatchObject({
      space: 'dc2',
      pool: 'dc2pool',
      poolReservation: 'hardware appliance',
      lease: { kind: 'reservation', note: 'hardware appliance' },
    });
    const rng = await showRange(t.db, Number(ar.PGIPAM_RANGE_ID));
    expect(rng.byKind).toMatchObject({ reservation: 1, allocation: 1 });
    expect(rangeMapText(await rangeCells(t.db, rng.range))).toHaveLength(30);
    const u = await unreserve(t.db, '10.50.0.41', 'dc2', ctx);
    expect(u).toEqual({ released: 1, poolReservations: 1 });
    await allocateAddress(t.db, { ar, address: { IP: '10.50.0.41', SIZE: '1' } }, ctx);
    await expect(reserve(t.db, '10.99.99.99', 'x', 'dc2', ctx)).rejects.toThrow(/in no range and no pool/);
    // an address in the pool but in no range: its history is found by address
    await reserve(t.db, '10.50.0.200', 'spare', 'dc2', ctx);
    const poolOnly = await find(t.db, '10.50.0.200');
    expect(poolOnly.matches[0]).toMatchObject({ space: 'dc2', pool: 'dc2pool', range: null, poolReservation: 'spare' });
    expect(poolOnly.matches[0]!.history.map((h) => h.event)).toEqual(['address_reserved']);
  });

  it('holds freed addresses for the pool hold time', async () => {
    await addPool(t.db, 'held', { prefixes: ['10.60.0.0/24'], holdSeconds: 600, gateway: 'none' }, ctx);
    const ar = await register({ TYPE: 'IP4', SIZE: '2', PGIPAM_POOL: 'held' });
    const a = await getAddress(t.db, { ar, address: { SIZE: '1' } }, ctx);
    await getAddress(t.db, { ar, address: { SIZE: '1' } }, ctx);
    await freeAddress(t.db, { ar, address: { IP: a.ip, SIZE: '1' } }, ctx);
    await expect(getAddress(t.db, { ar, address: { SIZE: '1' } }, ctx)).rejects.toThrow(/no free address/);
    const f = await find(t.db, a.ip);
    expect(f.matches[0]!.lease).toMatchObject({ kind: 'hold' });
    expect(f.matches[0]!.lease!.heldUntil!.getTime()).toBeGreaterThan(Date.now() + 500_000);
    expect(f.matches[0]!.history.map((h) => h.event)).toEqual(['address_freed', 'address_leased', 'range_registered']);
  });

  it('keeps one history row per change, append-only', async () => {
    // one of each change
    await cloudPool();
    await addSpace(t.db, 'dc3', '', ctx);
    await setPool(t.db, 'cloud', { dns: '10.20.0.53' }, ctx);
    await addPool(t.db, 'brief', { prefixes: ['10.21.0.0/24'] }, ctx);
    await removePool(t.db, 'brief', false, ctx);
    const ar = await register({ TYPE: 'IP4', SIZE: '20' });
    const leased = await getAddress(t.db, { ar, address: { SIZE: '1' } }, ctx);
    await allocateAddress(t.db, { ar, address: { IP: '10.20.0.9', SIZE: '1' } }, ctx);
    await freeAddress(t.db, { ar, address: { IP: leased.ip, SIZE: '1' } }, ctx);
    await reserve(t.db, '10.20.0.12', 'test', 'default', ctx);
    await unreserve(t.db, '10.20.0.12', 'default', ctx);
    await unregister(ar);
    const rows = await history(t.db, { limit: 1000 });
    const events = new Set(rows.map((r) => r.event));
    for (const e of [
      'pool_created',
      'pool_changed',
      'pool_removed',
      'space_created',
      'range_registered',
      'range_unregistered',
      'address_leased',
      'address_allocated',
      'address_freed',
      'address_reserved',
      'address_unreserved',
    ]) {
      expect(events).toContain(e);
    }
    expect(rows.find((r) => r.event === 'address_allocated')).toMatchObject({ platform: 'default', requestId: 'r1' });
    await expect(t.db.query('update pgipam.history set event = $1', ['x'])).rejects.toThrow(/append-only/);
  });

  it('range rm refuses a range with leases unless forced and returns its subnet', async () => {
    await addPool(t.db, 'held', { prefixes: ['10.60.0.0/24'], holdSeconds: 600, gateway: 'none' }, ctx);
    const ar = await register({ TYPE: 'IP4', SIZE: '10', PGIPAM_POOL: 'held' });
    await getAddress(t.db, { ar, address: { SIZE: '1' } }, ctx);
    await expect(removeRange(t.db, Number(ar.PGIPAM_RANGE_ID), false, ctx)).rejects.toThrow(/still has 1 leased/);
    await removeRange(t.db, Number(ar.PGIPAM_RANGE_ID), true, ctx);
    expect((await register({ TYPE: 'IP4', SIZE: '10', PGIPAM_POOL: 'held' })).PGIPAM_SUBNET).toBe(ar.PGIPAM_SUBNET);
    expect(await checkConsistency(t.db)).toEqual([]);
  });
});
