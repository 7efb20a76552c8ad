// Black-box: the built executables, fed exactly as oned feeds them.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTemplate } from '../../src/driver/template';
import {
  type Attrs,
  EMPTY_ADDRESS,
  actionData,
  addressForIndex,
  addressXml,
  arXmlFormA,
  arXmlFormB,
  storedAr,
  toBase64,
} from '../support/oned-sim';
import { type TestDb, checkConsistency, createTestDatabase, emptyDatabase, snapshot } from '../support/db';
import { REMOTES, runActionProcess, runProcess } from '../support/processes';
import { freePort } from '../support/embedded';

let t: TestDb;
let env: Record<string, string>;
beforeAll(async () => {
  t = await createTestDatabase('exe');
  env = { PGIPAM_DATABASE_URL: t.url };
});
afterAll(async () => t?.drop());

const ACTION_DEFINITIONS = ['register_address_range', 'unregister_address_range', 'allocate_address', 'get_address', 'free_address'];

async function registerAr(request: Attrs, arId = 0): Promise<Attrs> {
  const r = await runActionProcess(
    'register_address_range',
    toBase64(actionData(arXmlFormA({ IPAM_MAD: 'pgipam', ...request }), EMPTY_ADDRESS)),
    env,
  );
  expect(r.reason).toBe('');
  expect(r.exitCode).toBe(0);
  const parsed = parseTemplate(r.stdout);
  expect(parsed.name).toBe('AR');
  return storedAr(parsed.values, arId);
}

describe('the installable tree', () => {
  it('holds five self-contained executables with a node shebang', () => {
    for (const a of ACTION_DEFINITIONS) {
      const p = path.join(REMOTES, a);
      const st = fs.statSync(p);
      expect(st.mode & 0o111).toBe(0o111);
      expect(fs.readFileSync(p, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
      expect(fs.readFileSync(p, 'utf8')).not.toMatch(/require\(["'](pg|fast-xml-parser|ip-address)["']\)/);
    }
  });
  it('works from any directory name (the MAD name is the AR IPAM_MAD)', async () => {
    const dir = fs.mkdtempSync(path.join(REMOTES, '..', 'other-mad-'));
    try {
      fs.copyFileSync(path.join(REMOTES, 'get_address'), path.join(dir, 'get_address'));
      const ar = await registerAr({ TYPE: 'IP4', IP: '10.99.0.0', SIZE: '4', IPAM_MAD: path.basename(dir) });
      const r = await runProcess(
        path.join(dir, 'get_address'),
        ['3'],
        toBase64(actionData(arXmlFormB(ar), addressXml({ size: 1 }))),
        env,
        {},
      );
      expect(r.exitCode).toBe(0);
      expect(r.stdout).toContain('IP = "10.99.0.0"');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
  it.each(ACTION_DEFINITIONS)('%s --help says what it reads and writes', async (a) => {
    const r = await runActionProcess(a, '', {}, ['--help']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/base64/);
    expect(r.stdout).toMatch(new RegExp(a));
  });
});

describe('a lease lifecycle through the executables', () => {
  it('registers, leases, allocates, frees and unregisters an IPv4 AR', async () => {
    const ar = await registerAr({
      TYPE: 'IP4',
      IP: '10.0.0.10',
      SIZE: '100',
      NETWORK_MASK: '255.255.255.0',
      GATEWAY: '10.0.0.1',
      DNS: '10.0.0.2 10.0.0.3',
      NETBOX_X: 'q"uote',
    });
    expect(ar).toMatchObject({
      IPAM_MAD: 'pgipam',
      TYPE: 'IP4',
      IP: '10.0.0.10',
      SIZE: '100',
      NETWORK_ADDRESS: '10.0.0.0',
      NETWORK_MASK: '255.255.255.0',
      GATEWAY: '10.0.0.1',
      DNS: '10.0.0.2 10.0.0.3',
      NETBOX_X: 'q"uote',
    });

    const g = await runActionProcess('get_address', toBase64(actionData(arXmlFormB(ar), addressXml({ size: 1 }))), env);
    expect(g.exitCode).toBe(0);
    expect(g.stdout).toBe('ADDRESS = [\n  IP = "10.0.0.10",\n  SIZE = "1"\n]\n');
    expect(g.stderr).toMatch(/^INFO: pgipam\[7\] get_address: leased 10.0.0.10 from range \d+\n$/);

    const block = await runActionProcess('get_address', toBase64(actionData(arXmlFormB(ar, 1), addressXml({ size: 10 }))), env);
    expect(parseTemplate(block.stdout).values).toEqual({ IP: '10.0.0.11', SIZE: '10' });

    const a1 = await runActionProcess(
      'allocate_address',
      toBase64(actionData(arXmlFormB(ar, 11), addressXml(addressForIndex(ar, 50, 1)))),
      env,
    );
    expect([a1.exitCode, a1.stdout, a1.reason]).toEqual([0, '', '']);
    const a2 = await runActionProcess(
      'allocate_address',
      toBase64(actionData(arXmlFormB(ar, 12), addressXml(addressForIndex(ar, 50, 1)))),
      env,
      ['8'],
    );
    expect(a2.exitCode).toBe(255);
    expect(a2.stdout).toBe('');
    expect(a2.reason).toMatch(/^10\.0\.0\.60 is not free: 10\.0\.0\.60 allocated by allocate_address since \S+, request 7$/);

    // free one address out of the 10-block, then get it back
    const f = await runActionProcess('free_address', toBase64(actionData(arXmlFormB(ar, 12), addressXml(addressForIndex(ar, 5, 1)))), env);
    expect([f.exitCode, f.stdout]).toEqual([0, '']);
    const f2 = await runActionProcess('free_address', toBase64(actionData(arXmlFormB(ar, 11), addressXml(addressForIndex(ar, 5, 1)))), env);
    expect(f2.exitCode).toBe(0);
    expect(f2.stderr).toMatch(/already free/);
    const g2 = await runActionProcess('get_address', toBase64(actionData(arXmlFormB(ar, 11), addressXml({ size: 1 }))), env);
    expect(parseTemplate(g2.stdout).values.IP).toBe('10.0.0.15');
    // after the first lease (the transactional path: it records the MAC oned gave the AR), the
    // leases, the allocation and the free went one round trip each (migration 11), also through
    // PgBouncer (npm run test:pgbouncer): their history rows carry the action's token
    const { rows: trips } = await t.db.query(
      `select h.event, h.address, h.action_token is not null as one_trip from pgipam.history h
        where h.range_id = $1 and h.event like 'address_%' order by h.id`,
      [ar.PGIPAM_RANGE_ID],
    );
    expect(trips.map((r: { one_trip: boolean }) => r.one_trip)).toEqual([false, true, true, true, true]);
    expect(trips.map((r: { event: string }) => r.event)).toEqual([
      'address_leased',
      'address_leased',
      'address_allocated',
      'address_freed',
      'address_leased',
    ]);

    // onevnet delete sends form (a) of the stored AR, ALLOCATED included
    const u = await runActionProcess(
      'unregister_address_range',
      toBase64(actionData(arXmlFormA({ ...ar, ALLOCATED: ' 0 4294967297' }), EMPTY_ADDRESS)),
      env,
    );
    expect([u.exitCode, u.stdout, u.reason]).toEqual([0, '', '']);
    const u2 = await runActionProcess('unregister_address_range', toBase64(actionData(arXmlFormB(ar), EMPTY_ADDRESS)), env);
    expect(u2.exitCode).toBe(0);
    expect(await checkConsistency(t.db)).toEqual([]);
  });

  it.each([
    ['ETHER', { TYPE: 'ETHER', SIZE: '16' }],
    ['IP6', { TYPE: 'IP6', SIZE: '16', GLOBAL_PREFIX: '2001:db8:a::', ULA_PREFIX: 'fd01::' }],
    ['IP6_STATIC', { TYPE: 'IP6_STATIC', IP6: '2001:db8:b::10', PREFIX_LENGTH: '64', SIZE: '16' }],
    ['IP4_6', { TYPE: 'IP4_6', IP: '10.60.0.1', SIZE: '16', GLOBAL_PREFIX: '2001:db8:c::' }],
    ['IP4_6_STATIC', { TYPE: 'IP4_6_STATIC', IP: '10.61.0.1', SIZE: '16', IP6: '2001:db8:d::1', PREFIX_LENGTH: '64' }],
  ] as Array<[string, Attrs]>)(
    'handles a %s AR: register, explicit allocate, free, and get_address where oned allows it',
    async (type, request) => {
      const ar = await registerAr(request, 3);
      expect(ar.TYPE).toBe(type);
      const addr = addressForIndex(ar, 4, 1);
      const a = await runActionProcess('allocate_address', toBase64(actionData(arXmlFormB(ar), addressXml(addr))), env);
      expect(a.reason).toBe('');
      const again = await runActionProcess('allocate_address', toBase64(actionData(arXmlFormB(ar), addressXml(addr))), env);
      expect(again.exitCode).toBe(255);
      expect(again.reason).toMatch(/is not free/);
      const g = await runActionProcess('get_address', toBase64(actionData(arXmlFormB(ar), addressXml({ size: 1 }))), env);
      if (type.startsWith('IP4')) {
        expect(g.exitCode).toBe(0);
        expect(parseTemplate(g.stdout).values.IP).toBe(request.IP);
      } else {
        expect(g.exitCode).toBe(255);
        expect(g.stdout).toBe('');
        expect(g.reason).toMatch(/get_address needs an IPv4 range/);
      }
      const f = await runActionProcess('free_address', toBase64(actionData(arXmlFormB(ar), addressXml(addr))), env);
      expect(f.exitCode).toBe(0);
      const u = await runActionProcess('unregister_address_range', toBase64(actionData(arXmlFormB(ar), EMPTY_ADDRESS)), env);
      expect(u.exitCode).toBe(0);
    },
  );
});

describe('input forms', () => {
  it('accepts $1 = base64 (OpenNebula 5.4 - 5.8) and raw XML on stdin', async () => {
    const xml = actionData(arXmlFormA({ TYPE: 'IP4', IP: '10.70.0.0', SIZE: '4', IPAM_MAD: 'pgipam' }), EMPTY_ADDRESS);
    const old = await runActionProcess('register_address_range', '', env, [toBase64(xml), '12']);
    expect(old.exitCode).toBe(0);
    const ar = storedAr(parseTemplate(old.stdout).values, 0);
    const raw = await runActionProcess('get_address', actionData(arXmlFormB(ar), addressXml({ size: 2 })), env);
    expect(parseTemplate(raw.stdout).values).toEqual({ IP: '10.70.0.0', SIZE: '2' });
  });
});

describe('bad input: one line, exit 255, empty stdout, database unchanged', () => {
  let ar: Attrs;
  beforeAll(async () => {
    ar = await registerAr({ TYPE: 'IP4', IP: '10.80.0.0', SIZE: '8' });
  });
  const cases: Array<[string, string, () => string, RegExp]> = [
    ['empty stdin', 'get_address', () => '', /^empty request/],
    ['bad base64', 'get_address', () => '@@@not base64@@@', /neither base64 nor XML/],
    ['broken XML', 'get_address', () => toBase64('<IPAM_DRIVER_ACTION_DATA><AR><TYPE>IP4</TYPE>'), /not well-formed XML/],
    [
      'missing AR',
      'get_address',
      () => toBase64('<IPAM_DRIVER_ACTION_DATA><ADDRESS><SIZE>1</SIZE></ADDRESS></IPAM_DRIVER_ACTION_DATA>'),
      /no AR element/,
    ],
    [
      'SIZE 0',
      'get_address',
      () => toBase64(actionData(arXmlFormB(ar), addressXml({ size: 0 }))),
      /ADDRESS SIZE 0 is below the minimum of 1/,
    ],
    [
      'negative SIZE',
      'get_address',
      () => toBase64(actionData(arXmlFormB(ar), '<ADDRESS><SIZE>-3</SIZE></ADDRESS>')),
      /ADDRESS SIZE "-3" is not a whole number/,
    ],
    [
      'non-numeric SIZE',
      'get_address',
      () => toBase64(actionData(arXmlFormB(ar), '<ADDRESS><SIZE>two</SIZE></ADDRESS>')),
      /ADDRESS SIZE "two" is not a whole number/,
    ],
    [
      'SIZE larger than the range',
      'get_address',
      () => toBase64(actionData(arXmlFormB(ar), addressXml({ size: 9 }))),
      /ADDRESS SIZE 9 is larger than range/,
    ],
    [
      'IP outside the range',
      'allocate_address',
      () => toBase64(actionData(arXmlFormB(ar), addressXml({ ip: '10.80.0.8', size: 1 }))),
      /10\.80\.0\.8 is outside range/,
    ],
    [
      'malformed IP',
      'allocate_address',
      () => toBase64(actionData(arXmlFormB(ar), addressXml({ ip: '10.80.0.1.1', size: 1 }))),
      /not an IPv4 address/,
    ],
    [
      'malformed IPv6',
      'register_address_range',
      () =>
        toBase64(
          actionData(
            arXmlFormA({ TYPE: 'IP6_STATIC', IP6: '2001:db8::g', PREFIX_LENGTH: '64', SIZE: '4', IPAM_MAD: 'pgipam' }),
            EMPTY_ADDRESS,
          ),
        ),
      /AR IP6 "2001:db8::g" is not a valid IPv6 address/,
    ],
    [
      'unknown TYPE',
      'register_address_range',
      () => toBase64(actionData(arXmlFormA({ TYPE: 'IPX', SIZE: '4', IPAM_MAD: 'pgipam' }), EMPTY_ADDRESS)),
      /TYPE "IPX" is unknown/,
    ],
    [
      'entity expansion',
      'get_address',
      () => toBase64('<!DOCTYPE a [<!ENTITY b "c">]><IPAM_DRIVER_ACTION_DATA><AR><TYPE>&b;</TYPE></AR></IPAM_DRIVER_ACTION_DATA>'),
      /DOCTYPE or ENTITY/,
    ],
    [
      'non-ASCII in an error',
      'allocate_address',
      () => toBase64(actionData(arXmlFormB(ar), addressXml({ ip: '10.80.0.\u00e9', size: 1 }))),
      /10\.80\.0\.\\u00e9/,
    ],
  ];
  it.each(cases)('%s', async (_name, action, input, re) => {
    const before = await snapshot(t.db);
    const r = await runActionProcess(action, input(), env);
    expect(r.exitCode).toBe(255);
    expect(r.stdout).toBe('');
    expect(r.reason).toMatch(re);
    expect(
      r.stderr
        .trim()
        .split('\n')
        .filter((l) => !/^(INFO|WARN|DEBUG|ERROR):\s/.test(l)),
    ).toHaveLength(1);
    expect(r.stderr).toMatch(/^[\x00-\x7f]*$/);
    expect(await snapshot(t.db)).toBe(before);
  });
});

describe('database faults: distinct line, quick exit', () => {
  it('says the server is unreachable, fast', async () => {
    const port = await freePort();
    const r = await runActionProcess(
      'get_address',
      toBase64(actionData(arXmlFormB({ TYPE: 'IP4', IP: '10.0.0.1', SIZE: '4', PGIPAM_RANGE_ID: '1' }), addressXml({ size: 1 }))),
      { PGIPAM_DATABASE_URL: `postgres://u:secretpw@127.0.0.1:${port}/x` },
    );
    expect(r.exitCode).toBe(255);
    expect(r.reason).toMatch(/^cannot reach PostgreSQL at 127\.0\.0\.1:\d+\/x \(from PGIPAM_DATABASE_URL\): connection refused$/);
    expect(r.stderr).not.toMatch(/secretpw/);
    expect(r.ms).toBeLessThan(10_000);
  });
  it('says the schema is missing and what to run', async () => {
    const e = await emptyDatabase('noschema');
    try {
      const r = await runActionProcess(
        'get_address',
        toBase64(actionData(arXmlFormB({ TYPE: 'IP4', IP: '10.0.0.1', SIZE: '4' }), addressXml({ size: 1 }))),
        { PGIPAM_DATABASE_URL: e.url },
      );
      expect(r.exitCode).toBe(255);
      expect(r.reason).toBe('the database has no pgipam schema: run "pgipam migrate"');
    } finally {
      await e.drop();
    }
  });
  // PostgreSQL's own answers (a pooler in front answers for itself)
  it('says the database does not exist', async () => {
    const u = new URL(t.directUrl);
    u.pathname = '/no_such_db';
    const r = await runActionProcess(
      'free_address',
      toBase64(actionData(arXmlFormB({ TYPE: 'IP4', IP: '10.0.0.1', SIZE: '4' }), addressXml({ ip: '10.0.0.1', size: 1 }))),
      { PGIPAM_DATABASE_URL: u.toString() },
    );
    expect(r.reason).toMatch(/the database at 127\.0\.0\.1:\d+\/no_such_db .* does not exist/);
  });
  it('says the password is wrong', async () => {
    const u = new URL(t.directUrl);
    u.password = 'wrong-password';
    const r = await runActionProcess(
      'free_address',
      toBase64(actionData(arXmlFormB({ TYPE: 'IP4', IP: '10.0.0.1', SIZE: '4' }), addressXml({ ip: '10.0.0.1', size: 1 }))),
      { PGIPAM_DATABASE_URL: u.toString() },
    );
    expect(r.reason).toMatch(/PostgreSQL refused the login at .*: wrong password or user/);
    expect(r.stderr).not.toMatch(/wrong-password/);
  });
  it('says what to configure when nothing is', async () => {
    const r = await runActionProcess(
      'free_address',
      toBase64(actionData(arXmlFormB({ TYPE: 'IP4', IP: '10.0.0.1', SIZE: '4' }), addressXml({ ip: '10.0.0.1', size: 1 }))),
      {},
    );
    expect(r.reason).toMatch(/^no database configured: set PGIPAM_DATABASE_URL/);
  });
});
