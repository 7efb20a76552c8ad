// The allocator library against a real PostgreSQL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseIPv4 } from '../../src/address';
import { type TestDb, checkConsistency, createTestDatabase, snapshot, testContext } from '../support/db';
import { allocateAddress, freeAddress, registerAddressRange, unregisterAddressRange } from '../../src/allocator/index';
import { getAddress } from '../../src/allocator/get-address';
import { addSpace } from '../../src/admin/spaces';

let t: TestDb;
const ctx = testContext();
beforeAll(async () => {
  t = await createTestDatabase('allocator');
});
afterAll(async () => t?.drop());

type Attrs = Record<string, string>;
const register = async (ar: Attrs) => (await registerAddressRange(t.db, { ar: { IPAM_MAD: 'pgipam', ...ar }, address: {} }, ctx)).reply;
const get = (ar: Attrs, size = 1) => getAddress(t.db, { ar, address: { SIZE: String(size) } }, ctx);
const alloc = (ar: Attrs, address: Attrs) => allocateAddress(t.db, { ar, address: { SIZE: '1', ...address } }, ctx);
const free = (ar: Attrs, address: Attrs) => freeAddress(t.db, { ar, address: { SIZE: '1', ...address } }, ctx);
const unregister = (ar: Attrs) => unregisterAddressRange(t.db, { ar, address: {} }, ctx);

describe('register_address_range', () => {
  it('echoes every attribute and adds what pgipam knows about the network', async () => {
    const reply = await register({
      TYPE: 'ip4',
      IP: '10.1.0.10',
      SIZE: '100',
      NETWORK_ADDRESS: '10.1.0.0/24',
      GATEWAY: '10.1.0.1',
      DNS: '1.1.1.1 8.8.8.8',
      SECURITY_GROUPS: '0,100',
      CUSTOM_X: 'y',
    });
    expect(reply).toMatchObject({
      IPAM_MAD: 'pgipam',
      TYPE: 'IP4',
      IP: '10.1.0.10',
      SIZE: '100',
      NETWORK_ADDRESS: '10.1.0.0',
      NETWORK_MASK: '255.255.255.0',
      GATEWAY: '10.1.0.1',
      DNS: '1.1.1.1 8.8.8.8',
      SECURITY_GROUPS: '0,100',
      CUSTOM_X: 'y',
      PGIPAM_SPACE: 'default',
    });
    expect(reply.PGIPAM_RANGE_ID).toMatch(/^\d+$/);
  });

  it('registers every AR type', async () => {
    const eth = await register({ TYPE: 'ETHER', SIZE: '64', MAC: '02:aa:00:00:00:00' });
    expect(eth).toMatchObject({ TYPE: 'ETHER', SIZE: '64', MAC: '02:aa:00:00:00:00' });
    const slaac = await register({ TYPE: 'IP6', SIZE: '1000', GLOBAL_PREFIX: '2001:db8:1::', ULA_PREFIX: 'fd00:1::' });
    expect(slaac).toMatchObject({ TYPE: 'IP6', GLOBAL_PREFIX: '2001:db8:1::', ULA_PREFIX: 'fd00:1::' });
    const st = await register({ TYPE: 'IP6_STATIC', IP6: '2001:db8:2::100', PREFIX_LENGTH: '64' });
    expect(st).toMatchObject({ TYPE: 'IP6_STATIC', IP6: '2001:db8:2::100', PREFIX_LENGTH: '64', SIZE: String(2 ** 32 - 0x100) });
    const dual = await register({ TYPE: 'IP4_6', IP: '10.2.0.1', SIZE: '10', GLOBAL_PREFIX: '2001:db8:3::' });
    expect(dual).toMatchObject({ TYPE: 'IP4_6', IP: '10.2.0.1' });
    const dualStatic = await register({ TYPE: 'IP4_6_STATIC', IP: '10.3.0.1', SIZE: '10', IP6: '2001:db8:4::1', PREFIX_LENGTH: '64' });
    expect(dualStatic).toMatchObject({ TYPE: 'IP4_6_STATIC', IP: '10.3.0.1', IP6: '2001:db8:4::1' });
  });

  it.each([
    [{ TYPE: 'IP5', IP: '10.9.0.1', SIZE: '1' }, /TYPE "IP5" is unknown/],
    [{ IP: '10.9.0.1', SIZE: '1' }, /no TYPE/],
    [{ TYPE: 'IP4', SIZE: '10' }, /has no IP and names no pool to carve one from/],
    [{ TYPE: 'IP4', IP: '10.9.0.1' }, /SIZE is missing/],
    [{ TYPE: 'IP4', IP: '10.9.0.1', SIZE: '0' }, /minimum/],
    [{ TYPE: 'IP4', IP: '10.9.0.1', SIZE: '-4' }, /whole number/],
    [{ TYPE: 'IP4', IP: '10.9.0.1', SIZE: 'ten' }, /whole number/],
    [{ TYPE: 'IP4', IP: '255.255.255.250', SIZE: '10' }, /past 255.255.255.255/],
    [{ TYPE: 'IP4', IP: '10.9.0.300', SIZE: '1' }, /octet above 255/],
    [{ TYPE: 'IP4', IP: '10.9.0.1', SIZE: '300', NETWORK_MASK: '255.255.255.0' }, /does not fit in its network/],
    [{ TYPE: 'IP4', IP: '10.9.0.1', SIZE: '3', SHARED: 'YES' }, /shared ARs/i],
    [{ TYPE: 'IP6_STATIC', IP6: '2001:db8::zz', PREFIX_LENGTH: '64', SIZE: '4' }, /not a valid IPv6/],
    [{ TYPE: 'IP6_STATIC', IP6: '2001:db8::ffff:fffe', PREFIX_LENGTH: '64', SIZE: '4' }, /wrap the low 32 bits/],
    [{ TYPE: 'IP6', SIZE: '4', GLOBAL_PREFIX: '2001:db8::/64' }, /no \/length/],
    [{ TYPE: 'IP4', IP: '10.9.0.1', SIZE: '3', PGIPAM_SPACE: 'nope' }, /address space "nope" does not exist/],
    [{ TYPE: 'IP4', IP: '10.9.0.1', SIZE: '3', BAD: 'a]]>b' }, /\]\]>/],
  ])('refuses %j and changes nothing', async (ar, re) => {
    const before = await snapshot(t.db);
    await expect(register(ar as Attrs)).rejects.toThrow(re);
    expect(await snapshot(t.db)).toBe(before);
  });

  it('refuses an overlap in one space, naming the other range, and allows it in another space', async () => {
    const a = await register({ TYPE: 'IP4', IP: '172.16.0.0', SIZE: '256' });
    await expect(register({ TYPE: 'IP4', IP: '172.16.0.200', SIZE: '100' })).rejects.toThrow(
      new RegExp(
        `overlaps range ${a.PGIPAM_RANGE_ID} \\(IP4 172.16.0.0 - 172.16.0.255.*remove it with "pgipam range rm ${a.PGIPAM_RANGE_ID}"`,
      ),
    );
    await addSpace(t.db, 'vlan42', 'tenant VLAN 42', ctx);
    const b = await register({ TYPE: 'IP4', IP: '172.16.0.0', SIZE: '256', PGIPAM_SPACE: 'vlan42' });
    expect(b.PGIPAM_SPACE).toBe('vlan42');
    // adjacent is not overlapping
    await register({ TYPE: 'IP4', IP: '172.16.1.0', SIZE: '1' });
  });

  it('keeps network, broadcast and gateway out of an explicit AR: trimmed off its ends, refused in its middle (SIZE is what get_address can hand out)', async () => {
    const ar = await register({ TYPE: 'IP4', IP: '192.168.50.0', SIZE: '256', NETWORK_MASK: '255.255.255.0', GATEWAY: '192.168.50.254' });
    expect([ar.IP, ar.SIZE]).toEqual(['192.168.50.1', '253']);
    const got: string[] = [];
    for (let i = 0; i < 253; i++) got.push((await get(ar)).ip);
    expect([got[0], got[252], new Set(got).size]).toEqual(['192.168.50.1', '192.168.50.253', 253]);
    await expect(get(ar)).rejects.toThrow(/no free address .*253 of 253 in use/);
    const before = await snapshot(t.db);
    await expect(
      register({ TYPE: 'IP4', IP: '192.168.51.1', SIZE: '20', NETWORK_MASK: '255.255.255.0', GATEWAY: '192.168.51.10' }),
    ).rejects.toThrow(
      "the AR's 20 addresses 192.168.51.1 - 192.168.51.20 include 1 that pgipam keeps out of allocation (192.168.51.10 (gateway)): only 19 could be leased while oned counts 20; start the AR after them or end it before",
    );
    expect(await snapshot(t.db)).toBe(before);
  });
});

describe('get_address', () => {
  it('leases first-fit contiguous blocks and never hands out an address twice', async () => {
    const ar = await register({ TYPE: 'IP4', IP: '10.10.0.0', SIZE: '16' });
    expect((await get(ar)).ip).toBe('10.10.0.0');
    expect((await get(ar, 4)).ip).toBe('10.10.0.1');
    expect((await get(ar)).ip).toBe('10.10.0.5');
    await free(ar, { IP: '10.10.0.2' }); // a hole of 1 inside the block
    expect((await get(ar, 2)).ip).toBe('10.10.0.6'); // the hole is too small for 2
    expect((await get(ar)).ip).toBe('10.10.0.2'); // but takes 1
    const rest = await get(ar, 8);
    expect(rest.ip).toBe('10.10.0.8');
    await expect(get(ar)).rejects.toThrow(/no free address in range .*: 16 of 16 in use/);
    expect(await checkConsistency(t.db)).toEqual([]);
  });

  it('refuses SIZE larger than the range and non-IPv4 ranges, changing nothing', async () => {
    const ar = await register({ TYPE: 'IP4', IP: '10.11.0.0', SIZE: '8' });
    const before = await snapshot(t.db);
    await expect(get(ar, 9)).rejects.toThrow(/larger than range/);
    await expect(getAddress(t.db, { ar, address: { SIZE: '0' } }, ctx)).rejects.toThrow(/minimum/);
    await expect(getAddress(t.db, { ar, address: { SIZE: 'x' } }, ctx)).rejects.toThrow(/whole number/);
    const eth = await register({ TYPE: 'ETHER', SIZE: '8' });
    const before2 = await snapshot(t.db);
    await expect(get(eth)).rejects.toThrow(/get_address needs an IPv4 range/);
    expect(await snapshot(t.db)).toBe(before2);
    expect(before).not.toBe(before2);
  });

  it('finds a range by its first address when PGIPAM_RANGE_ID is missing, and refuses a mismatching AR', async () => {
    const ar = await register({ TYPE: 'IP4', IP: '10.12.0.0', SIZE: '8' });
    const withoutId = { ...ar };
    delete withoutId.PGIPAM_RANGE_ID;
    expect((await get(withoutId)).ip).toBe('10.12.0.0');
    await expect(get({ ...ar, IP: '10.12.0.1' })).rejects.toThrow(/does not describe pgipam range .*IP 10.12.0.1 is not 10.12.0.0/);
    await expect(get({ ...ar, PGIPAM_RANGE_ID: '999999' })).rejects.toThrow(/pgipam has no range 999999/);
  });

  it('stays inside a SIZE that oned shrank with updatear', async () => {
    const ar = await register({ TYPE: 'IP4', IP: '10.13.0.0', SIZE: '8' });
    await get({ ...ar, SIZE: '2' }, 2);
    await expect(get({ ...ar, SIZE: '2' })).rejects.toThrow(/no free address/);
    expect((await get(ar)).ip).toBe('10.13.0.2');
  });
});

describe('allocate_address and free_address', () => {
  it('allocates a given IP, refuses it again with the holder, frees one address out of a block', async () => {
    const ar = await register({ TYPE: 'IP4', IP: '10.20.0.0', SIZE: '32' });
    await alloc(ar, { IP: '10.20.0.7' });
    await expect(alloc(ar, { IP: '10.20.0.7' })).rejects.toThrow(
      /10.20.0.7 is not free: 10.20.0.7 allocated by allocate_address since .* request t/,
    );
    await expect(alloc(ar, { IP: '10.20.0.5', SIZE: '4' })).rejects.toThrow(/not free/);
    const block = await get(ar, 4);
    expect(block.ip).toBe('10.20.0.0');
    const before = await snapshot(t.db);
    await free(ar, { IP: '10.20.0.2' });
    expect(await snapshot(t.db)).not.toBe(before);
    const after = await snapshot(t.db);
    await free(ar, { IP: '10.20.0.2' }); // already free: succeeds, changes nothing
    expect(await snapshot(t.db)).toBe(after);
    await alloc(ar, { IP: '10.20.0.2' });
    await free(ar, { IP: '10.20.0.31' }); // never leased: fine
    expect(await checkConsistency(t.db)).toEqual([]);
  });

  it('refuses addresses outside the range and malformed ones, changing nothing', async () => {
    const ar = await register({ TYPE: 'IP4', IP: '10.21.0.0', SIZE: '8' });
    const before = await snapshot(t.db);
    await expect(alloc(ar, { IP: '10.21.0.8' })).rejects.toThrow(/outside range/);
    await expect(alloc(ar, { IP: '10.20.255.255' })).rejects.toThrow(/outside range/);
    await expect(alloc(ar, { IP: '10.21.0.6', SIZE: '3' })).rejects.toThrow(/runs past the end/);
    await expect(alloc(ar, { IP: '10.21.0.x' })).rejects.toThrow(/not an IPv4/);
    await expect(alloc(ar, {})).rejects.toThrow(/ADDRESS has no IP/);
    await expect(free(ar, { IP: '10.22.0.1' })).rejects.toThrow(/outside range/);
    expect(await snapshot(t.db)).toBe(before);
  });

  it('uses oned index arithmetic for static IPv6 and MAC', async () => {
    const ar = await register({ TYPE: 'IP6_STATIC', IP6: '2001:db8:9::fff0', PREFIX_LENGTH: '64', SIZE: '64', MAC: '02:00:00:00:ff:f0' });
    await alloc(ar, { IP6: '2001:db8:9::fff5' });
    await expect(alloc(ar, { IP6: '2001:db8:9:0:0:0:0:fff5' })).rejects.toThrow(/not free/);
    await expect(alloc(ar, { MAC: '02:00:00:00:ff:f5' })).rejects.toThrow(/not free/); // same index by MAC
    await expect(alloc(ar, { IP6: '2001:db8:9::1:fff5' })).rejects.toThrow(/outside/);
    await expect(alloc(ar, { IP6: '2001:db8:9::fff5/64' })).rejects.toThrow(/not a valid IPv6/);
    const eth = await register({ TYPE: 'ETHER', SIZE: '16' });
    await alloc({ ...eth, MAC: '02:00:aa:bb:cc:00' }, { MAC: '02:00:aa:bb:cc:03' });
    await expect(alloc({ ...eth, MAC: '02:00:aa:bb:cc:00' }, { MAC: '02:00:aa:bb:cc:03' })).rejects.toThrow(/not free/);
    await free({ ...eth, MAC: '02:00:aa:bb:cc:00' }, { MAC: '02:00:aa:bb:cc:03' });
  });

  it('puts freed addresses on hold when the range asks for it; an explicit allocate still works', async () => {
    const ar = await register({ TYPE: 'IP4', IP: '10.30.0.0', SIZE: '2', PGIPAM_HOLD_SECONDS: '3600' });
    await get(ar);
    await get(ar);
    await free(ar, { IP: '10.30.0.0' });
    await expect(get(ar)).rejects.toThrow(/no free address/); // held
    const c = testContext();
    const r = await allocateAddress(t.db, { ar, address: { IP: '10.30.0.0', SIZE: '1' } }, c);
    expect(r.wasHeld).toBe(true);
    expect(c.lines.join()).toMatch(/was on hold/);
    await free(ar, { IP: '10.30.0.1' });
    await t.db.query(`update pgipam.lease set held_until = now() - interval '1 second' where kind = 'hold'`);
    expect((await get(ar)).ip).toBe('10.30.0.1'); // hold expired
    expect(await checkConsistency(t.db)).toEqual([]);
  });
});

describe('unregister_address_range', () => {
  it('releases the leases, and succeeds when the range is already gone', async () => {
    const ar = await register({ TYPE: 'IP4', IP: '10.40.0.0', SIZE: '8' });
    await get(ar, 3);
    const r = await unregister(ar);
    expect(r.released).toBe(3);
    const { rows } = await t.db.query('select count(*)::int as n from pgipam.lease where range_id = $1', [ar.PGIPAM_RANGE_ID]);
    expect(rows[0].n).toBe(0);
    expect((await unregister(ar)).rangeId).toBeNull();
    // the space is free again
    await register({ TYPE: 'IP4', IP: '10.40.0.0', SIZE: '8' });
  });
  it('refuses to remove a range the AR does not describe', async () => {
    const ar = await register({ TYPE: 'IP4', IP: '10.41.0.0', SIZE: '8' });
    const before = await snapshot(t.db);
    await expect(unregister({ ...ar, IP: '10.41.0.1' })).rejects.toThrow(/does not describe/);
    expect(await snapshot(t.db)).toBe(before);
  });
});

describe('scale: no scan over leases or addresses', () => {
  it('handles a /8 and an IPv6 static range of 2^32 - 1 addresses (the most oned can hold)', async () => {
    const big = await register({ TYPE: 'IP4', IP: '11.0.0.0', SIZE: String(2 ** 24) });
    expect((await get(big, 1000)).ip).toBe('11.0.0.0');
    await alloc(big, { IP: '11.255.255.255' });
    expect((await get(big)).ip).toBe('11.0.3.232');
    await expect(register({ TYPE: 'IP6_STATIC', IP6: '2001:db8:ffff::', PREFIX_LENGTH: '64', SIZE: String(2 ** 32) })).rejects.toThrow(
      /AR SIZE 4294967296 is above the maximum of 4294967295/,
    );
    const huge = await register({ TYPE: 'IP6_STATIC', IP6: '2001:db8:ffff::', PREFIX_LENGTH: '64' });
    expect(huge.SIZE).toBe('4294967295');
    await alloc(huge, { IP6: '2001:db8:ffff::ffff:fffe' });
    await expect(alloc(huge, { IP6: '2001:db8:ffff::ffff:ffff' })).rejects.toThrow(/outside/);
    await alloc(huge, { IP6: '2001:db8:ffff::' });
    await expect(alloc(huge, { IP6: '2001:db8:ffff::1:0:0' })).rejects.toThrow(/outside/);
    expect(await checkConsistency(t.db)).toEqual([]);
  });
});

describe('the database enforces the invariants itself', () => {
  it('refuses overlapping ranges, overlapping leases and leases outside their range in raw SQL', async () => {
    const ar = await register({ TYPE: 'IP4', IP: '10.50.0.0', SIZE: '8' });
    const id = Number(ar.PGIPAM_RANGE_ID);
    await expect(
      t.db.query(`insert into pgipam.address_range (space_id, ar_type, size, ip4_first) values (1, 'IP4', 4, $1)`, [
        parseIPv4('10.50.0.6'),
      ]),
    ).rejects.toMatchObject({ code: '23P01', constraint: 'address_range_ip4_no_overlap' });
    await t.db.query(`insert into pgipam.lease (range_id, first_idx, last_idx, kind) values ($1, 2, 3, 'lease')`, [id]);
    await expect(
      t.db.query(`insert into pgipam.lease (range_id, first_idx, last_idx, kind) values ($1, 3, 3, 'lease')`, [id]),
    ).rejects.toMatchObject({ code: '23P01', constraint: 'lease_no_overlap' });
    await expect(
      t.db.query(`insert into pgipam.lease (range_id, first_idx, last_idx, kind) values ($1, 8, 8, 'lease')`, [id]),
    ).rejects.toMatchObject({ code: '23514' });
    await expect(t.db.query(`update pgipam.address_range set size = 100 where id = $1`, [id])).rejects.toMatchObject({ code: '23514' });
    await expect(t.db.query(`delete from pgipam.history`)).rejects.toMatchObject({ code: '42501' });
  });
});
