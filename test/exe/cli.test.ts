// The operator's CLI, run as a process like an operator runs it.
import crypto from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import { parseTemplate } from '../../src/driver/template';
import { EMPTY_ADDRESS, actionData, addressXml, arXmlFormA, arXmlFormB, storedAr, toBase64 } from '../support/oned-sim';
import { type TestDb, createTestDatabase, emptyDatabase } from '../support/db';
import { runActionProcess, runCliProcess } from '../support/processes';

// Each test gets a database of its own (t), set up by the test itself.
let t: TestDb | undefined;
const role = `pgipam_cli_${crypto.randomBytes(3).toString('hex')}`;

async function cli(args: string[], extraEnv: Record<string, string> = {}) {
  return runCliProcess(args, { PGIPAM_DATABASE_URL: t!.url, ...extraEnv });
}

// The pool "cloud" (the default): an IPv4 /16 and an IPv6 /48, DNS, VLAN 120 and an attribute.
const addCloudPool = () =>
  cli([
    'pool',
    'add',
    'cloud',
    '--prefix',
    '10.20.0.0/16',
    '--prefix',
    '2001:db8:100::/48',
    '--dns',
    '10.20.0.2',
    '--vlan',
    '120',
    '--default',
    '--attr',
    'OWNER=ops',
  ]);

// A migrated database with the pool "cloud" (the default), one range of 4000 addresses carved
// from it (range 1: 10.20.0.3 - 10.20.15.162: the pool's DNS server 10.20.0.2 is kept out) and a
// block of 3 leased by request 41.
async function cloud(label: string): Promise<Record<string, string>> {
  t = await createTestDatabase(label);
  const add = await addCloudPool();
  expect(add.code).toBe(0);
  const reg = await runActionProcess(
    'register_address_range',
    toBase64(actionData(arXmlFormA({ IPAM_MAD: 'pgipam', TYPE: 'IP4', SIZE: '4000' }), EMPTY_ADDRESS)),
    { PGIPAM_DATABASE_URL: t.url },
  );
  const ar = storedAr(parseTemplate(reg.stdout).values, 0);
  const lease = await runActionProcess(
    'get_address',
    toBase64(actionData(arXmlFormB(ar), addressXml({ size: 3 }))),
    { PGIPAM_DATABASE_URL: t.url },
    ['41'],
  );
  expect(lease.exitCode).toBe(0);
  return ar;
}

afterEach(async () => {
  await t?.drop();
  t = undefined;
});
afterAll(async () => {
  const admin = new pg.Client({ connectionString: inject('pgAdminUrl') });
  await admin.connect();
  await admin.query(`drop role if exists ${role}`);
  await admin.end();
});

describe('pgipam CLI', () => {
  it('migrates an empty database, and a second run does nothing', async () => {
    t = await emptyDatabase('cli_migrate');
    const dry = await cli(['migrate', '--dry-run']);
    expect(dry.stdout).toMatch(/-- migration 1 core/);
    const r = await cli(['migrate']);
    expect(r.stdout).toMatch(/^migrated schema from version 0 to \d+: 1 core, 2 pools_platforms/);
    expect((await cli(['migrate'])).stdout).toMatch(/^schema is up to date/);
    expect((await cli(['status', '--json'])).stdout).toMatch(/"schema_version": \d+/);
  });

  it('defines a pool, shows it with a map, and lists it as JSON', async () => {
    t = await createTestDatabase('cli_pool');
    const add = await addCloudPool();
    expect(add.stderr).toBe('');
    expect(add).toMatchObject({ code: 0, stdout: 'created pool cloud in space default\n' });
    const reg = await runActionProcess(
      'register_address_range',
      toBase64(actionData(arXmlFormA({ IPAM_MAD: 'pgipam', TYPE: 'IP4', SIZE: '4000' }), EMPTY_ADDRESS)),
      { PGIPAM_DATABASE_URL: t.url },
    );
    expect(parseTemplate(reg.stdout).values).toMatchObject({ PGIPAM_SUBNET: '10.20.0.0/20', VLAN_ID: '120', OWNER: 'ops' });
    const show = await cli(['pool', 'show', 'cloud']);
    expect(show.stdout).toContain('10.20.0.0/16: 4096 carved, 0 reserved, 61440 free of 65536 (6.25% used)');
    expect(show.stdout).toContain('####' + '.'.repeat(60));
    const list = JSON.parse((await cli(['pool', 'list', '--json'])).stdout);
    expect(list[0]).toMatchObject({ name: 'cloud', isDefault: true, ranges: 1 });
  });

  it('shows ranges, leases, finds addresses, reserves and reads the history', async () => {
    await cloud('cli_show');
    const ranges = JSON.parse((await cli(['range', 'list', '--json'])).stdout);
    expect(ranges).toHaveLength(1);
    const show = await cli(['range', 'show', String(ranges[0].id)]);
    expect(show.stdout).toMatch(/size 4000 {2}used 3/);
    expect(show.stdout).toMatch(/10\.20\.0\.3 +10\.20\.0\.5 +3 +lease/);
    const found = await cli(['find', '10.20.0.4']);
    expect(found.stdout).toMatch(/space default {2}pool cloud {2}range \d+ \(IP4 10\.20\.0\.3 - 10\.20\.15\.162, platform default\)/);
    expect(found.stdout).toMatch(/lease of 10\.20\.0\.3 - 10\.20\.0\.5 since \S+, request 41/);
    expect(found.stdout).toMatch(/address_leased/);
    expect((await cli(['reserve', '10.20.0.10-10.20.0.11', '--reason', 'core routers'])).stdout).toMatch(
      /reserved 10\.20\.0\.10-10\.20\.0\.11: 2 in range \d+, 2 in pool cloud/,
    );
    expect((await cli(['lease', 'list', '--kind', 'reservation'])).stdout).toMatch(/core routers/);
    const hist = await cli(['history', '--since', '1h']);
    expect(hist.stdout).toMatch(/address_reserved/);
    expect(hist.stdout).toMatch(/range_registered/);
    expect((await cli(['unreserve', '10.20.0.10-10.20.0.11'])).stdout).toMatch(
      /released 2 reserved addresses in ranges and 1 pool reservations/,
    );
  });

  it('adds a platform with a password from the environment, never from argv', async () => {
    await cloud('cli_platform');
    const r = await cli(['platform', 'add', 'zone-x', '--role', role, '--password-env', 'ZONE_PW'], { ZONE_PW: 's3cret' });
    expect(r).toMatchObject({ code: 0, stdout: `added platform zone-x with login role ${role}\n` });
    expect((await cli(['platform', 'grant', 'zone-x', 'cloud'])).code).toBe(0);
    expect((await cli(['platform', 'list'])).stdout).toMatch(new RegExp(`zone-x +${role} +0 +cloud`));
    const hist = await cli(['history', '--event', 'platform_added', '--json']);
    expect(hist.stdout).not.toMatch(/s3cret/);
  });

  it('fails with one clear line and a non-zero exit', async () => {
    await cloud('cli_fail');
    for (const [args, re] of [
      [['pool', 'show', 'nope'], /^pgipam: no pool "nope"\n$/],
      [
        ['pool', 'add', 'bad', '--prefix', '10.0.0.1/8'],
        /^pgipam: prefix 10\.0\.0\.1\/8 has host bits set; did you mean 10\.0\.0\.0\/8\?\n$/,
      ],
      [['pool', 'rm', 'cloud'], /^pgipam: pool "cloud" still has 1 ranges/],
      [['range', 'rm', '1'], /^pgipam: range 1 .* still has 3 leased addresses: use --force/],
      [['reserve', '10.20.0.3', '--reason', 'x'], /^pgipam: cannot reserve 10\.20\.0\.3: it is leased/],
      [['nonsense'], /^pgipam: Unknown argument: nonsense\n$/],
      [['history', '--since', 'yesterday-ish'], /^pgipam: --since takes an ISO date or an age/],
    ] as Array<[string[], RegExp]>) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(re);
    }
    const noDb = await cli(['range', 'list'], { PGIPAM_DATABASE_URL: 'postgres://u:pw@127.0.0.1:1/x' });
    expect(noDb.stderr).toMatch(/^pgipam: cannot reach PostgreSQL at 127\.0\.0\.1:1\/x/);
  });

  it('check says ok, and finds damage done behind its back', async () => {
    await cloud('cli_check');
    expect((await cli(['check'])).stdout).toMatch(/^ok: 1 ranges and 1 pools are consistent\n$/);
    await t!.db.query(`delete from pgipam.free_extent where ctid = (select ctid from pgipam.free_extent limit 1)`);
    await t!.db.query(`delete from pgipam.pool_free_block where ctid = (select ctid from pgipam.pool_free_block limit 1)`);
    const r = await cli(['check']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(
      /^2 problems:\n {2}range \d+: \d+ leased \+ \d+ free != size 4000\n {2}pool cloud: free blocks \+ subnets = \d+, prefixes = \d+\n$/,
    );
    expect(r.stderr).toBe('pgipam: 2 consistency problems found\n');
  });

  it('prunes history only on purpose, leaving a row that says so', async () => {
    const ar = await cloud('cli_prune');
    await cli(['reserve', '10.20.0.10', '--reason', 'router']);
    await runActionProcess('free_address', toBase64(actionData(arXmlFormB(ar), addressXml({ ip: '10.20.0.3', size: 1 }))), {
      PGIPAM_DATABASE_URL: t!.url,
    });
    const all = JSON.parse((await cli(['history', '--limit', '1000', '--json'])).stdout).length;
    expect(all).toBeGreaterThan(5);
    const r = await cli(['history', 'prune', '--force', '--before', new Date(Date.now() + 60_000).toISOString()]);
    expect(r.stdout).toMatch(new RegExp(`^pruned ${all} history rows older than `));
    const left = JSON.parse((await cli(['history', '--json'])).stdout);
    expect(left.map((h: { event: string }) => h.event)).toEqual(['history_pruned']);
    await expect(t!.db.query('delete from pgipam.history')).rejects.toThrow(/append-only/);
  });

  it('has --help everywhere, saying what each command takes', async () => {
    t = await createTestDatabase('cli_help');
    const cases: Array<[string[], RegExp[]]> = [
      [
        [],
        [
          /pgipam <command>/,
          /migrate create or upgrade the pgipam schema/,
          /range <command> +address ranges registered by OpenNebula/,
          /--json print JSON/,
        ],
      ],
      [['pool'], [/pool add <name> define a pool/, /pool set <name> change a pool/, /pool rm <name> remove a pool/]],
      [
        ['pool', 'add'],
        [/--prefix +IPv4 or IPv6 prefix \(repeatable\)/, /--gateway +gateway of carved IPv4 subnets/, /--restricted/],
      ],
      [
        ['range', 'show'],
        [/show one range with a map of its addresses/, /<id>/],
      ],
      [
        ['range', 'resize'],
        [/onevnet updatear/, /--size the SIZE the AR has in OpenNebula/],
      ],
      [
        ['platform', 'add'],
        [/--password-env read the role password from this environment variable/, /--role login role name/],
      ],
      [['find'], [/which space, pool, range, platform and lease hold an IP or MAC/]],
      [['history'], [/--since ISO date or age/, /pgipam history prune delete history older than --before/]],
      [
        ['reconcile'],
        [/exit 0 in agreement, 1 on drift, 2 on an error/, /--onevnet run onevnet list -x/, /--grace/, /--fix adopt unknown leases/],
      ],
      [['import'], [/observed ranges/, /--dry-run print the plan/, /--skip-conflicts/]],
      [['usage'], [/address-hours and peak use per period/, /--by .*"platform", "pool", "range", "space"/, /--csv/]],
      [
        ['vlan-pool', 'add'],
        [
          /--ids VLAN IDs, e\.g\. 100-199,300,400-409/,
          /--domain the switch fabric/,
          /--bridge BRIDGE of carved networks, \{vlan\} is the ID/,
        ],
      ],
      [['pool', 'set'], [/--vlan-pool a VLAN pool each carved range takes its own VLAN_ID from/]],
    ];
    for (const [args, res] of cases) {
      const r = await cli([...args, '--help']);
      expect(r.code, args.join(' ')).toBe(0);
      // yargs wraps lines to the terminal width: compare with the text on one line
      for (const re of res) expect(r.stdout.replace(/\s+/g, ' '), `${args.join(' ')} --help`).toMatch(re);
    }
  });
});
