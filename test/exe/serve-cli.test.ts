// The commands of issue 14 as an operator runs them (the bundled CLI): pgipam lease get, take and
// free for other owners, pgipam token add, list and revoke, pgipam webhook add, list and rm, and
// pgipam serve answering with a token from `token add`, refusing it once revoked, and ending on
// SIGTERM with exit 0.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerAddressRange } from '../../src/allocator/index';
import { type TestDb, createTestDatabase, testContext } from '../support/db';
import { freePort } from '../support/embedded';
import { addTestPlatform, dropPlatformRoles, type TestPlatform } from '../support/platforms';
import { runCliProcess, startServeProcess } from '../support/processes';

let t: TestDb;
let p: TestPlatform;
const roles: string[] = [];
const cli = (args: string[], env: Record<string, string> = {}) => runCliProcess(args, { PGIPAM_DATABASE_URL: t.url, ...env });

beforeAll(async () => {
  t = await createTestDatabase('serve_cli');
  p = await addTestPlatform(t, 'clis', roles, testContext());
  expect((await cli(['pool', 'add', 'metal', '--prefix', '10.77.0.0/24'])).code).toBe(0);
});
afterAll(async () => {
  await t?.drop();
  await dropPlatformRoles(roles);
});

describe('pgipam lease, token, webhook and serve', () => {
  it('lease get twice, take, free twice', async () => {
    // a range of the default platform (the CLI's) in the pool
    await registerAddressRange(
      t.db,
      { ar: { TYPE: 'IP4', SIZE: '20', IPAM_MAD: 'pgipam', PGIPAM_POOL: 'metal' }, address: {} },
      testContext(),
    );
    const first = await cli(['lease', 'get', '--owner', 'baremetal/srv-1', '--pool', 'metal']);
    expect([first.code, first.stdout]).toEqual([
      0,
      expect.stringMatching(/^leased 10\.77\.0\.\d+ to baremetal\/srv-1 \(range 1, pool metal\)\n$/),
    ]);
    const again = await cli(['lease', 'get', '--owner', 'baremetal/srv-1', '--pool', 'metal', '--json']);
    expect(JSON.parse(again.stdout)).toMatchObject({ created: false, owner: 'baremetal/srv-1' });
    const ip = JSON.parse(again.stdout).ip as string;
    const taken = await cli(['lease', 'take', ip, '--owner', 'vip/web']);
    expect(taken.code).toBe(1);
    expect(taken.stderr).toMatch(/^pgipam: .* is not free: .* to baremetal\/srv-1/);
    expect((await cli(['lease', 'list', '--owner', 'baremetal/srv-1'])).stdout).toContain(ip);
    expect((await cli(['lease', 'free', ip, '--owner', 'baremetal/srv-1'])).stdout).toBe(`freed ${ip} of baremetal/srv-1\n`);
    expect((await cli(['lease', 'free', ip])).stdout).toBe(`${ip} was free already\n`);
  });

  it('token add prints the token once, list never does, serve takes it until it is revoked', async () => {
    const add = await cli(['token', 'add', 'ops', '--platform', p.name]);
    expect(add.code).toBe(0);
    const token = add.stdout.trim();
    expect(token).toMatch(/^pgipam_[A-Za-z0-9_-]{43}$/);
    const list = await cli(['token', 'list']);
    expect(list.stdout).toContain('ops');
    expect(list.stdout).not.toContain(token);
    const noRole = await cli(['token', 'add', 'x', '--platform', 'default']);
    expect([noRole.code, noRole.stderr]).toEqual([1, expect.stringMatching(/has no database role of its own/)]);
    const serve = await startServeProcess({ PGIPAM_DATABASE_URL: t.url }, await freePort(), ['--no-webhooks']);
    try {
      const get = (path: string) => fetch(`${serve.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
      expect((await get('/api/v1/pools')).status).toBe(200);
      expect((await cli(['token', 'revoke', 'ops'])).code).toBe(0);
      const refused = await get('/api/v1/pools');
      expect(refused.status).toBe(401);
      expect(refused.headers.get('content-type')).toMatch(/problem\+json/);
    } finally {
      expect(await serve.stop()).toBe(0);
    }
    expect(serve.stderr()).toMatch(/^pgipam serve: listening on http:\/\/127\.0\.0\.1:\d+ \(API \/api\/v1, web view \/ui\)\n$/);
  });

  it('webhook add, list, rm', async () => {
    const add = await cli(['webhook', 'add', 'http://127.0.0.1:9/hook', '--platform', p.name, '--json']);
    const w = JSON.parse(add.stdout);
    expect(w).toMatchObject({ platform: p.name, url: 'http://127.0.0.1:9/hook', attempts: 0 });
    expect(w.secret).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect((await cli(['webhook', 'add', 'ftp://x', '--platform', p.name])).stderr).toMatch(/http:\/\/ or https:\/\//);
    expect((await cli(['webhook', 'list'])).stdout).toContain('http://127.0.0.1:9/hook');
    expect((await cli(['webhook', 'rm', String(w.id)])).code).toBe(0);
    expect((await cli(['webhook', 'list', '--json'])).stdout.trim()).toBe('[]');
  });
});
