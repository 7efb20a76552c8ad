// Webhook delivery (api/webhook-delivery.ts): a receiver that fails its first deliveries, and is
// stopped and started again mid-run while events keep coming (and the delivering server itself
// is restarted), still gets every event of its platform, in order of id: duplicates allowed, none
// missing, none of another platform, each signed.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addWebhook } from '../../src/admin/webhooks';
import { getAddress, registerAddressRange } from '../../src/allocator/index';
import { WebhookDelivery, signature } from '../../src/api/webhook-delivery';
import { loadConfig } from '../../src/config';
import { DbPool } from '../../src/db/pool';
import { type TestDb, createTestDatabase, testContext } from '../support/db';
import { type TestPlatform, addTestPlatform, dropPlatformRoles } from '../support/platforms';

let t: TestDb;
const roles: string[] = [];
const ctx = testContext('hook');
let a: TestPlatform;
let b: TestPlatform;
beforeAll(async () => {
  t = await createTestDatabase('webhooks');
  a = await addTestPlatform(t, 'hooka', roles, ctx);
  b = await addTestPlatform(t, 'hookb', roles, ctx);
});
afterAll(async () => {
  await t?.drop();
  await dropPlatformRoles(roles);
});

// A receiver on a fixed port that can be stopped and started again; it refuses its first
// `failFirst` requests with 500.
function receiver(secret: string, failFirst: number) {
  const got: number[] = [];
  const badSignatures: number[] = [];
  let seen = 0;
  let server: http.Server | undefined;
  let port = 0;
  const handler: http.RequestListener = (req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      seen++;
      if (seen <= failFirst) {
        res.writeHead(500).end();
        return;
      }
      const id = Number(req.headers['x-pgipam-event-id']);
      if (req.headers['x-pgipam-signature'] !== signature(secret, body) || JSON.parse(body).id !== id) badSignatures.push(id);
      got.push(id);
      res.writeHead(204).end();
    });
  };
  return {
    got,
    badSignatures,
    url: () => `http://127.0.0.1:${port}/hook`,
    start: () =>
      new Promise<void>((resolve) => {
        server = http.createServer(handler);
        server.listen(port, '127.0.0.1', () => {
          port = (server!.address() as AddressInfo).port;
          resolve();
        });
      }),
    stop: () =>
      new Promise<void>((resolve) => {
        server!.closeAllConnections();
        server!.close(() => resolve());
      }),
  };
}

describe('webhooks', () => {
  it('every event once at least, in order of id, through failures and restarts of both sides', async () => {
    const secret = 'test-secret';
    const r = receiver(secret, 3);
    await r.start();
    const config = loadConfig({ PGIPAM_DATABASE_URL: t.url, PGIPAM_CONFIG: '/dev/null' });
    const pool = new DbPool(config, 'pgipam/test', 4);
    const { info } = await addWebhook(t.db, a.name, r.url(), secret);
    const ranges: Record<string, string>[] = [];
    for (const p of [a, b])
      ranges.push(
        (
          await registerAddressRange(
            t.db,
            { ar: { TYPE: 'IP4', IP: p === a ? '10.90.0.0' : '10.91.0.0', SIZE: '200', IPAM_MAD: 'pgipam' }, address: {} },
            { ...ctx, platform: p.name },
          )
        ).reply,
      );
    const lease = async (n: number) => {
      for (let i = 0; i < n; i++)
        for (const [j, p] of [a, b].entries())
          await getAddress(t.db, { ar: ranges[j]!, address: { SIZE: '1' } }, { ...ctx, platform: p.name });
    };
    let delivery = new WebhookDelivery(pool, config, { retryBaseMs: 50, pollMs: 100, timeoutMs: 2000 });
    await delivery.start();
    await lease(10);
    await new Promise((res) => setTimeout(res, 300));
    await r.stop(); // the receiver goes away while events keep coming
    await lease(10);
    await new Promise((res) => setTimeout(res, 400));
    // deliveries failed meanwhile and are waiting to be tried again
    const { rows: down } = await t.db.query('select attempts, last_error from pgipam.webhook where id = $1', [info.id]);
    expect(down[0].attempts).toBeGreaterThan(0);
    expect(down[0].last_error).toMatch(/ECONNREFUSED|fetch failed/);
    await delivery.stop(); // and so does the delivering server
    await r.start();
    await lease(5);
    delivery = new WebhookDelivery(pool, config, { retryBaseMs: 50, pollMs: 100, timeoutMs: 2000 });
    await delivery.start();
    await lease(5);
    const { rows } = await t.db.query<{ id: string }>(
      'select h.id::text from pgipam.history h where h.platform = $1 and h.id > $2 order by h.id',
      [a.name, info.deliveredId],
    );
    const expected = rows.map((x) => Number(x.id));
    expect(expected.length).toBeGreaterThanOrEqual(30);
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && !expected.every((id) => r.got.includes(id))) await new Promise((res) => setTimeout(res, 100));
    await delivery.stop();
    await r.stop();
    await pool.close();
    // none missing, none of platform b, in order of id when duplicates are dropped
    const firsts = r.got.filter((id, i) => r.got.indexOf(id) === i);
    expect(firsts).toEqual(expected);
    expect(r.badSignatures).toEqual([]);
    const { rows: w } = await t.db.query('select delivered_id::text, attempts, last_error from pgipam.webhook where id = $1', [info.id]);
    expect(w[0]).toMatchObject({ delivered_id: String(expected.at(-1)), attempts: 0, last_error: null });
  }, 40_000);

  it("a platform without a role of its own gets its events however many of others' come first", async () => {
    const secret = 'roleless';
    const r = receiver(secret, 0);
    await r.start();
    const config = loadConfig({ PGIPAM_DATABASE_URL: t.url, PGIPAM_CONFIG: '/dev/null' });
    const pool = new DbPool(config, 'pgipam/test', 4);
    const { info } = await addWebhook(t.db, 'default', r.url(), secret);
    const others = (
      await registerAddressRange(
        t.db,
        { ar: { TYPE: 'IP4', IP: '10.92.0.0', SIZE: '100', IPAM_MAD: 'pgipam' }, address: {} },
        { ...ctx, platform: a.name },
      )
    ).reply;
    for (let i = 0; i < 30; i++) await getAddress(t.db, { ar: others, address: { SIZE: '1' } }, { ...ctx, platform: a.name });
    const mine = (
      await registerAddressRange(t.db, { ar: { TYPE: 'IP4', IP: '10.93.0.0', SIZE: '8', IPAM_MAD: 'pgipam' }, address: {} }, ctx)
    ).reply;
    await getAddress(t.db, { ar: mine, address: { SIZE: '1' } }, ctx);
    const { rows } = await t.db.query<{ id: string }>(
      "select h.id::text from pgipam.history h where h.platform = 'default' and h.id > $1 order by h.id",
      [info.deliveredId],
    );
    const expected = rows.map((x) => Number(x.id));
    expect(expected).toHaveLength(2);
    // a batch far smaller than the other platform's events in between
    const delivery = new WebhookDelivery(pool, config, { retryBaseMs: 50, pollMs: 100, batch: 5 });
    await delivery.start();
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && !expected.every((id) => r.got.includes(id))) await new Promise((res) => setTimeout(res, 100));
    await delivery.stop();
    await r.stop();
    await pool.close();
    expect(r.got.filter((id, i) => r.got.indexOf(id) === i)).toEqual(expected);
  }, 30_000);
});
