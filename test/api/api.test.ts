// pgipam serve's API on the real database, route by route: authentication, confinement by
// row-level security (another platform's restricted pool and ranges are 404), validation,
// idempotent retries, 20 concurrent clients leasing the last addresses of a range, the event
// feed, the OpenAPI document, and the web view's pages.
import SwaggerParser from '@apidevtools/swagger-parser';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addToken, revokeToken } from '../../src/admin/api-tokens';
import { addPool } from '../../src/admin/pool-admin';
import { grantPool } from '../../src/admin/platforms';
import { registerAddressRange } from '../../src/allocator/index';
import { buildServer } from '../../src/api/server';
import { loadConfig } from '../../src/config';
import type { DbPool } from '../../src/db/pool';
import { type TestDb, createTestDatabase, testContext } from '../support/db';
import { type TestPlatform, addTestPlatform, dropPlatformRoles } from '../support/platforms';

let t: TestDb;
let app: FastifyInstance;
let pool: DbPool;
const roles: string[] = [];
const ctx = testContext('api');
let a: TestPlatform;
let b: TestPlatform;
const tok: Record<string, string> = {};
let rangeA: Record<string, string>;
let rangeB: Record<string, string>;
let small: Record<string, string>;

const call = (method: string, url: string, token?: string, payload?: unknown) =>
  app.inject({ method: method as never, url, headers: token ? { authorization: `Bearer ${token}` } : {}, payload: payload as never });

beforeAll(async () => {
  t = await createTestDatabase('api');
  a = await addTestPlatform(t, 'apia', roles, ctx);
  b = await addTestPlatform(t, 'apib', roles, ctx);
  await addPool(t.db, 'shared', { prefixes: ['10.80.0.0/22'] }, ctx);
  await addPool(t.db, 'secret', { prefixes: ['10.81.0.0/24'], restricted: true }, ctx);
  await grantPool(t.db, b.name, 'secret', ctx);
  ({ reply: rangeA } = await registerAddressRange(
    t.db,
    { ar: { TYPE: 'IP4', SIZE: '100', IPAM_MAD: 'pgipam', PGIPAM_POOL: 'shared' }, address: {} },
    { ...ctx, platform: a.name },
  ));
  ({ reply: small } = await registerAddressRange(
    t.db,
    { ar: { TYPE: 'IP4', SIZE: '8', IPAM_MAD: 'pgipam', PGIPAM_POOL: 'shared' }, address: {} },
    { ...ctx, platform: a.name },
  ));
  ({ reply: rangeB } = await registerAddressRange(
    t.db,
    { ar: { TYPE: 'IP4', SIZE: '50', IPAM_MAD: 'pgipam', PGIPAM_POOL: 'secret' }, address: {} },
    { ...ctx, platform: b.name },
  ));
  tok.a = (await addToken(t.db, 'ta', a.name)).token;
  tok.b = (await addToken(t.db, 'tb', b.name)).token;
  tok.revoked = (await addToken(t.db, 'tr', a.name)).token;
  await revokeToken(t.db, 'tr');
  ({ app, pool } = await buildServer({ config: loadConfig({ PGIPAM_DATABASE_URL: t.url, PGIPAM_CONFIG: '/dev/null' }), connections: 25 }));
});
afterAll(async () => {
  await app?.close();
  await pool?.close();
  await t?.drop();
  await dropPlatformRoles(roles);
});

describe('authentication', () => {
  it.each([
    ['no token', undefined],
    ['a wrong token', 'pgipam_not-a-token'],
    ['a revoked token', 'REVOKED'],
  ])('%s: 401 problem+json', async (_what, token) => {
    const r = await call('GET', '/api/v1/pools', token === 'REVOKED' ? tok.revoked : token);
    expect(r.statusCode).toBe(401);
    expect(r.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(r.json()).toMatchObject({ status: 401, title: 'Unauthorized' });
    expect(r.body).not.toMatch(/at .*\.ts:\d+/);
  });
  it('the health check and the OpenAPI document need none', async () => {
    expect((await call('GET', '/api/v1/health')).json()).toMatchObject({ status: 'ok' });
    expect((await call('GET', '/api/v1/openapi.json')).statusCode).toBe(200);
  });
});

describe('what a platform sees', () => {
  it('pools: its own and the shared, not another platform restricted one (404, not its data)', async () => {
    const names = (await call('GET', '/api/v1/pools', tok.a)).json().map((p: { name: string }) => p.name);
    expect(names).toContain('shared');
    expect(names).not.toContain('secret');
    const hidden = await call('GET', '/api/v1/pools/secret', tok.a);
    expect(hidden.statusCode).toBe(404);
    expect(hidden.body).not.toMatch(/10\.81/);
    const shown = (await call('GET', '/api/v1/pools/secret', tok.b)).json();
    expect(shown).toMatchObject({ name: 'secret', restricted: true });
    expect(shown.prefixes[0]).toMatchObject({ prefix: '10.81.0.0/24' });
    expect(shown.ranges.map((r: { id: number }) => r.id)).toEqual([Number(rangeB.PGIPAM_RANGE_ID)]);
  });
  it('spaces: the address spaces, with the ranges this platform has in each', async () => {
    const spaces = (await call('GET', '/api/v1/spaces', tok.a)).json();
    expect(spaces).toEqual([expect.objectContaining({ name: 'default', ranges: 2 })]);
    expect((await call('GET', '/api/v1/spaces', tok.b)).json()).toEqual([expect.objectContaining({ name: 'default', ranges: 1 })]);
  });
  it('ranges, a range, its leases, find, history: only its own', async () => {
    const own = await call('GET', `/api/v1/ranges/${rangeA.PGIPAM_RANGE_ID}/leases`, tok.a);
    expect(own.statusCode).toBe(200);
    expect(Array.isArray(own.json())).toBe(true);
    const ids = (await call('GET', '/api/v1/ranges', tok.a)).json().map((r: { id: number }) => r.id);
    expect(ids).toEqual([Number(rangeA.PGIPAM_RANGE_ID), Number(small.PGIPAM_RANGE_ID)]);
    expect((await call('GET', `/api/v1/ranges/${rangeB.PGIPAM_RANGE_ID}`, tok.a)).statusCode).toBe(404);
    expect((await call('GET', `/api/v1/ranges/${rangeB.PGIPAM_RANGE_ID}/leases`, tok.a)).statusCode).toBe(404);
    expect((await call('GET', `/api/v1/ranges/${rangeA.PGIPAM_RANGE_ID}`, tok.a)).json()).toMatchObject({
      first: rangeA.IP,
      size: 100,
      pool: 'shared',
    });
    expect((await call('GET', `/api/v1/find/${rangeB.IP}`, tok.a)).json().matches).toEqual([]);
    expect((await call('GET', `/api/v1/find/${rangeB.IP}`, tok.b)).json().matches).toHaveLength(1);
    const h = (await call('GET', '/api/v1/history?limit=50', tok.a)).json();
    expect(h.length).toBeGreaterThan(0);
    expect(new Set(h.map((x: { platform: string }) => x.platform))).toEqual(new Set([a.name]));
  });
});

describe('validation', () => {
  it.each([
    ['POST', '/api/v1/leases', { owner: 'not an owner', pool: 'shared' }],
    ['POST', '/api/v1/leases', { owner: 'baremetal/x', pool: 'shared', size: 0 }],
    ['POST', '/api/v1/leases', { owner: 'baremetal/x', pool: 'shared', extra: 1 }],
    ['POST', '/api/v1/leases', { owner: 'baremetal/x' }],
    ['PUT', '/api/v1/leases/not-an-ip', { owner: 'vip/x' }],
    ['PUT', '/api/v1/leases/999.1.1.1', { owner: 'vip/x' }],
    ['GET', '/api/v1/ranges/abc', undefined],
    ['GET', '/api/v1/events?after=-1', undefined],
    ['DELETE', '/api/v1/leases/10.80.0.9', undefined],
  ])('%s %s %j: 400 with one line', async (method, url, body) => {
    const r = await call(method, url, tok.a, body);
    expect(r.statusCode).toBe(400);
    expect(r.json()).toMatchObject({ status: 400 });
    expect(r.json().detail).not.toMatch(/\n/);
  });
  it('a body over the limit: 413', async () => {
    const r = await call('POST', '/api/v1/leases', tok.a, { owner: 'baremetal/x', pool: 'x'.repeat(20000) });
    expect(r.statusCode).toBe(413);
  });
});

describe('leases', () => {
  it('get, retried: 201 then 200 with the same address; take; free twice: 204', async () => {
    const first = await call('POST', '/api/v1/leases', tok.a, { owner: 'baremetal/srv-1', pool: 'shared' });
    expect(first.statusCode).toBe(201);
    const again = await call('POST', '/api/v1/leases', tok.a, { owner: 'baremetal/srv-1', pool: 'shared' });
    expect(again.statusCode).toBe(200);
    expect(again.json().ip).toBe(first.json().ip);
    const vip = `${rangeA.IP!.split('.').slice(0, 3).join('.')}.${Number(rangeA.IP!.split('.')[3]) + 50}`;
    expect((await call('PUT', `/api/v1/leases/${vip}`, tok.a, { owner: 'vip/web' })).statusCode).toBe(201);
    expect((await call('PUT', `/api/v1/leases/${vip}`, tok.a, { owner: 'vip/web' })).statusCode).toBe(200);
    const taken = await call('PUT', `/api/v1/leases/${vip}`, tok.a, { owner: 'vip/db' });
    expect(taken.statusCode).toBe(409);
    expect(taken.json().detail).toMatch(/vip\/web/);
    // platform b cannot touch platform a's addresses
    expect((await call('PUT', `/api/v1/leases/${vip}`, tok.b, { owner: 'vip/web' })).statusCode).toBe(404);
    expect((await call('GET', '/api/v1/leases?owner=vip/web', tok.a)).json()).toEqual([
      expect.objectContaining({ ip: vip, owner: 'vip/web' }),
    ]);
    expect((await call('DELETE', `/api/v1/leases/${vip}?owner=vip/web`, tok.a)).statusCode).toBe(204);
    expect((await call('DELETE', `/api/v1/leases/${vip}?owner=vip/web`, tok.a)).statusCode).toBe(204);
    expect((await call('GET', '/api/v1/leases?owner=vip/web', tok.a)).json()).toEqual([]);
  });

  it('20 concurrent clients for the last 8 addresses of a range: each address once, the rest a clean 409', async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        call('POST', '/api/v1/leases', tok.a, { owner: `baremetal/c${i}`, range: Number(small.PGIPAM_RANGE_ID) }),
      ),
    );
    const ok = results.filter((r) => r.statusCode === 201).map((r) => r.json().ip);
    expect(ok).toHaveLength(8);
    expect(new Set(ok).size).toBe(8);
    const refused = results.filter((r) => r.statusCode !== 201);
    expect(refused).toHaveLength(12);
    for (const r of refused) expect(r.json()).toMatchObject({ status: 409, code: 'NO_FREE_ADDRESS' });
  });

  it('events: every history row of the platform after an id, oldest first', async () => {
    const all = (await call('GET', '/api/v1/events?after=0&limit=1000', tok.a)).json();
    const ids = all.map((e: { id: number }) => e.id);
    expect(ids).toEqual([...ids].sort((x: number, y: number) => x - y));
    expect(new Set(all.map((e: { platform: string }) => e.platform))).toEqual(new Set([a.name]));
    const page = (await call('GET', `/api/v1/events?after=${ids[2]}&limit=2`, tok.a)).json();
    expect(page.map((e: { id: number }) => e.id)).toEqual(ids.slice(3, 5));
  });
});

describe('the OpenAPI document', () => {
  it('validates, and names every route', async () => {
    const doc = (await call('GET', '/api/v1/openapi.json')).json();
    await SwaggerParser.validate(structuredClone(doc));
    expect(Object.keys(doc.paths).sort()).toEqual(
      [
        '/api/v1/events',
        '/api/v1/find/{address}',
        '/api/v1/history',
        '/api/v1/leases',
        '/api/v1/leases/{ip}',
        '/api/v1/pools',
        '/api/v1/pools/{name}',
        '/api/v1/ranges',
        '/api/v1/ranges/{id}',
        '/api/v1/ranges/{id}/leases',
        '/api/v1/spaces',
      ].sort(),
    );
  });
});

describe('the web view', () => {
  const page = (url: string, token?: string) =>
    app.inject({ method: 'GET', url, headers: token ? { cookie: `pgipam_token=${encodeURIComponent(token)}` } : {} });
  it('asks for a token, and shows a platform its pools, ranges, search and history', async () => {
    expect((await page('/ui')).statusCode).toBe(302);
    const login = await app.inject({
      method: 'POST',
      url: '/ui/login',
      payload: `token=${encodeURIComponent(tok.a!)}`,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(login.statusCode).toBe(303);
    expect(login.headers['set-cookie']).toMatch(/HttpOnly; SameSite=Strict/);
    const pools = await page('/ui', tok.a);
    expect(pools.body).toContain('/ui/pools/shared');
    expect(pools.body).not.toContain('secret');
    expect((await page('/ui/pools/secret', tok.a)).statusCode).toBe(404);
    expect((await page(`/ui/ranges/${rangeA.PGIPAM_RANGE_ID}`, tok.a)).body).toContain('baremetal/srv-1');
    const search = await page(`/ui/search?q=${rangeA.IP}`, tok.a);
    expect(search.body).toContain(`/ui/ranges/${rangeA.PGIPAM_RANGE_ID}`);
    expect((await page('/ui/search?q=baremetal%2Fsrv-1', tok.a)).body).toContain(rangeA.IP);
    expect((await page('/ui/history?event=address_leased', tok.a)).body).toContain('address_leased');
    expect((await page('/ui/history?event=%3Cscript%3E', tok.a)).body).not.toContain('<script>');
  });
});
