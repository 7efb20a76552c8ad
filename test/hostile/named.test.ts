// Named hostile cases, injection attempts and secrets, through the real executables.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTemplate } from '../../src/driver/template';
import { EMPTY_ADDRESS, actionData, addressXml, arXmlFormA, arXmlFormB, storedAr, toBase64 } from '../support/oned-sim';
import { type TestDb, createTestDatabase, snapshot } from '../support/db';
import { REMOTES, runActionProcess } from '../support/processes';

let t: TestDb;
let env: Record<string, string>;
beforeAll(async () => {
  t = await createTestDatabase('named');
  env = { PGIPAM_DATABASE_URL: t.url };
});
afterAll(async () => t?.drop());

const register = (ar: Record<string, string>) =>
  runActionProcess('register_address_range', toBase64(actionData(arXmlFormA({ IPAM_MAD: 'pgipam', ...ar }), EMPTY_ADDRESS)), env);

async function expectRefused(r: Awaited<ReturnType<typeof runActionProcess>>, re: RegExp, before: string) {
  expect(r.exitCode).toBe(255);
  expect(r.stdout).toBe('');
  expect(r.reason).toMatch(re);
  expect(await snapshot(t.db)).toBe(before);
}

describe('hostile input through the executables', () => {
  it('refuses huge input, entity expansion, external entities, NUL bytes and duplicated elements', async () => {
    const before = await snapshot(t.db);
    await expectRefused(
      await runActionProcess('get_address', 'A'.repeat(5 * 1024 * 1024), env),
      /^request is larger than 4194304 bytes$/,
      before,
    );
    const laughs =
      '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><IPAM_DRIVER_ACTION_DATA><AR><TYPE>&c;</TYPE></AR></IPAM_DRIVER_ACTION_DATA>';
    await expectRefused(await runActionProcess('register_address_range', toBase64(laughs), env), /DOCTYPE or ENTITY declaration/, before);
    await expectRefused(
      await runActionProcess(
        'register_address_range',
        toBase64(
          '<!DOCTYPE a [<!ENTITY e SYSTEM "file:///etc/shadow">]><IPAM_DRIVER_ACTION_DATA><AR><TYPE>&e;</TYPE></AR></IPAM_DRIVER_ACTION_DATA>',
        ),
        env,
      ),
      /DOCTYPE or ENTITY declaration/,
      before,
    );
    await expectRefused(
      await runActionProcess(
        'register_address_range',
        toBase64(actionData(arXmlFormA({ TYPE: 'IP4', IP: '10.9.0.0', SIZE: '4\u0000', IPAM_MAD: 'pgipam' }), EMPTY_ADDRESS)),
        env,
      ),
      /NUL byte/,
      before,
    );
    await expectRefused(
      await runActionProcess(
        'register_address_range',
        toBase64(
          '<IPAM_DRIVER_ACTION_DATA><AR><TYPE>IP4</TYPE><IP>10.9.0.0</IP><IP>10.8.0.0</IP><SIZE>4</SIZE></AR></IPAM_DRIVER_ACTION_DATA>',
        ),
        env,
      ),
      /AR\/IP appears more than once/,
      before,
    );
    await expectRefused(
      await runActionProcess(
        'get_address',
        toBase64(
          '<IPAM_DRIVER_ACTION_DATA><AR><TYPE>IP4</TYPE></AR><ADDRESS><SIZE>1</SIZE></ADDRESS><ADDRESS><SIZE>2</SIZE></ADDRESS></IPAM_DRIVER_ACTION_DATA>',
        ),
        env,
      ),
      /more than one ADDRESS/,
      before,
    );
    await expectRefused(
      await runActionProcess(
        'get_address',
        toBase64('<IPAM_DRIVER_ACTION_DATA>' + '<X>'.repeat(100000) + '</X>'.repeat(100000) + '</IPAM_DRIVER_ACTION_DATA>'),
        env,
      ),
      /nested deeper than 4 levels/,
      before,
    );
  });

  it('stores and echoes quotes and SQL fragments in every attribute safely; refuses what templates cannot hold', async () => {
    const nasty = {
      DNS: `10.0.0.1"; DROP TABLE pgipam.lease; --`,
      SEARCH_DOMAIN: `x' OR '1'='1`,
      DESCRIPTION: 'say "hi" \\ ok $1 %s ${x}',
      X_ROBERT: "Robert'); DELETE FROM pgipam.address_range;--",
      GATEWAY_NOTE: '<b>bold</b> &amp;',
    };
    const r = await register({ TYPE: 'IP4', IP: '10.10.0.0', SIZE: '8', ...nasty });
    expect(r.reason).toBe('');
    const reply = parseTemplate(r.stdout).values;
    expect(reply).toMatchObject(nasty);
    const { rows } = await t.db.query(`select attrs from pgipam.address_range where id = $1`, [reply.PGIPAM_RANGE_ID]);
    expect(rows[0].attrs).toMatchObject(nasty);
    const tables = await t.db.query(`select count(*)::int as n from information_schema.tables where table_schema = 'pgipam'`);
    expect(tables.rows[0].n).toBeGreaterThanOrEqual(12);
    const before = await snapshot(t.db);
    await expectRefused(await register({ TYPE: 'IP4', IP: '10.11.0.0', SIZE: '8', X: 'a]]>b' }), /attribute X contains "\]\]>"/, before);
    await expectRefused(
      await register({ TYPE: 'IP4', IP: '10.11.0.0', SIZE: '8', X: 'two\nlines' }),
      /attribute X contains a newline/,
      before,
    );
    await expectRefused(await register({ TYPE: 'IP4', IP: '10.11.0.0', SIZE: '8', X: 'trailing\\' }), /ends with a backslash/, before);
    await expectRefused(
      await register({ TYPE: 'IP4', IP: '10.11.0.0', SIZE: '8', PGIPAM_SPACE: "x'; drop table pgipam.space; --" }),
      /^AR PGIPAM_SPACE "x.; drop table pgipam.space; --" must be 1-63 letters, digits/,
      before,
    );
    await expectRefused(
      await register({ TYPE: 'IP4', SIZE: '8', PGIPAM_POOL: "p' or 1=1 --" }),
      /^AR PGIPAM_POOL "p. or 1=1 --" must be 1-63 letters/,
      before,
    );
    await expectRefused(
      await runActionProcess(
        'get_address',
        toBase64(actionData(arXmlFormB({ ...storedAr(reply, 0), PGIPAM_RANGE_ID: '1 or 1=1' }), addressXml({ size: 1 }))),
        env,
      ),
      /PGIPAM_RANGE_ID "1 or 1=1" is not a range id/,
      before,
    );
  });

  it('wrong types in every field end in a reply or one clean line', async () => {
    const base = { TYPE: 'IP4', IP: '10.12.0.0', SIZE: '4' };
    for (const key of [
      'TYPE',
      'IP',
      'IP6',
      'SIZE',
      'MAC',
      'PREFIX_LENGTH',
      'GLOBAL_PREFIX',
      'ULA_PREFIX',
      'NETWORK_ADDRESS',
      'NETWORK_MASK',
      'GATEWAY',
      'PGIPAM_HOLD_SECONDS',
      'SHARED',
    ]) {
      for (const value of ['-1', 'abc', '1.5', '1e9', '<x/>']) {
        const before = await snapshot(t.db);
        const r = await register({ ...base, [key]: value });
        if (r.exitCode === 0) {
          await runActionProcess(
            'unregister_address_range',
            toBase64(actionData(arXmlFormB(storedAr(parseTemplate(r.stdout).values, 0)), EMPTY_ADDRESS)),
            env,
          );
        } else {
          expect(r.exitCode, `${key}=${value}`).toBe(255);
          expect(r.reason.length, `${key}=${value}`).toBeGreaterThan(5);
          expect(r.stderr, `${key}=${value}`).not.toMatch(/^\s+at |TypeError|database error/m);
          expect(await snapshot(t.db), `${key}=${value}`).toBe(before);
        }
      }
    }
  });

  it('takes addresses and prefixes at the edges of both families', async () => {
    for (const [ar, ok] of [
      [{ TYPE: 'IP4', IP: '0.0.0.0', SIZE: '1' }, true],
      [{ TYPE: 'IP4', IP: '255.255.255.255', SIZE: '1' }, true],
      [{ TYPE: 'IP4', IP: '255.255.255.255', SIZE: '2' }, false],
      [{ TYPE: 'IP4', IP: '128.0.0.0', SIZE: String(2 ** 31), PGIPAM_SPACE: 'default' }, false], // overlaps 255.255.255.255
      [{ TYPE: 'IP6_STATIC', IP6: '::', PREFIX_LENGTH: '128', SIZE: '1' }, true],
      [{ TYPE: 'IP6_STATIC', IP6: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', PREFIX_LENGTH: '128' }, true],
      [{ TYPE: 'IP6_STATIC', IP6: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe', PREFIX_LENGTH: '127', SIZE: '3' }, false],
      [{ TYPE: 'IP6_STATIC', IP6: '2001:db8::', PREFIX_LENGTH: '129', SIZE: '1' }, false],
      [{ TYPE: 'IP6_STATIC', IP6: '2001:db8::', PREFIX_LENGTH: '0', SIZE: '1' }, false],
      [{ TYPE: 'ETHER', MAC: 'ff:ff:ff:ff:ff:ff', SIZE: '1' }, true],
      [{ TYPE: 'ETHER', MAC: 'ff:ff:ff:ff:ff:ff', SIZE: '2' }, false],
      [{ TYPE: 'IP4', IP: '10.13.0.0', SIZE: '4294967296' }, false],
    ] as Array<[Record<string, string>, boolean]>) {
      const r = await register(ar);
      expect(r.exitCode, JSON.stringify(ar) + r.reason).toBe(ok ? 0 : 255);
    }
  });
});

describe('faults and secrets', () => {
  it('an old schema, a server that never answers, and a wrong password each give their own line', async () => {
    const xml = toBase64(actionData(arXmlFormB({ TYPE: 'IP4', IP: '10.0.0.1', SIZE: '4' }), addressXml({ size: 1 })));
    await t.db.query(`create table pgipam.migration_backup as select * from pgipam.migration`);
    await t.db.query(`delete from pgipam.migration where id > 1`);
    try {
      const old = await runActionProcess('get_address', xml, env);
      expect(old.reason).toMatch(/^the database schema is at version 1, this pgipam needs \d+: run "pgipam migrate"$/);
    } finally {
      await t.db.query(`insert into pgipam.migration select * from pgipam.migration_backup where id > 1`);
      await t.db.query(`drop table pgipam.migration_backup`);
    }
    // a server that accepts the connection and then says nothing
    const silent = net.createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const port = (silent.address() as net.AddressInfo).port;
    try {
      const r = await runActionProcess('get_address', xml, {
        PGIPAM_DATABASE_URL: `postgres://u:pw@127.0.0.1:${port}/x`,
        PGIPAM_CONNECT_TIMEOUT_MS: '1000',
      });
      expect(r.reason).toMatch(
        /^cannot reach PostgreSQL at 127\.0\.0\.1:\d+\/x \(from PGIPAM_DATABASE_URL\): no answer within connect_timeout_ms$/,
      );
      expect(r.ms).toBeLessThan(8000); // connect_timeout_ms 1000 plus process start-up on a busy machine
    } finally {
      silent.close();
    }
  });

  it('a caller that never closes stdin cannot hold the process past action_timeout_ms', async () => {
    const { spawn } = await import('node:child_process');
    const started = Date.now();
    const child = spawn(process.execPath, [`${REMOTES}/get_address`, '9'], {
      env: { PATH: process.env.PATH ?? '', PGIPAM_CONFIG: '/dev/null', PGIPAM_ACTION_TIMEOUT_MS: '1500' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    child.stdin.write('PElQQU1f');
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise<number | null>((r) => child.on('close', r));
    expect(code).toBe(255);
    expect(stderr).toBe(
      'get_address gave up after 1500 ms (action_timeout_ms); nothing was committed (waiting for the request on stdin)\n',
    );
    expect(Date.now() - started).toBeLessThan(6000);
    child.stdin.destroy();
  });

  it('never shows the password: not in errors, not in debug output, not in the history', async () => {
    const u = new URL(t.url);
    u.password = 'Sup3rSecretPw';
    const r = await runActionProcess(
      'get_address',
      toBase64(actionData(arXmlFormB({ TYPE: 'IP4', IP: '10.0.0.1', SIZE: '4' }), addressXml({ size: 1 }))),
      { PGIPAM_DATABASE_URL: u.toString(), PGIPAM_DEBUG: '1' },
    );
    expect(r.exitCode).toBe(255);
    expect(r.stderr).toMatch(/DEBUG:/);
    expect(r.stderr).not.toMatch(/Sup3rSecretPw/);
    const real = new URL(t.url).password;
    const { rows } = await t.db.query(`select count(*)::int as n from pgipam.history where detail::text like '%' || $1 || '%'`, [real]);
    expect(rows[0].n).toBe(0);
  });
});
