// pgipam import of the cloud a real oned printed (test/fixtures/oned/snapshot-1): IPAM networks,
// oned's internal IPAM, a reservation vnet, a carved AR; then pools carve around what it recorded,
// reconcile agrees, and the conflicts are refused one line each with nothing written (issue 11).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { parseTemplate } from '../../src/driver/template';
import { type TestDb, checkConsistency, createTestDatabase, snapshot } from '../support/db';
import { EMPTY_ADDRESS, actionData, arXmlFormA, toBase64 } from '../support/oned-sim';
import { snapshotFiles } from '../support/oned-requests';
import { runActionProcess, runCliLine } from '../support/processes';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pgipam-import-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

let t: TestDb | undefined;
afterEach(async () => {
  await t?.drop();
  t = undefined;
});

const cli = runCliLine;

const register = (env: Record<string, string>, ar: Record<string, string>) =>
  runActionProcess('register_address_range', toBase64(actionData(arXmlFormA({ IPAM_MAD: 'pgipam', ...ar }), EMPTY_ADDRESS)), env);

describe('pgipam import', () => {
  it("records a whole cloud once: IPAM ranges again under their ids, oned's own networks observed, reservations as the parent's leases", async () => {
    t = await createTestDatabase('import_cloud');
    const env = { PGIPAM_DATABASE_URL: t.url };
    const files = snapshotFiles(path.join(tmp, 'cloud'), 'snapshot-1');

    const before = await snapshot(t.db);
    const dry = await cli(env, ['import', '--dry-run', ...files]);
    expect([dry.code, dry.stderr]).toEqual([0, '']);
    expect(await snapshot(t.db)).toBe(before);
    const rows = dry.stdout.split('\n');
    expect(rows[0]).toMatch(/^NETWORK\s+AR\s+TYPE\s+STEP\s+RANGE\s+WHERE\s+LEASES\s+DETAIL$/);
    expect(rows.slice(1, 7).map((r) => r.split(/\s{2,}/).slice(0, 7))).toEqual([
      ['34 prod-ipam', '0', 'IP4', 'register', '50', '10.70.0.10 - 10.70.0.59', '10'],
      ['34 prod-ipam', '1', 'IP6_STATIC', 'register', '51', '2001:db8:70::100 - 2001:db8:70::11f', '0'],
      ['34 prod-ipam', '2', 'IP4_6', 'register', '52', '10.71.0.10 - 10.71.0.29', '0'],
      ['35 internal', '0', 'IP4', 'observe', '-', '192.168.50.2 - 192.168.50.101', '1'],
      ['36 prod-resv', '-', 'RESERVATION', 'reservation', '-', 'of network 34', '0'],
      ['37 carved', '0', 'IP4', 'register', '53', '10.80.0.2 - 10.80.0.31', '1'],
    ]);
    expect(rows[7]).toBe('dry run: 5 to import, 0 conflicts; nothing written');

    const done = await cli(env, ['import', ...files]);
    expect([done.code, done.stderr]).toEqual([0, '']);
    expect(done.stdout).toMatch(/\nimported 5 of 5\n$/);
    expect(await checkConsistency(t.db)).toEqual([]);
    // the driver's ranges are back under the ids oned stores, and oned agrees with pgipam
    const agree = await cli(env, ['reconcile', ...files]);
    expect([agree.code, agree.stderr, agree.stdout]).toEqual([0, '', expect.stringMatching(/in agreement/)]);
    // the internal network is visible, with its lease, as observed
    const list = JSON.parse((await cli(env, ['range', 'list', '--json'])).stdout) as Array<Record<string, unknown>>;
    const internal = list.find((r) => r.first === '192.168.50.2')!;
    expect(internal).toMatchObject({
      observed: true,
      used: 1,
      attrs: expect.objectContaining({ PGIPAM_ONED_NETWORK_ID: '35', PGIPAM_ONED_AR_ID: '0' }),
    });
    const found = await cli(env, ['find', '192.168.50.2', '--json']);
    expect(found.stdout).toMatch(/"kind": "lease"/);
    // and the driver never leases from it
    const get = await runActionProcess(
      'get_address',
      toBase64(
        actionData(
          arXmlFormA({ IPAM_MAD: 'pgipam', TYPE: 'IP4', IP: '192.168.50.2', SIZE: '100', PGIPAM_RANGE_ID: String(internal.id) }),
          '<ADDRESS><SIZE>1</SIZE></ADDRESS>',
        ),
      ),
      env,
    );
    expect([get.exitCode, get.reason]).toEqual([255, expect.stringMatching(/^pgipam has no range \d+ for platform "default"/)]);

    // imported leases count as use from when they were recorded
    const use = await cli(env, ['usage', '--since', '1h', '--by', 'range', '--period', 'all', '--csv']);
    expect(use.code).toBe(0);
    const csv = use.stdout.trim().split('\n');
    expect(csv[0]).toBe('period_start,range,address_hours,peak,started');
    expect(csv.slice(1).map((l) => l.split(',').slice(1, 2).concat(l.split(',').slice(3)))).toEqual([
      ['50', '10', '10'],
      ['53', '1', '1'],
      [String(internal.id), '1', '1'],
    ]);
    // a second import changes nothing
    const snap = await snapshot(t.db);
    const again = await cli(env, ['import', ...files]);
    expect([again.code, again.stderr]).toEqual([0, '']);
    expect(again.stdout).toMatch(/\nnothing to import: pgipam already records every AR\n$/);
    expect(await snapshot(t.db)).toBe(snap);

    // a pool over the internal network adopts it and carves only around it
    expect((await cli(env, ['pool', 'add', 'lan', '--prefix', '192.168.50.0/24'])).code).toBe(0);
    // (192.168.50.2 - .101 observed: the /26 blocks left are .128 and .192; a third is refused)
    const subnets: string[] = [];
    for (let i = 0; i < 2; i++) {
      const carved = await register(env, { TYPE: 'IP4', SIZE: '30', PGIPAM_POOL: 'lan' });
      expect([carved.exitCode, carved.reason]).toEqual([0, '']);
      subnets.push(parseTemplate(carved.stdout).values.PGIPAM_SUBNET!);
    }
    expect(subnets.sort()).toEqual(['192.168.50.128/26', '192.168.50.192/26']);
    const full = await register(env, { TYPE: 'IP4', SIZE: '30', PGIPAM_POOL: 'lan' });
    expect([full.exitCode, full.reason]).toEqual([255, 'pool "lan" has no free IPv4 /26 for 30 addresses']);
    expect(await checkConsistency(t.db)).toEqual([]);
  });

  it('follows leases oned changed since the last import of an observed network', async () => {
    t = await createTestDatabase('import_update');
    const env = { PGIPAM_DATABASE_URL: t.url };
    const dir = path.join(tmp, 'update');
    const [show35] = snapshotFiles(dir, 'snapshot-1', (f) => f === 'onevnet-show-35.xml');
    expect((await cli(env, ['import', show35!])).code).toBe(0);
    const xml = fs.readFileSync(show35!, 'utf8');
    // VM 26 gone, VM 31 on 192.168.50.7
    fs.writeFileSync(
      show35!,
      xml.replace(
        '<IP><![CDATA[192.168.50.2]]></IP>\n          <MAC><![CDATA[02:00:c0:a8:32:02]]></MAC>\n          <VM><![CDATA[26]]>',
        '<IP><![CDATA[192.168.50.7]]></IP>\n          <MAC><![CDATA[02:00:c0:a8:32:07]]></MAC>\n          <VM><![CDATA[31]]>',
      ),
    );
    const r = await cli(env, ['import', show35!]);
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(r.stdout).toMatch(/35 internal\s+0\s+IP4\s+update/);
    const { rows } = await t.db.query<{ first_idx: string; note: string }>(
      "select first_idx::text, note from pgipam.lease where kind = 'lease'",
    );
    expect(rows).toEqual([{ first_idx: '5', note: 'observed: VM 31 in oned network 35 AR 0' }]);
    const events = await t.db.query<{ event: string }>("select event from pgipam.history where event like '%import%' order by id");
    expect(events.rows.map((e) => e.event)).toEqual(['range_imported', 'lease_imported', 'lease_import_removed', 'lease_imported']);
  });

  it('refuses conflicts one line each and writes nothing, unless --skip-conflicts', async () => {
    t = await createTestDatabase('import_conflicts');
    const env = { PGIPAM_DATABASE_URL: t.url };
    const dir = path.join(tmp, 'conflicts');
    const files = snapshotFiles(dir, 'snapshot-1', (f) => f.includes('show'));
    // pgipam already has a range inside the internal network; another oned network overlaps it too,
    // with 192.168.50.2 leased to another VM
    expect((await register(env, { TYPE: 'IP4', IP: '192.168.50.60', SIZE: '10' })).exitCode).toBe(0);
    const show35 = fs.readFileSync(
      files.find((f) => f.endsWith('show-35.xml'))!,
      'utf8',
    );
    const twin = path.join(dir, 'onevnet-show-38.xml');
    fs.writeFileSync(
      twin,
      show35
        .replace('<ID>35</ID>', '<ID>38</ID>')
        .replace('<NAME>internal</NAME>', '<NAME>internal-b</NAME>')
        .replace('<VM><![CDATA[26]]></VM>', '<VM><![CDATA[40]]></VM>')
        .replace('<IP><![CDATA[192.168.50.2]]></IP>\n      <MAC>', '<IP><![CDATA[192.168.50.2]]></IP>\n      <MAC>'),
    );
    const before = await snapshot(t.db);
    const r = await cli(env, ['import', ...files, twin]);
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')).toEqual([
      expect.stringMatching(
        /^pgipam: conflict: AR 0 of network 35: overlaps pgipam range \d+ \(IP4 192\.168\.50\.60 - 192\.168\.50\.69, space default\)$/,
      ),
      expect.stringMatching(/^pgipam: conflict: AR 0 of network 38: overlaps pgipam range \d+ /),
      'pgipam: 2 conflicts: nothing imported (resolve them, or --skip-conflicts to import the rest)',
    ]);
    expect(await snapshot(t.db)).toBe(before);

    // without the pgipam range in the way, the two oned networks still overlap each other
    await t.db.query('delete from pgipam.address_range');
    const r2 = await cli(env, ['import', ...files, twin]);
    expect(r2.code).toBe(2);
    expect(r2.stderr.split('\n')).toEqual([
      'pgipam: conflict: AR 0 of network 35: overlaps AR 0 of network 38 (192.168.50.2 - 192.168.50.101); leased on both sides: 192.168.50.2 (VM 26 in network 35, VM 40 in network 38)',
      'pgipam: conflict: AR 0 of network 38: overlaps AR 0 of network 35 (192.168.50.2 - 192.168.50.101); leased on both sides: 192.168.50.2 (VM 26 in network 35, VM 40 in network 38)',
      'pgipam: 2 conflicts: nothing imported (resolve them, or --skip-conflicts to import the rest)',
    ]);
    const skipped = await cli(env, ['import', '--skip-conflicts', ...files, twin]);
    expect([skipped.code, skipped.stderr]).toEqual([1, '']);
    expect(skipped.stdout).toMatch(/\nimported 4 of 4, 2 conflicts left out\n$/);
    expect(await checkConsistency(t.db)).toEqual([]);
  });
});

describe('an AR that lost its PGIPAM_RANGE_ID (a real oned after onevnet updatear)', () => {
  it('is matched to its range by its first address, by import and by reconcile, never taken for an orphan', async () => {
    t = await createTestDatabase('import_updatear');
    const env = { PGIPAM_DATABASE_URL: t.url };
    const dir = path.join(tmp, 'updatear');
    fs.mkdirSync(dir, { recursive: true });
    const show = path.join(dir, 'onevnet-show-0.xml');
    fs.copyFileSync(path.join(__dirname, '../fixtures/oned/updatear/onevnet-show-0.xml'), show);
    const imported = await cli(env, ['import', show]);
    expect([imported.code, imported.stderr]).toEqual([0, '']);
    expect(imported.stdout).toMatch(
      /0 prod-ipam\s+0\s+IP4\s+register\s+4\s+10\.70\.0\.10 - 10\.70\.0\.69\s+1\s+pgipam lacks range \(no PGIPAM_RANGE_ID\)/,
    );
    const r = await cli(env, ['reconcile', '--fix', show]);
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(r.stdout).toMatch(
      /AR 0 of network 0 has no PGIPAM_RANGE_ID \("onevnet updatear" can drop it\): matched to range \d+ by its first address\nin agreement/,
    );
    const again = await cli(env, ['import', show]);
    expect(again.stdout).toMatch(/0 prod-ipam\s+0\s+IP4\s+known/);
  });
});
