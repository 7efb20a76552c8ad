// The web view in a real browser: headless Chromium (Debian's chromium, driven by playwright-core)
// against the real `pgipam serve` process (the bundled CLI). Sign in, open the pool page, search
// an IP, follow it to its range and to its history; and the pool page on a phone's width.
// Installs chromium with apt-get when run as root; otherwise skipped with the command to run.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addToken } from '../../src/admin/api-tokens';
import { addPool } from '../../src/admin/pool-admin';
import { leaseTake } from '../../src/admin/owned-leases';
import { getAddress, registerAddressRange } from '../../src/allocator/index';
import { type TestDb, createTestDatabase, testContext } from '../support/db';
import { freePort } from '../support/embedded';
import { addTestPlatform, dropPlatformRoles } from '../support/platforms';
import { ROOT, startServeProcess } from '../support/processes';

const CHROMIUM = '/usr/bin/chromium';
function haveChromium(): boolean {
  if (fs.existsSync(CHROMIUM)) return true;
  if ((process.getuid?.() ?? 1) !== 0) return false;
  execFileSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', 'chromium'], {
    stdio: 'ignore',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  return fs.existsSync(CHROMIUM);
}
const available = haveChromium();
if (!available) console.log('browser tests skipped: apt-get install chromium');

// the closing note's screenshot of the pool page lands here
export const SCREENSHOTS = path.join(ROOT, 'test/.screenshots');

describe.runIf(available)('the web view in Chromium', () => {
  let t: TestDb;
  let browser: Browser;
  let serve: Awaited<ReturnType<typeof startServeProcess>>;
  const roles: string[] = [];
  const ctx = testContext('web');
  let token = '';
  let vm = '';
  let rangeId = '';

  beforeAll(async () => {
    t = await createTestDatabase('browser');
    const p = await addTestPlatform(t, 'webui', roles, ctx);
    await addPool(t.db, 'lab', { prefixes: ['10.60.0.0/22'], description: 'lab network' }, ctx);
    const pctx = { ...ctx, platform: p.name };
    const { reply } = await registerAddressRange(
      t.db,
      { ar: { TYPE: 'IP4', SIZE: '200', IPAM_MAD: 'pgipam', PGIPAM_POOL: 'lab' }, address: {} },
      pctx,
    );
    await registerAddressRange(t.db, { ar: { TYPE: 'IP4', SIZE: '60', IPAM_MAD: 'pgipam', PGIPAM_POOL: 'lab' }, address: {} }, pctx);
    rangeId = reply.PGIPAM_RANGE_ID!;
    for (let i = 0; i < 40; i++) vm = (await getAddress(t.db, { ar: reply, address: { SIZE: '1' } }, pctx)).ip;
    await leaseTake(t.db, { owner: 'baremetal/srv-42', ip: `10.60.0.${Number(reply.IP!.split('.')[3]) + 120}` }, pctx);
    token = (await addToken(t.db, 'browser', p.name)).token;
    serve = await startServeProcess({ PGIPAM_DATABASE_URL: t.url }, await freePort(), ['--no-webhooks']);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    expect(await serve?.stop()).toBe(0);
    await t?.drop();
    await dropPlatformRoles(roles);
  });

  it('sign in, the pool page, search an IP, follow it to its range and its history', async () => {
    const page = await browser.newPage();
    await page.goto(`${serve.url}/ui`);
    expect(page.url()).toMatch(/\/ui\/login$/);
    await page.fill('input[name=token]', token);
    await page.click('button');
    await page.waitForURL(`${serve.url}/ui`);
    await page.click('a[href="/ui/pools/lab"]');
    await expect.poll(() => page.textContent('h1')).toBe('Pool lab');
    expect(await page.locator('.map i.u, .map i.p').count()).toBeGreaterThan(0);
    fs.mkdirSync(SCREENSHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SCREENSHOTS, 'pool-page.png'), fullPage: true });
    await page.fill('input[name=q]', vm);
    await page.press('input[name=q]', 'Enter');
    await expect.poll(() => page.textContent('h1')).toBe(vm);
    expect(await page.textContent('main')).toContain('lease');
    await page.click(`a[href="/ui/ranges/${rangeId}"]`);
    await expect.poll(() => page.textContent('h1')).toMatch(new RegExp(`^Range ${rangeId}:`));
    expect(await page.textContent('main')).toContain('baremetal/srv-42');
    await page.click(`a[href="/ui/history?range=${rangeId}"]`);
    await expect.poll(() => page.locator('tbody tr').count()).toBeGreaterThanOrEqual(40);
    expect(await page.textContent('tbody')).toContain('address_leased');
    await page.close();
  });

  it("fits a phone's width: nothing wider than the screen but the tables, which scroll", async () => {
    const page = await browser.newPage({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2 });
    await page.context().addCookies([{ name: 'pgipam_token', value: encodeURIComponent(token), url: serve.url }]);
    await page.goto(`${serve.url}/ui/pools/lab`);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    expect(width).toBeLessThanOrEqual(390);
    await page.screenshot({ path: path.join(SCREENSHOTS, 'pool-page-phone.png'), fullPage: true });
    await page.close();
  });
});
