// What a real oned (OpenNebula 7.5.80, commit f847cf2e9a78) sent to pgipam, replayed through the
// built executables, and the cases it showed that pgipam got wrong (issue 7). The requests are in
// test/fixtures/oned/requests, exactly as the actions read them, with the exit codes oned saw.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseTemplate } from '../../src/driver/template';
import { EMPTY_ADDRESS, actionData, addressForIndex, addressXml, arXmlFormA, arXmlFormB, storedAr, toBase64 } from '../support/oned-sim';
import { type TestDb, checkConsistency, createTestDatabase, snapshot } from '../support/db';
import { ROOT, runActionProcess, runCliProcess } from '../support/processes';
import { find } from '../../src/admin/lookups';

const REQUESTS = path.join(ROOT, 'test/fixtures/oned/requests');

let t: TestDb | undefined;
afterEach(async () => {
  await t?.drop();
  t = undefined;
});

async function database(label: string): Promise<{ t: TestDb; env: Record<string, string> }> {
  t = await createTestDatabase(label);
  return { t, env: { PGIPAM_DATABASE_URL: t.url } };
}

// The CLI as an operator runs it; the final newline of its output dropped.
async function cli(env: Record<string, string>, args: string[]) {
  const r = await runCliProcess(args, env);
  return { code: r.code, stdout: r.stdout.replace(/\n$/, ''), stderr: r.stderr.replace(/\n$/, '') };
}

const requests = fs
  .readdirSync(REQUESTS)
  .filter((f) => f.endsWith('.xml'))
  .sort()
  .map((f) => {
    const [, id, action] = /^(\d+)-(\w+)\.xml$/.exec(f)!;
    const rc = Number(/exit (\d+)/.exec(fs.readFileSync(path.join(REQUESTS, f.replace(/\.xml$/, '.rc')), 'utf8'))![1]);
    return { id: id!, action: action!, xml: fs.readFileSync(path.join(REQUESTS, f), 'utf8'), rc };
  });

describe('the requests a real oned sent', () => {
  it('are all there: every action, in order, with the exit codes oned saw', () => {
    expect(requests).toHaveLength(22);
    expect(new Set(requests.map((r) => r.action))).toEqual(
      new Set(['register_address_range', 'unregister_address_range', 'get_address', 'allocate_address', 'free_address']),
    );
    expect(requests.find((r) => r.id === '18')).toMatchObject({ action: 'allocate_address', rc: 255 });
    expect(requests.find((r) => r.id === '18')!.xml).toContain('<IP6>0</IP6>');
  });

  it('replayed in order on a fresh database end as oned saw them, except the IP6 = 0 allocation, which now succeeds, and its free', async () => {
    const { t, env } = await database('replay');
    // oned's session had registered 49 ranges before; its later requests name ranges 50-53
    await t.db.query('alter table pgipam.address_range alter column id restart with 50');
    for (const r of requests) {
      if (r.id === '10') {
        // step 4 of the capture: the pool the carved AR names
        expect((await cli(env, ['pool', 'add', 'samples', '--prefix', '10.80.0.0/16', '--vlan', '80'])).code).toBe(0);
      }
      const run = await runActionProcess(r.action, toBase64(r.xml), env, [r.id]);
      const expected = r.id === '18' ? 0 : r.rc;
      expect({ id: r.id, exit: run.exitCode, reason: run.reason }).toEqual({ id: r.id, exit: expected, reason: '' });
      if (r.id === '10') {
        // oned stored the carved subnet pgipam chose then: the same subnet comes out now
        expect(parseTemplate(run.stdout).values).toMatchObject({
          IP: '10.80.0.2',
          SIZE: '30',
          GATEWAY: '10.80.0.1',
          PGIPAM_SUBNET: '10.80.0.0/26',
          VLAN_ID: '80',
          PGIPAM_RANGE_ID: '53',
        });
      }
      if (r.id === '18') {
        // the VM's IPv6 is the one its MAC names (index 16), and pgipam shows the one lease under both
        const byMac = await find(t.db, '02:00:00:70:00:10');
        const byIp6 = await find(t.db, '2001:db8:70::110');
        expect(byMac.matches.map((m) => [m.range?.id, m.index, m.lease?.kind])).toEqual([[51, 16, 'allocation']]);
        expect(byIp6.matches.map((m) => [m.range?.id, m.index, m.lease?.kind])).toEqual([[51, 16, 'allocation']]);
        expect(byMac.matches[0]!.lease!.first).toBe('2001:db8:70::110');
        // oned frees it with the same ADDRESS (addr_to_xml of the index: MAC right, IP6 = 0)
        const freed = await runActionProcess('free_address', toBase64(r.xml), env, ['18']);
        expect([freed.exitCode, freed.reason]).toEqual([0, '']);
        expect(freed.stderr).toMatch(/freed 02:00:00:70:00:10 in range 51/);
        expect((await find(t.db, '2001:db8:70::110')).matches[0]!.lease).toBeNull();
      }
    }
    // what is left: prod-ipam's IPv4 AR with the VMs' leases, and the IPv6 AR; the rest unregistered
    const { rows } = await t.db.query<{ id: string }>('select id::text from pgipam.address_range order by id');
    expect(rows.map((r) => Number(r.id))).toEqual([50, 51]);
    expect(await checkConsistency(t.db)).toEqual([]);
  });
});

describe('an IP6_STATIC AR whose MAC oned chose after registration', () => {
  it('allocates and frees by MAC with the MAC only in later ARs, and find shows the lease by MAC and by IPv6', async () => {
    const { t, env } = await database('mac_later');
    const reg = await runActionProcess(
      'register_address_range',
      toBase64(
        actionData(
          arXmlFormA({ IPAM_MAD: 'pgipam', TYPE: 'IP6_STATIC', IP6: '2001:db8:77::10', PREFIX_LENGTH: '64', SIZE: '64' }),
          EMPTY_ADDRESS,
        ),
      ),
      env,
    );
    expect([reg.exitCode, reg.reason]).toEqual([0, '']);
    const reply = parseTemplate(reg.stdout).values;
    expect(reply.MAC).toBeUndefined();
    // oned then picks a random MAC for the AR and sends it on every later call
    const ar = storedAr({ ...reply, MAC: '02:5e:1f:a0:33:00' }, 0);
    const addr = addressForIndex(ar, 5, 1);
    expect(addr).toMatchObject({ mac: '02:5e:1f:a0:33:05', ip6: '0' });
    const a = await runActionProcess('allocate_address', toBase64(actionData(arXmlFormB(ar), addressXml(addr))), env);
    expect([a.exitCode, a.reason]).toEqual([0, '']);
    for (const q of ['02:5e:1f:a0:33:05', '2001:db8:77::15']) {
      const m = (await find(t.db, q)).matches;
      expect(m.map((x) => [x.range?.id, x.index, x.lease?.kind])).toEqual([[Number(reply.PGIPAM_RANGE_ID), 5, 'allocation']]);
    }
    const again = await runActionProcess(
      'allocate_address',
      toBase64(actionData(arXmlFormB(ar, 1), addressXml({ ...addr, ip6: '2001:db8:77::15' }))),
      env,
    );
    expect(again.reason).toMatch(/^02:5e:1f:a0:33:05 is not free|^2001:db8:77::15 is not free/);
    const f = await runActionProcess('free_address', toBase64(actionData(arXmlFormB(ar, 1), addressXml(addr))), env);
    expect([f.exitCode, f.reason]).toEqual([0, '']);
    expect((await find(t.db, '02:5e:1f:a0:33:05')).matches[0]!.lease).toBeNull();
    expect(await checkConsistency(t.db)).toEqual([]);
  });

  it('keeps accepting a correct IP6 (a fixed oned, or a person), and refuses fields that disagree, naming both, changing nothing', async () => {
    const { t, env } = await database('ip6_fields');
    const reg = await runActionProcess(
      'register_address_range',
      toBase64(
        actionData(
          arXmlFormA({
            IPAM_MAD: 'pgipam',
            TYPE: 'IP4_6_STATIC',
            IP: '10.77.0.10',
            IP6: '2001:db8:78::10',
            PREFIX_LENGTH: '64',
            SIZE: '32',
          }),
          EMPTY_ADDRESS,
        ),
      ),
      env,
    );
    const ar = storedAr(parseTemplate(reg.stdout).values, 0);
    const fixed = await runActionProcess(
      'allocate_address',
      toBase64(actionData(arXmlFormB(ar), addressXml(addressForIndex(ar, 3, 1, { fixedOned: true })))),
      env,
    );
    expect([fixed.exitCode, fixed.reason]).toEqual([0, '']);
    const quirk = await runActionProcess(
      'allocate_address',
      toBase64(actionData(arXmlFormB(ar), addressXml(addressForIndex(ar, 4, 1)))),
      env,
    );
    expect([quirk.exitCode, quirk.reason]).toEqual([0, '']);
    const before = await snapshot(t.db);
    const mixed = { ...addressForIndex(ar, 6, 1, { fixedOned: true }), ip6: '2001:db8:78::17' };
    const bad = await runActionProcess('allocate_address', toBase64(actionData(arXmlFormB(ar), addressXml(mixed))), env);
    expect(bad.exitCode).toBe(255);
    expect(bad.reason).toMatch(
      /^ADDRESS IP 10\.77\.0\.16 and IP6 2001:db8:78::17 name different addresses of range \d+ .*\(index 6, index 7\)$/,
    );
    const badMac = await runActionProcess(
      'free_address',
      toBase64(actionData(arXmlFormB(ar), addressXml({ ...addressForIndex(ar, 3, 1), mac: '02:00:0a:4d:00:0e' }))),
      env,
    );
    expect(badMac.exitCode).toBe(255);
    expect(badMac.reason).toMatch(/^ADDRESS IP 10\.77\.0\.13 and MAC 02:00:0a:4d:00:0e name different addresses/);
    expect(await snapshot(t.db)).toBe(before);
  });
});

describe('an AR whose SIZE onevnet updatear changed without calling the driver', () => {
  it('is refused with a line that says what happened and the command that fixes it; range resize grows it; an overlapping resize is refused', async () => {
    const { t, env } = await database('updatear');
    const reg = await runActionProcess(
      'register_address_range',
      toBase64(actionData(arXmlFormA({ IPAM_MAD: 'pgipam', TYPE: 'IP4', IP: '10.78.0.10', SIZE: '20' }), EMPTY_ADDRESS)),
      env,
    );
    const ar = storedAr(parseTemplate(reg.stdout).values, 0);
    const id = ar.PGIPAM_RANGE_ID!;
    const neighbour = await runActionProcess(
      'register_address_range',
      toBase64(actionData(arXmlFormA({ IPAM_MAD: 'pgipam', TYPE: 'IP4', IP: '10.78.0.50', SIZE: '10' }), EMPTY_ADDRESS)),
      env,
    );
    expect(neighbour.exitCode).toBe(0);
    const grown = { ...ar, SIZE: '30' };
    // the first request that carries the AR's MAC records it; from then on a refusal changes nothing
    expect((await runActionProcess('get_address', toBase64(actionData(arXmlFormB(grown), addressXml({ size: 1 }))), env)).exitCode).toBe(0);
    const before = await snapshot(t.db);
    const refused = await runActionProcess(
      'allocate_address',
      toBase64(actionData(arXmlFormB(grown), addressXml(addressForIndex(grown, 25, 1)))),
      env,
    );
    expect(refused.exitCode).toBe(255);
    expect(refused.reason).toBe(
      `10.78.0.35 is beyond the end of range ${id} (IP4 10.78.0.10 - 10.78.0.29, space default): the AR says SIZE 30 but pgipam registered 20 addresses for range ${id} ("onevnet updatear" changes SIZE without telling the IPAM driver): run "pgipam range resize ${id} --size 30"`,
    );
    // a free beyond the registered range has nothing to free, and must not keep oned's lease
    const freeBeyond = await runActionProcess(
      'free_address',
      toBase64(actionData(arXmlFormB(grown), addressXml(addressForIndex(grown, 25, 1)))),
      env,
    );
    expect([freeBeyond.exitCode, freeBeyond.reason]).toEqual([0, '']);
    expect(await snapshot(t.db)).toBe(before);

    const overlap = await cli(env, ['range', 'resize', id, '--size', '50']);
    expect(overlap.code).toBe(1);
    expect(overlap.stderr).toMatch(
      /^pgipam: growing range \d+ \(IP4 10\.78\.0\.10 - 10\.78\.0\.29, space default\) to 50 addresses would overlap range \d+ \(IP4 10\.78\.0\.50 - 10\.78\.0\.59/,
    );
    expect(await snapshot(t.db)).toBe(before);

    const resized = await cli(env, ['range', 'resize', id, '--size', '30']);
    expect([resized.code, resized.stdout.trim()]).toEqual([0, `resized range ${id} from 20 to 30 addresses`]);
    expect((await cli(env, ['range', 'resize', id, '--size', '30'])).stdout.trim()).toBe(`range ${id} already has 30 addresses`);
    const ok = await runActionProcess(
      'allocate_address',
      toBase64(actionData(arXmlFormB(grown), addressXml(addressForIndex(grown, 25, 1)))),
      env,
    );
    expect([ok.exitCode, ok.reason]).toEqual([0, '']);
    // shrinking back would cut that allocation out: refused; the history says what was resized
    const shrink = await cli(env, ['range', 'resize', id, '--size', '20']);
    expect(shrink.code).toBe(1);
    expect(shrink.stderr).toMatch(/cannot shrink range \d+ .* to 20 addresses: 10\.78\.0\.35 is allocated since/);
    const { rows } = await t.db.query(`select detail from pgipam.history where event = 'range_resized'`);
    expect(rows.map((r) => r.detail)).toEqual([{ from: 20, to: 30 }]);
    expect(await checkConsistency(t.db)).toEqual([]);
  });

  it('grows a range in a pool only inside what it holds there, keeping the broadcast address reserved, and a raw size UPDATE is still refused', async () => {
    const { t, env } = await database('resize_pool');
    expect((await cli(env, ['pool', 'add', 'rz', '--prefix', '10.79.0.0/16'])).code).toBe(0);
    const reg = await runActionProcess(
      'register_address_range',
      toBase64(actionData(arXmlFormA({ IPAM_MAD: 'pgipam', TYPE: 'IP4', SIZE: '20', PGIPAM_POOL: 'rz' }), EMPTY_ADDRESS)),
      env,
    );
    const ar = parseTemplate(reg.stdout).values;
    expect(ar).toMatchObject({ IP: '10.79.0.2', PGIPAM_SUBNET: '10.79.0.0/27' });
    const id = ar.PGIPAM_RANGE_ID!;
    // 10.79.0.2 + 30 ends at the broadcast address .31 of its /27; + 31 would leave the subnet
    expect((await cli(env, ['range', 'resize', id, '--size', '31'])).stderr).toMatch(/does not fit in its network 10\.79\.0\.0\/27/);
    expect(await cli(env, ['range', 'resize', id, '--size', '30'])).toMatchObject({ code: 0, stderr: '' });
    const { rows } = await t.db.query(`select first_idx::int, kind, note from pgipam.lease where range_id = $1 order by first_idx`, [id]);
    expect(rows).toEqual([{ first_idx: 29, kind: 'reservation', note: 'broadcast address' }]);
    // an explicit AR inside the pool holds exactly its own addresses there
    const explicit = await runActionProcess(
      'register_address_range',
      toBase64(actionData(arXmlFormA({ IPAM_MAD: 'pgipam', TYPE: 'IP4', IP: '10.79.1.10', SIZE: '10' }), EMPTY_ADDRESS)),
      env,
    );
    const eid = parseTemplate(explicit.stdout).values.PGIPAM_RANGE_ID!;
    const out = await cli(env, ['range', 'resize', eid, '--size', '11']);
    expect(out.stderr).toMatch(
      /^pgipam: growing range \d+ .* to 11 addresses would take 10\.79\.1\.20 - 10\.79\.1\.20, which is not in the subnets it holds in its pool/,
    );
    await expect(t.db.query('update pgipam.address_range set size = 10 where id = $1', [id])).rejects.toMatchObject({ code: '23514' });
    expect(await checkConsistency(t.db)).toEqual([]);
  });
});
