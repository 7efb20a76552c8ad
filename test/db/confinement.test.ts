// Issue 15: every platform confined by the database. Each test is an attack that succeeded before
// migration 4 (raw SQL as a platform's own login role where that is the path), asserting that it
// now fails with one clear line and changes nothing. Every test sets up what it needs.
import crypto from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { type TestPlatform, addTestPlatform, dropPlatformRoles } from '../support/platforms';
import { addPlatform, grantPool, revokePool, scramVerifier } from '../../src/admin/platforms';
import { checkDatabase } from '../../src/admin/check';
import { parseTemplate } from '../../src/driver/template';
import { EMPTY_ADDRESS, actionData, addressXml, arXmlFormA, arXmlFormB, storedAr, toBase64 } from '../support/oned-sim';
import { type TestDb, checkConsistency, createTestDatabase, snapshot, testContext } from '../support/db';
import { runActionProcess, runCliProcess } from '../support/processes';
import { freeAddress, registerAddressRange } from '../../src/allocator/index';
import { reserve } from '../../src/admin/reservations';
import { addPool, setPool } from '../../src/admin/pool-admin';

const ctx = testContext('conf');
const roles: string[] = [];
const open: Array<{ end: () => Promise<void> }> = [];
let t: TestDb | undefined;

afterEach(async () => {
  for (const c of open.splice(0)) await c.end().catch(() => {});
  await t?.drop();
  t = undefined;
});
afterAll(() => dropPlatformRoles(roles));

type Platform = TestPlatform;

// A fresh database with platforms, each with its own login role.
async function setup(label: string, names: string[]): Promise<{ t: TestDb; p: Record<string, Platform> }> {
  t = await createTestDatabase(label);
  const p: Record<string, Platform> = {};
  for (const n of names) p[n] = await addTestPlatform(t, n, roles, ctx);
  return { t, p };
}

async function as(p: Platform): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: p.url });
  await c.connect();
  open.push(c);
  return c;
}

const ownerEnv = (t: TestDb, platform?: string) => ({ PGIPAM_DATABASE_URL: t.url, ...(platform ? { PGIPAM_PLATFORM: platform } : {}) });
const platformEnv = (p: Platform) => ({ PGIPAM_DATABASE_URL: p.url });

async function register(env: Record<string, string>, request: Record<string, string>) {
  const r = await runActionProcess(
    'register_address_range',
    toBase64(actionData(arXmlFormA({ IPAM_MAD: 'pgipam', ...request }), EMPTY_ADDRESS)),
    env,
  );
  return { ...r, ar: r.exitCode === 0 ? storedAr(parseTemplate(r.stdout).values, 0) : undefined };
}

// The CLI as an operator runs it; the final newline of its output dropped.
async function cli(env: Record<string, string>, args: string[]) {
  const r = await runCliProcess(args, env);
  return { code: r.code, stdout: r.stdout.replace(/\n$/, ''), stderr: r.stderr.replace(/\n$/, '') };
}

describe('1. privilege escalation through search_path', () => {
  it('a function planted in a writable public schema never runs in a pgipam session, and migrate and check say public is writable', async () => {
    const { t, p } = await setup('searchpath', ['zone-a']);
    // what PostgreSQL 14 and older grant by default
    await t.db.query('grant create on schema public to public');
    const a = await as(p['zone-a']!);
    await a.query('create table public.pwned (who text)');
    await a.query('grant insert on public.pwned to public');
    for (const sig of ['text, text', 'text']) {
      await a.query(
        `create function public.pg_advisory_xact_lock(${sig}) returns void language sql as $$ insert into public.pwned values (current_user) $$`,
      );
      await a.query(`grant execute on function public.pg_advisory_xact_lock(${sig}) to public`);
    }
    // the trap is live for a session that searches public and sends untyped parameters...
    const plain = new pg.Client({ connectionString: t.url });
    await plain.connect();
    open.push(plain);
    await plain.query('begin');
    await plain.query('select pg_advisory_xact_lock($1, $2)', ['7046356', '1']);
    expect((await plain.query('select who from public.pwned')).rowCount).toBe(1);
    await plain.query('rollback');
    // ...but an owner-connected front-end carving from a pool (which takes the pool lock), a
    // platform registering, and the CLI never step into it
    await addPool(t.db, 'p', { prefixes: ['10.60.0.0/16'], isDefault: true }, ctx);
    expect((await register(ownerEnv(t), { TYPE: 'IP4', SIZE: '10' })).reason).toBe('');
    expect((await register(platformEnv(p['zone-a']!), { TYPE: 'IP4', SIZE: '10' })).reason).toBe('');
    expect((await cli(ownerEnv(t), ['pool', 'set', 'p', '--add-prefix', '10.61.0.0/16'])).code).toBe(0);
    expect((await t.db.query('select who from public.pwned')).rows).toEqual([]);
    const { rows } = await t.db.query(
      `select pg_has_role($1, (select nspowner from pg_namespace where nspname = 'pgipam'), 'MEMBER') as m`,
      [p['zone-a']!.role],
    );
    expect(rows[0].m).toBe(false);
    // the operator is told
    const m = await cli(ownerEnv(t), ['migrate']);
    expect(m.stderr).toMatch(
      /^pgipam: warning: the "public" schema is writable by the driver roles .*REVOKE CREATE ON SCHEMA public FROM PUBLIC$/,
    );
    expect((await checkDatabase(t.db as never)).problems).toContainEqual(expect.stringMatching(/"public" schema is writable/));
    await t.db.query('revoke create on schema public from public');
    expect((await checkDatabase(t.db as never)).problems).toEqual([]);
  });
});

describe('2. an ungranted platform registering inside a restricted pool', () => {
  it("is refused, naming the pool, and the operator reservation and the owner's carving survive; check finds a range in free pool space and a leased reservation", async () => {
    const { t, p } = await setup('restricted', ['zone-a', 'zone-b']);
    await addPool(t.db, 'secret', { prefixes: ['10.200.0.0/16'], restricted: true }, ctx);
    await grantPool(t.db, p['zone-b']!.name, 'secret', ctx);
    await reserve(t.db, '10.200.5.2', 'core router', 'default', ctx);
    const before = await snapshot(t.db);
    const r = await register(platformEnv(p['zone-a']!), { TYPE: 'IP4', IP: '10.200.5.1', SIZE: '4' });
    expect(r.exitCode).toBe(255);
    expect(r.reason).toBe(
      `platform "${p['zone-a']!.name}" may not use pool "secret": 10.200.5.1 - 10.200.5.4 lies in it; ask an operator for a grant ("pgipam platform grant ${p['zone-a']!.name} secret")`,
    );
    expect(await snapshot(t.db)).toBe(before);
    // the granted platform carves as before
    const b = await register(platformEnv(p['zone-b']!), { TYPE: 'IP4', SIZE: '10', PGIPAM_POOL: 'secret' });
    expect(b.reason).toBe('');
    // what check now finds when someone works around all this with the owner's rights
    await t.db.query(
      `insert into pgipam.address_range (space_id, ar_type, size, ip4_first) values (1, 'IP4', 4, (10 * 2^24 + 200 * 2^16 + 9 * 2^8)::int8)`,
    );
    const problems = (await checkDatabase(t.db as never)).problems;
    expect(problems).toContainEqual('1 ranges lying in free space of a pool');
    await t.db.query(`delete from pgipam.address_range where ip4_first = (10 * 2^24 + 200 * 2^16 + 9 * 2^8)::int8`);
    // an explicit AR over the reservation is refused (issue 12); a reservation made after it lands in it
    const over = await register(platformEnv(p['zone-b']!), { TYPE: 'IP4', IP: '10.200.5.1', SIZE: '4', PGIPAM_POOL: 'secret' });
    expect(over.reason).toBe(
      "the AR's 4 addresses 10.200.5.1 - 10.200.5.4 include 1 that pgipam keeps out of allocation (10.200.5.2 (reserved: core router)): only 3 could be leased while oned counts 4; start the AR after them or end it before",
    );
    const wide = await register(platformEnv(p['zone-b']!), { TYPE: 'IP4', IP: '10.200.6.1', SIZE: '4', PGIPAM_POOL: 'secret' });
    expect(wide.reason).toBe('');
    await reserve(t.db, '10.200.6.2', 'core router 2', 'default', ctx);
    await t.db.query(`update pgipam.lease set kind = 'allocation', operator = false where note = 'core router 2'`);
    expect((await checkDatabase(t.db as never)).problems).toContainEqual('1 leases on addresses a pool reserves');
  });
});

describe('3. front-ends connected as the schema owner', () => {
  it("are confined to their platform: get, free and unregister of another platform's range change nothing", async () => {
    const { t, p } = await setup('ownerconf', ['zone-a', 'zone-b']);
    const a = await register(ownerEnv(t, p['zone-a']!.name), { TYPE: 'IP4', IP: '10.70.0.0', SIZE: '8' });
    const ar = a.ar!;
    const lease = await runActionProcess(
      'get_address',
      toBase64(actionData(arXmlFormB(ar), addressXml({ size: 1 }))),
      ownerEnv(t, p['zone-a']!.name),
    );
    expect(lease.exitCode).toBe(0);
    const before = await snapshot(t.db);
    const asB = ownerEnv(t, p['zone-b']!.name);
    const get = await runActionProcess('get_address', toBase64(actionData(arXmlFormB(ar), addressXml({ size: 1 }))), asB);
    expect(get.exitCode).toBe(255);
    expect(get.reason).toBe(
      `pgipam has no range ${ar.PGIPAM_RANGE_ID} for platform "${p['zone-b']!.name}": the AR was unregistered, never registered through pgipam, or belongs to another platform`,
    );
    const free = await runActionProcess(
      'free_address',
      toBase64(actionData(arXmlFormB(ar), addressXml({ ip: '10.70.0.0', size: 1 }))),
      asB,
    );
    expect([free.exitCode, free.stderr]).toEqual([0, expect.stringMatching(/no pgipam range for this AR; nothing to free/)]);
    const un = await runActionProcess('unregister_address_range', toBase64(actionData(arXmlFormB(ar), EMPTY_ADDRESS)), asB);
    expect([un.exitCode, un.stderr]).toEqual([0, expect.stringMatching(/already unregistered/)]);
    expect(await snapshot(t.db)).toBe(before);
  });
});

describe('4. an edited PGIPAM_RANGE_ID', () => {
  it.each([
    [
      'ETHER',
      { TYPE: 'ETHER', SIZE: '16', MAC: '02:aa:00:00:00:00' },
      { TYPE: 'ETHER', SIZE: '16', MAC: '02:aa:00:00:01:00' },
      /MAC 02:aa:00:00:00:00 is not 02:aa:00:00:01:00/,
    ],
    [
      'IP6 (SLAAC)',
      { TYPE: 'IP6', SIZE: '16', GLOBAL_PREFIX: '2001:db8:a1::' },
      { TYPE: 'IP6', SIZE: '16', GLOBAL_PREFIX: '2001:db8:a2::' },
      /GLOBAL_PREFIX 2001:db8:a1:: is not 2001:db8:a2::/,
    ],
  ] as Array<[string, Record<string, string>, Record<string, string>, RegExp]>)(
    "on an %s AR cannot unregister another network's range",
    async (_type, mine, theirs, re) => {
      const { t } = await setup('rangeid', []);
      const m = await register(ownerEnv(t), mine);
      const o = await register(ownerEnv(t), theirs);
      const before = await snapshot(t.db);
      const forged = { ...m.ar!, PGIPAM_RANGE_ID: o.ar!.PGIPAM_RANGE_ID! };
      const un = await runActionProcess('unregister_address_range', toBase64(actionData(arXmlFormB(forged), EMPTY_ADDRESS)), ownerEnv(t));
      expect(un.exitCode).toBe(255);
      expect(un.reason).toMatch(/^the AR does not describe pgipam range \d+ /);
      expect(un.reason).toMatch(re);
      expect(await snapshot(t.db)).toBe(before);
    },
  );
});

describe('5. shared pool bookkeeping', () => {
  it("is read-only to platform roles except through the driver's functions, which check ownership and leave nothing pending", async () => {
    const { t, p } = await setup('poolbook', ['zone-a', 'zone-b']);
    await addPool(t.db, 'shared', { prefixes: ['10.90.0.0/16'], isDefault: true }, ctx);
    const a = await register(platformEnv(p['zone-a']!), { TYPE: 'IP4', SIZE: '10' });
    const b = await register(platformEnv(p['zone-b']!), { TYPE: 'IP4', SIZE: '10' });
    const before = await snapshot(t.db);
    const c = await as(p['zone-a']!);
    // re-pointing B's subnet, or deleting and inventing free space, as the old policies allowed
    await expect(c.query('update pgipam.pool_allocation set range_id = $1', [a.ar!.PGIPAM_RANGE_ID])).rejects.toMatchObject({
      code: '42501',
    });
    await expect(c.query('delete from pgipam.pool_allocation')).rejects.toMatchObject({ code: '42501' });
    await expect(c.query('delete from pgipam.pool_free_block')).rejects.toMatchObject({ code: '42501' });
    await expect(
      c.query(`insert into pgipam.pool_free_block (pool_id, family, network, prefix_length) select id, 4, 0, 1 from pgipam.pool`),
    ).rejects.toMatchObject({ code: '42501' });
    // A sees its own subnet only, not B's
    expect((await c.query('select range_id::text from pgipam.pool_allocation')).rows).toEqual([{ range_id: a.ar!.PGIPAM_RANGE_ID }]);
    // the functions refuse what is not A's, and a subnet taken but never given to a range
    await expect(c.query('select pgipam.pool_release_range($1)', [b.ar!.PGIPAM_RANGE_ID])).rejects.toMatchObject({ code: '42501' });
    await expect(c.query('select pgipam.pool_give_back(p.id, 4, 0, 8) from pgipam.pool p')).rejects.toMatchObject({ code: '42501' });
    await c.query('begin');
    await expect(c.query('select pgipam.pool_assign($1)', [b.ar!.PGIPAM_RANGE_ID])).rejects.toMatchObject({ code: '42501' });
    await c.query('rollback');
    await c.query('begin');
    await c.query('select pgipam.pool_take_block(p.id, 4, 24) from pgipam.pool p');
    await expect(c.query('commit')).rejects.toMatchObject({ code: '23514', constraint: 'pool_allocation_assigned' });
    expect(await snapshot(t.db)).toBe(before);
    expect(await checkConsistency(t.db)).toEqual([]);
  });
});

describe("6. operator reservations inside a platform's range", () => {
  it('cannot be deleted, changed or forged by the platform, neither a reserve nor a pool reservation the range inherited', async () => {
    const { t, p } = await setup('opres', ['zone-a']);
    await addPool(t.db, 'lab', { prefixes: ['10.91.0.0/24'], gateway: 'none' }, ctx);
    // carving goes around reservations (issue 12): these land on the range after it was carved
    const r = await register(platformEnv(p['zone-a']!), { TYPE: 'IP4', SIZE: '20', PGIPAM_POOL: 'lab' });
    await reserve(t.db, '10.91.0.5', 'dns appliance', 'default', ctx);
    await reserve(t.db, '10.91.0.7', 'load balancer', 'default', ctx);
    const id = r.ar!.PGIPAM_RANGE_ID!;
    const { rows } = await t.db.query(
      `select note, operator from pgipam.lease where range_id = $1 and kind = 'reservation' order by first_idx`,
      [id],
    );
    expect(rows).toEqual([
      { note: 'dns appliance', operator: true },
      { note: 'load balancer', operator: true },
    ]);
    const before = await snapshot(t.db);
    const c = await as(p['zone-a']!);
    expect((await c.query(`delete from pgipam.lease where kind = 'reservation'`)).rowCount).toBe(0);
    expect((await c.query(`update pgipam.lease set kind = 'lease' where kind = 'reservation'`)).rowCount).toBe(0);
    await expect(
      c.query(`insert into pgipam.lease (range_id, first_idx, last_idx, kind, operator) values ($1, 15, 15, 'reservation', true)`, [id]),
    ).rejects.toMatchObject({ code: '42501' });
    // and the driver still cannot hand them out
    const g = await runActionProcess(
      'allocate_address',
      toBase64(actionData(arXmlFormB(r.ar!), addressXml({ ip: '10.91.0.5', size: 1 }))),
      platformEnv(p['zone-a']!),
    );
    expect(g.reason).toMatch(/^10\.91\.0\.5 is not free: 10\.91\.0\.5 reserved by an operator \(dns appliance\)/);
    expect(await snapshot(t.db)).toBe(before);
    // unregistering the range still removes them with it
    const un = await runActionProcess(
      'unregister_address_range',
      toBase64(actionData(arXmlFormB(r.ar!), EMPTY_ADDRESS)),
      platformEnv(p['zone-a']!),
    );
    expect(un.reason).toBe('');
    expect((await t.db.query('select count(*)::int as n from pgipam.lease')).rows[0].n).toBe(0);
  });
});

describe('7. forged history', () => {
  it("takes actor and time from the database and refuses rows about other platforms' ranges", async () => {
    const { p } = await setup('forge', ['zone-a', 'zone-b']);
    const a = await register(platformEnv(p['zone-a']!), { TYPE: 'IP4', IP: '10.92.0.0', SIZE: '4' });
    const b = await register(platformEnv(p['zone-b']!), { TYPE: 'IP4', IP: '10.92.1.0', SIZE: '4' });
    const c = await as(p['zone-a']!);
    await expect(
      c.query(`insert into pgipam.history (event, platform, range_id) values ('address_freed', $1, $2)`, [
        p['zone-a']!.name,
        b.ar!.PGIPAM_RANGE_ID,
      ]),
    ).rejects.toMatchObject({ code: '42501' });
    const { rows } = await c.query(
      `insert into pgipam.history (event, platform, range_id, actor, at) values ('address_freed', $1, $2, 'postgres', '2001-01-01') returning actor, at > now() - interval '1 minute' as recent`,
      [p['zone-a']!.name, a.ar!.PGIPAM_RANGE_ID],
    );
    expect(rows).toEqual([{ actor: p['zone-a']!.role, recent: true }]);
  });
});

describe('8. a revoked or restricted pool', () => {
  it.each(['revoke', 'restrict'])(
    'after %s, the platform can still unregister what it carved, and the subnet goes back to the pool',
    async (how) => {
      const { t, p } = await setup('lockout', ['zone-a']);
      await addPool(t.db, 'pool8', { prefixes: ['10.93.0.0/24'], restricted: how === 'revoke' }, ctx);
      if (how === 'revoke') await grantPool(t.db, p['zone-a']!.name, 'pool8', ctx);
      const r = await register(platformEnv(p['zone-a']!), { TYPE: 'IP4', SIZE: '10', PGIPAM_POOL: 'pool8' });
      expect(r.reason).toBe('');
      if (how === 'revoke') await revokePool(t.db, p['zone-a']!.name, 'pool8', ctx);
      else await setPool(t.db, 'pool8', { restricted: true }, ctx);
      const un = await runActionProcess(
        'unregister_address_range',
        toBase64(actionData(arXmlFormB(r.ar!), EMPTY_ADDRESS)),
        platformEnv(p['zone-a']!),
      );
      expect([un.exitCode, un.reason]).toEqual([0, '']);
      const { rows } = await t.db.query(`select network::text, prefix_length from pgipam.pool_free_block`);
      expect(rows).toEqual([{ network: String(10 * 2 ** 24 + 93 * 2 ** 16), prefix_length: 24 }]);
      expect(await checkConsistency(t.db)).toEqual([]);
    },
  );
});

describe('9. platform add --role and platform rm', () => {
  it('refuses the schema owner, superusers and roles with CREATEROLE or BYPASSRLS; rm removes a platform without ranges', async () => {
    const { t } = await setup('roles', []);
    const tag = crypto.randomBytes(3).toString('hex');
    const owner = (await t.db.query(`select nspowner::regrole::text as r from pg_namespace where nspname = 'pgipam'`)).rows[0].r as string;
    for (const [role, attrs] of [
      [`cr_${tag}`, 'createrole'],
      [`br_${tag}`, 'bypassrls'],
      [`su_${tag}`, 'superuser'],
      [`om_${tag}`, ''],
    ] as const) {
      await t.db.query(`create role ${role} login ${attrs}`);
      roles.push(role);
    }
    // a member of the schema owner acts as the owner
    await t.db.query(`grant ${pg.escapeIdentifier(owner)} to om_${tag}`);
    const before = await snapshot(t.db);
    for (const [role, why] of [
      [
        owner,
        (await t.db.query(`select rolsuper from pg_roles where rolname = $1`, [owner])).rows[0].rolsuper
          ? 'is a superuser'
          : 'owns the pgipam schema',
      ],
      [`om_${tag}`, 'owns the pgipam schema'],
      [`cr_${tag}`, 'has CREATEROLE'],
      [`br_${tag}`, 'has BYPASSRLS'],
      [`su_${tag}`, 'is a superuser'],
    ]) {
      const r = await cli(ownerEnv(t), ['platform', 'add', `x-${role!.slice(0, 20)}`, '--role', role!]);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(
        `pgipam: role ${role} ${why}${why === 'owns the pgipam schema' ? ' (or is a member of its owner)' : ''}: row-level security cannot confine it, so it cannot be a platform's role; give the platform a role of its own`,
      );
    }
    expect(await snapshot(t.db)).toBe(before);
    const name = `gone-${tag}`;
    const added = await cli(ownerEnv(t), ['platform', 'add', name]);
    expect(added.code).toBe(0);
    roles.push(`pgipam_gone_${tag}`);
    await t.db.query(`insert into pgipam.address_range (space_id, ar_type, size, ip4_first, platform) values (1, 'IP4', 1, 1, $1)`, [name]);
    expect((await cli(ownerEnv(t), ['platform', 'rm', name])).stderr).toBe(
      `pgipam: platform "${name}" still has 1 ranges: unregister them in OpenNebula first (or remove them with "pgipam range rm")`,
    );
    await t.db.query('delete from pgipam.address_range where platform = $1', [name]);
    const rm = await cli(ownerEnv(t), ['platform', 'rm', name]);
    expect(rm.stdout).toBe(
      `removed platform ${name}; role pgipam_gone_${tag} is no longer a member of pgipam_driver (DROP ROLE it when nothing else uses it)`,
    );
    expect((await t.db.query('select 1 from pgipam.platform where name = $1', [name])).rowCount).toBe(0);
    expect((await t.db.query(`select pg_has_role($1, 'pgipam_driver', 'MEMBER') as m`, [`pgipam_gone_${tag}`])).rows[0].m).toBe(false);
  });
});

describe('10. the password of a platform role', () => {
  it('reaches the server only as a SCRAM-SHA-256 verifier, and the role logs in with it', async () => {
    t = await createTestDatabase('scram');
    const password = `pw-${crypto.randomBytes(12).toString('hex')}`;
    const sent: string[] = [];
    const original = t.db.query.bind(t.db) as (...a: unknown[]) => unknown;
    const spy = vi.spyOn(t.db, 'query').mockImplementation(((...args: unknown[]) => {
      sent.push(typeof args[0] === 'string' ? args[0] : JSON.stringify(args[0]));
      return original(...args);
    }) as never);
    const info = await addPlatform(t.db, `scram-${crypto.randomBytes(3).toString('hex')}`, { password }, ctx);
    spy.mockRestore();
    roles.push(info.role!);
    expect(sent.some((q) => q.includes(password))).toBe(false);
    expect(sent.some((q) => /create role .* login password 'SCRAM-SHA-256\$4096:/.test(q))).toBe(true);
    const u = new URL(t.url);
    u.username = info.role!;
    u.password = password;
    const c = new pg.Client({ connectionString: u.toString() });
    await c.connect();
    open.push(c);
    expect((await c.query('select current_user as u')).rows[0].u).toBe(info.role);
    // the verifier is PostgreSQL's: same inputs, same text as the server computes
    expect(scramVerifier('pencil', 4096, Buffer.from('0123456789abcdef'))).toMatch(
      /^SCRAM-SHA-256\$4096:MDEyMzQ1Njc4OWFiY2RlZg==\$[A-Za-z0-9+/=]{44}:[A-Za-z0-9+/=]{44}$/,
    );
  });
});

describe('11. history prune', () => {
  it('refuses a cut-off in the future, a bare number and one younger than 30 days without --force, and deletes nothing', async () => {
    t = await createTestDatabase('prune');
    await registerAddressRange(t.db, { ar: { IPAM_MAD: 'pgipam', TYPE: 'IP4', IP: '10.94.0.0', SIZE: '4' }, address: {} }, ctx);
    const before = await snapshot(t.db);
    const cases: Array<[string[], RegExp]> = [
      [['--before', '2099-01-01'], /^pgipam: --before 2099-01-01 is in the future: that deletes the whole history/],
      [['--before', '365'], /^pgipam: --before takes an ISO date or an age .*got "365"/],
      [['--before', '1d'], /^pgipam: --before 1d would delete history younger than 30 days: add --force/],
      [['--before', 'next tuesday'], /^pgipam: --before takes an ISO date/],
    ];
    for (const [args, re] of cases) {
      const r = await cli(ownerEnv(t), ['history', 'prune', ...args]);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr).toMatch(re);
    }
    expect(await snapshot(t.db)).toBe(before);
    const ok = await cli(ownerEnv(t), ['history', 'prune', '--before', '365d']);
    expect(ok.stdout).toMatch(/^pruned 0 history rows older than /);
  });
});

describe('12. holds', () => {
  it("are timed on the database clock, whatever the front-end's clock says", async () => {
    t = await createTestDatabase('holds');
    const reg = await registerAddressRange(
      t.db,
      { ar: { IPAM_MAD: 'pgipam', TYPE: 'IP4', IP: '10.95.0.0', SIZE: '4', PGIPAM_HOLD_SECONDS: '3600' }, address: {} },
      ctx,
    );
    await t.db.query(`insert into pgipam.lease (range_id, first_idx, last_idx, kind) values ($1, 0, 0, 'allocation')`, [reg.rangeId]);
    await t.db.query(`delete from pgipam.free_extent where range_id = $1`, [reg.rangeId]);
    await t.db.query(`insert into pgipam.free_extent (range_id, first_idx, last_idx) values ($1, 1, 3)`, [reg.rangeId]);
    // a front-end whose clock is two hours behind
    const now = Date.now();
    const clock = vi.spyOn(Date, 'now').mockReturnValue(now - 2 * 3600_000);
    try {
      await freeAddress(t.db as never, { ar: reg.reply, address: { IP: '10.95.0.0', SIZE: '1' } }, ctx);
    } finally {
      clock.mockRestore();
    }
    const { rows } = await t.db.query(`select extract(epoch from held_until - now())::int as left from pgipam.lease where kind = 'hold'`);
    expect(rows[0].left).toBeGreaterThan(3500);
    expect(rows[0].left).toBeLessThanOrEqual(3600);
  });
});

describe('13. the smaller ones', () => {
  it('CLI argument mistakes and constraint violations get one clear line, --json errors are JSON', async () => {
    t = await createTestDatabase('cliargs');
    await addPool(t.db, 'taken', { prefixes: ['10.96.0.0/24'] }, ctx);
    const cases: Array<[string[], string]> = [
      [['range', 'rm', 'abc'], 'pgipam: the range id must be a whole number from 1 to 9007199254740991, got "NaN"'],
      [['lease', 'list', '--limit', '-1'], 'pgipam: --limit must be a whole number from 1 to 1000000, got "-1"'],
      [['pool', 'add', 'x', '--prefix', '10.97.0.0/24', '--mtu', '10'], 'pgipam: --mtu must be between 68 and 65535'],
      [['pool', 'add', 'y', '--prefix', '10.96.0.0/25'], 'pgipam: 10.96.0.0/25 overlaps a prefix of pool "taken" in space default'],
      [['pool', 'add', 'taken', '--prefix', '10.98.0.0/24'], 'pgipam: pool "taken" already exists'],
      [
        ['pool', 'add', 'z', '--prefix', '10.99.0.0/24', '--gateway', '0'],
        'pgipam: gateway offset 0 is the network address: give an offset of 1 or more (or first, last, none)',
      ],
      [
        ['pool', 'add', 'w', '--prefix', '10.99.0.0/24', '--gateway', '99999'],
        'pgipam: gateway offset 99999 does not fit in any subnet of the pool: its largest IPv4 prefix is a /24 (offsets 1 to 254)',
      ],
      [['platform', 'add', 'dup', '--role', 'pgipam_dup_role'], ''],
      [['platform', 'add', 'dup'], 'pgipam: platform "dup" already exists'],
    ];
    roles.push('pgipam_dup_role');
    const before = await snapshot(t.db);
    for (const [args, line] of cases) {
      const r = await cli(ownerEnv(t), args);
      if (line === '') {
        expect(r.code, args.join(' ')).toBe(0);
        continue;
      }
      expect([r.code, r.stderr], args.join(' ')).toEqual([1, line]);
    }
    expect((await snapshot(t.db)) !== before).toBe(true); // only the one platform was added
    expect((await t.db.query(`select name from pgipam.pool order by name`)).rows).toEqual([{ name: 'taken' }]);
    const json = await cli(ownerEnv(t), ['range', 'show', '999999', '--json']);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stderr)).toEqual({ error: { code: 'NOT_FOUND', message: expect.stringMatching(/999999/) } });
  });

  it('INFO lines are written only for what committed', async () => {
    const { t, p } = await setup('infolines', ['zone-a']);
    const r = await register(platformEnv(p['zone-a']!), { TYPE: 'IP4', IP: '10.97.1.0', SIZE: '4', PGIPAM_HOLD_SECONDS: '60' });
    const ar = r.ar!;
    const ok = await runActionProcess(
      'allocate_address',
      toBase64(actionData(arXmlFormB(ar), addressXml({ ip: '10.97.1.1', size: 1 }))),
      platformEnv(p['zone-a']!),
    );
    expect(ok.stderr).toMatch(/^INFO: pgipam\[7\] allocate_address: allocated 10\.97\.1\.1 in range \d+\n$/);
    // an allocation that fails at commit (a deferred check) logs nothing about allocating
    await t.db.query(
      `create function pgipam.fail_commit() returns trigger language plpgsql as $$ begin raise exception 'commit refused by test'; end $$`,
    );
    await t.db.query(
      `create constraint trigger fail_commit after insert on pgipam.lease deferrable initially deferred for each row execute function pgipam.fail_commit()`,
    );
    const failed = await runActionProcess(
      'allocate_address',
      toBase64(actionData(arXmlFormB(ar), addressXml({ ip: '10.97.1.2', size: 1 }))),
      platformEnv(p['zone-a']!),
    );
    expect(failed.exitCode).toBe(255);
    expect(failed.stderr).toBe('database error: commit refused by test\n');
  });
});
