// The actions keep V8's code cache beside themselves (build/action-loader.js): written by the first
// run, used by the next, and never a reason for an action to fail -- a corrupt cache, one of
// another Node, or one that cannot be written only cost the time they would have saved.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { parseTemplate } from '../../src/driver/template';
import { type TestDb, createTestDatabase } from '../support/db';
import { EMPTY_ADDRESS, actionData, arXmlFormA, arXmlFormB, addressXml, storedAr, toBase64 } from '../support/oned-sim';
import { REMOTES, runProcess } from '../support/processes';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgipam-cache-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
let t: TestDb | undefined;
afterEach(async () => {
  await t?.drop();
  t = undefined;
});

const caches = () => fs.readdirSync(dir).filter((f) => f.startsWith('.get_address.v8-'));

describe("the actions' code cache", () => {
  it('is written by the first run and used by the next; a corrupt or unwritable one changes nothing but the time', async () => {
    t = await createTestDatabase('code_cache');
    const env = { PGIPAM_DATABASE_URL: t.url };
    for (const f of ['register_address_range', 'get_address']) fs.copyFileSync(path.join(REMOTES, f), path.join(dir, f));
    const reg = await runProcess(
      path.join(dir, 'register_address_range'),
      ['1'],
      toBase64(actionData(arXmlFormA({ IPAM_MAD: 'pgipam', TYPE: 'IP4', IP: '10.33.0.0', SIZE: '64' }), EMPTY_ADDRESS)),
      env,
      {},
    );
    expect(reg.exitCode).toBe(0);
    const ar = storedAr(parseTemplate(reg.stdout).values, 0);
    const get = () =>
      runProcess(path.join(dir, 'get_address'), ['2'], toBase64(actionData(arXmlFormB(ar), addressXml({ size: 1 }))), env, {});
    expect(caches()).toEqual([]);
    // neither --help nor a refused request writes one: V8 would cache only what they ran
    expect((await runProcess(path.join(dir, 'get_address'), ['--help'], '', env, {})).exitCode).toBe(0);
    expect((await runProcess(path.join(dir, 'get_address'), ['3'], 'not base64', env, {})).exitCode).toBe(255);
    expect(caches()).toEqual([]);
    const first = await get();
    expect([first.exitCode, first.stderr]).toEqual([0, expect.stringMatching(/^INFO: /)]);
    expect(caches()).toEqual([expect.stringMatching(new RegExp(`^\\.get_address\\.v8-${process.version}-${process.arch}-[0-9a-f]{12}$`))]);
    const cache = path.join(dir, caches()[0]!);
    const written = fs.readFileSync(cache);
    expect(written.length).toBeGreaterThan(10_000);
    // used as it is by the next run
    expect((await get()).exitCode).toBe(0);
    expect(fs.readFileSync(cache).equals(written)).toBe(true);
    // a corrupt cache is refused by V8, the action runs, and the cache is written again
    fs.writeFileSync(cache, 'not a code cache');
    const corrupt = await get();
    expect([corrupt.exitCode, /IP = "10\.33\.0\.\d+"/.test(corrupt.stdout)]).toEqual([0, true]);
    expect(fs.readFileSync(cache).length).toBeGreaterThan(10_000);
    // a cache that cannot be written (a directory in its place) costs nothing else
    fs.rmSync(cache);
    fs.mkdirSync(cache);
    const unwritable = await get();
    expect([unwritable.exitCode, unwritable.stderr]).toEqual([0, expect.stringMatching(/^INFO: /)]);
    // and leaves no temporary file behind
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('.get_address.v8-') && f !== path.basename(cache))).toEqual([]);
  });
});
