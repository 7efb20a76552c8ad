// pgipam reconcile on what a real oned printed (test/fixtures/oned/snapshot-*), against the
// database that replaying oned's own requests leaves (issue 11).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import { withDatabase } from '../global-setup';
import { type TestDb, checkConsistency, createTestDatabase, snapshot } from '../support/db';
import { injectDrift } from '../support/drift';
import { ONED_FIXTURES, replayOnedSession, snapshotFiles } from '../support/oned-requests';
import { runCliLine } from '../support/processes';
import { makeRng, seedFromEnv } from '../support/random';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pgipam-reconcile-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

let t: TestDb | undefined;
afterEach(async () => {
  await t?.drop();
  t = undefined;
});

async function replayed(label: string, last: string): Promise<{ t: TestDb; env: Record<string, string> }> {
  t = await createTestDatabase(label);
  const env = { PGIPAM_DATABASE_URL: t.url };
  await replayOnedSession(env, (sql) => t!.db.query(sql), last);
  return { t, env };
}

const cli = runCliLine;

describe('reconcile against what the real oned printed', () => {
  it('finds the replayed session in agreement with snapshot-1 (reservation vnet, hold, carved range) and snapshot-2', async () => {
    const { t, env } = await replayed('agree1', '11');
    const one = await cli(env, ['reconcile', ...snapshotFiles(path.join(tmp, 'a1'), 'snapshot-1')]);
    expect([one.code, one.stderr]).toEqual([0, '']);
    expect(one.stdout).toMatch(
      /^oned: 4 networks, 12 leases, read .*\npgipam: 4 ranges of platform "default" \(IPAM_MAD pgipam\)\nin agreement\n$/,
    );
    // the JSON says the same, kind by kind, and the run is recorded for metrics and doctor
    const json = await cli(env, ['reconcile', '--json', ...snapshotFiles(path.join(tmp, 'a1'), 'snapshot-1')]);
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout);
    expect(report).toMatchObject({ networks: 4, complete: true, findings: [], found: { leaked: 0, unknown: 0, 'orphan-range': 0 } });
    const runs = await t.db.query('select networks, oned_leases, found, fix from pgipam.reconcile_run order by id');
    expect(runs.rows).toHaveLength(2);
    expect(runs.rows[0]).toMatchObject({ networks: 4, oned_leases: 12, fix: false });
  });

  it('finds the end of the session in agreement with snapshot-2', async () => {
    const { env } = await replayed('agree2', '21');
    const r = await cli(env, ['reconcile', ...snapshotFiles(path.join(tmp, 'a2'), 'snapshot-2')]);
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(r.stdout).toMatch(/in agreement/);
  });

  it('reads several onevnet show -x documents from stdin, and says orphans are not judged without the list', async () => {
    const { env } = await replayed('stdin', '21');
    const shows = snapshotFiles(path.join(tmp, 'a3'), 'snapshot-2', (f) => f.includes('show')).map((f) => fs.readFileSync(f, 'utf8'));
    const r = await cli(env, ['reconcile', '-'], shows.join(''));
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(r.stdout).toMatch(/^oned: 2 networks, .*\(no onevnet list -x: orphan ranges not judged\)\n/);
  });
});

// A database per case, cloned from one replayed session (replaying through the executables takes
// seconds; cloning takes milliseconds).
async function cloneOf(template: string, label: string): Promise<{ c: pg.Client; env: Record<string, string>; drop: () => Promise<void> }> {
  const admin = new pg.Client({ connectionString: inject('pgAdminUrl') });
  await admin.connect();
  const name = `${template.slice(0, 40)}_${label}`;
  await admin.query(`create database ${name} template ${template}`);
  await admin.end();
  const c = new pg.Client({ connectionString: withDatabase(inject('pgAdminUrl'), name) });
  await c.connect();
  return {
    c,
    env: { PGIPAM_DATABASE_URL: withDatabase(inject('pgClientUrl') ?? inject('pgAdminUrl'), name) },
    drop: async () => {
      await c.end().catch(() => {});
      const a = new pg.Client({ connectionString: inject('pgAdminUrl') });
      await a.connect();
      await a.query(`drop database if exists ${name} with (force)`);
      await a.end();
    },
  };
}

interface JsonFinding {
  drift: { kind: string; rangeId: number; index?: number; first?: number };
  action: string;
  repaired: boolean;
}
const position = (f: JsonFinding) => f.drift.index ?? f.drift.first ?? -1;

describe('reconcile on drift injected into the real session (seeded)', () => {
  it('finds every injected drift and nothing else, --fix repairs exactly what the rules say, a second --fix is a no-op', async () => {
    const base = await replayed('drift_base', '11');
    await base.t.db.end();
    const seed = seedFromEnv('PGIPAM_DRIFT_SEED');
    console.log(`drift generator seed ${seed} (PGIPAM_DRIFT_SEED=${seed} replays it)`);
    const totals: Record<string, { injected: number; found: number; repaired: number; toRepair: number }> = {};
    for (let round = 0; round < 6; round++) {
      const rng = makeRng(seed + round);
      const clone = await cloneOf(base.t.name, `r${round}`);
      try {
        const dir = path.join(tmp, `drift-${round}`);
        const expected = await injectDrift(clone.c, rng, dir);
        const files = fs.readdirSync(dir).map((f) => path.join(dir, f));
        const found = await cli(clone.env, ['reconcile', '--json', ...files]);
        expect([found.code, found.stderr]).toEqual([expected.length ? 1 : 0, '']);
        const report = JSON.parse(found.stdout) as { findings: JsonFinding[] };
        const seen = report.findings.map((f) => [f.drift.kind, f.drift.rangeId, position(f)]);
        expect({ round, seen }).toEqual({ round, seen: expected.map((e) => [e.kind, e.rangeId, e.position]) });

        const before = await snapshot(clone.c);
        const fixed = await cli(clone.env, ['reconcile', '--json', '--fix', ...files]);
        expect([fixed.code, fixed.stderr]).toEqual([expected.length ? 1 : 0, '']);
        const fixReport = JSON.parse(fixed.stdout) as { findings: JsonFinding[] };
        expect({ round, repaired: fixReport.findings.map((f) => [f.drift.kind, f.drift.rangeId, position(f), f.repaired]) }).toEqual({
          round,
          repaired: expected.map((e) => [e.kind, e.rangeId, e.position, e.repaired]),
        });
        if (expected.some((e) => e.repaired)) expect(await snapshot(clone.c)).not.toBe(before);
        expect(await checkConsistency(clone.c)).toEqual([]);
        // one history row per repair, with the oned ids
        const { rows } = await clone.c.query<{ event: string; n: string }>(
          `select event, count(*)::text as n from pgipam.history where event like 'reconcile%' group by event`,
        );
        const events = Object.fromEntries(rows.map((r) => [r.event, Number(r.n)]));
        const repairedOf = (k: string) => expected.filter((e) => e.kind === k && e.repaired).length;
        const adoptedOfMissing = expected.some((e) => e.kind === 'missing-range' && e.rangeId === 53) ? 1 : 0; // VM 28's lease comes back with range 53
        expect(events).toEqual(
          Object.fromEntries(
            [
              ['reconcile_adopted', repairedOf('unknown') + adoptedOfMissing],
              ['reconcile_freed', repairedOf('leaked')],
              ['reconcile_range_removed', repairedOf('orphan-range')],
              ['reconcile_range_registered', repairedOf('missing-range')],
            ].filter(([, n]) => n),
          ),
        );

        // what is left is what --fix leaves: too young, or the operator's to resize; nothing changes
        const after = await snapshot(clone.c);
        const again = await cli(clone.env, ['reconcile', '--json', '--fix', ...files]);
        const left = expected.filter((e) => !e.repaired);
        expect([again.code, again.stderr]).toEqual([left.length ? 1 : 0, '']);
        const againReport = JSON.parse(again.stdout) as { findings: JsonFinding[] };
        expect(againReport.findings.map((f) => [f.drift.kind, f.drift.rangeId, position(f), f.repaired])).toEqual(
          left.map((e) => [e.kind, e.rangeId, e.position, false]),
        );
        expect(await snapshot(clone.c)).toBe(after);
        for (const e of expected) {
          const k = (totals[e.kind] ??= { injected: 0, found: 0, repaired: 0, toRepair: 0 });
          k.injected++;
          k.found++;
          if (e.repaired) k.toRepair++;
        }
        for (const f of fixReport.findings) if (f.repaired) totals[f.drift.kind]!.repaired++;
      } finally {
        await clone.drop();
      }
    }
    console.log(`drift injected / found / repaired (of those --fix repairs): ${JSON.stringify(totals)}`);
  });
});

describe('reconcile input it cannot compare: one line, exit 2, nothing written', () => {
  it('refuses truncated, malformed and foreign XML, an incomplete list, a foreign platform, and onevnet failures', async () => {
    const { t, env } = await replayed('bad_input', '11');
    const dir = path.join(tmp, 'bad');
    const files = snapshotFiles(dir, 'snapshot-1');
    const show34 = files.find((f) => f.endsWith('show-34.xml'))!;
    const write = (name: string, text: string) => {
      fs.writeFileSync(path.join(dir, name), text);
      return path.join(dir, name);
    };
    const xml34 = fs.readFileSync(show34, 'utf8');
    const truncated = write('truncated.xml', xml34.slice(0, Math.floor(xml34.length / 2)));
    const edited = write('edited.xml', xml34.replace(/<USED_LEASES>10<\/USED_LEASES>(\s*<LEASES>)/, '<USED_LEASES>11</USED_LEASES>$1'));
    // a fake onevnet, standing in for OpenNebula's CLI: serves the snapshot, or fails as told
    const fake = write(
      'onevnet',
      `#!/bin/sh\ncase "$1 $3" in\n  "list ") cat ${dir}/onevnet-list.xml ;;\n  "show 37") echo "[one.vn.info] Error getting virtual network [37]." >&2; exit 255 ;;\n  "show "*) cat ${dir}/onevnet-show-$3.xml ;;\nesac\n`,
    );
    fs.chmodSync(fake, 0o755);
    const denied = write(
      'onevnet-denied',
      `#!/bin/sh\necho "[VirtualNetworkPoolInfo] User couldn't be authenticated, aborting call." >&2\nexit 255\n`,
    );
    fs.chmodSync(denied, 0o755);
    await t.db.query(`insert into pgipam.platform (name) values ('edge')`);
    const before = await snapshot(t.db);
    const cases: Array<[string[], RegExp]> = [
      [[truncated, ...files.filter((f) => f !== show34)], /truncated\.xml: malformed XML at line \d+: .*\(truncated output\?\)$/],
      [[edited, ...files.filter((f) => f !== show34)], /AR 0 of network 34 \(prod-ipam\) says USED_LEASES 11 but lists 10 leases$/],
      [
        [path.join(ONED_FIXTURES, 'snapshot-1/onevm-list.xml')],
        /onevm-list\.xml: not the output of onevnet show -x \(no VNET element at the top\)$/,
      ],
      [files.filter((f) => f !== show34), /network 34 \(prod-ipam\) is in .*onevnet-list\.xml but was not shown: add onevnet show -x 34$/],
      [[files.find((f) => f.endsWith('list.xml'))!, show34, show34], /network 34 was already shown in/],
      [['--platform', 'edge', ...files], /AR 0 of network 34 names pgipam range 50 of platform "default", not of "edge"/],
      [['--onevnet', '--onevnet-command', path.join(dir, 'missing')], /missing not found: run on the OpenNebula front-end as oneadmin/],
      [
        ['--onevnet', '--onevnet-command', denied],
        /onevnet-denied list -x failed \(exit 255\): \[VirtualNetworkPoolInfo\] User couldn't be authenticated/,
      ],
      [
        ['--onevnet', '--onevnet-command', fake],
        /network 37 was listed but onevnet show -x 37 failed \(deleted since onevnet list\? run again\)/,
      ],
      [[], /give the XML of onevnet list -x and onevnet show -x <id>/],
    ];
    for (const [args, line] of cases) {
      for (const fix of [[], ['--fix']]) {
        const r = await cli(env, ['reconcile', ...fix, ...args]);
        expect({ args, code: r.code, stdout: r.stdout, lines: r.stderr.split('\n').length }).toEqual({
          args,
          code: 2,
          stdout: '',
          lines: 1,
        });
        expect(r.stderr).toMatch(line);
        expect(r.stderr).not.toMatch(/ERROR/);
      }
    }
    expect(await snapshot(t.db)).toBe(before);
    expect((await t.db.query('select count(*)::int as n from pgipam.reconcile_run')).rows[0].n).toBe(0);
    // the fake onevnet without the failure: reconcile runs onevnet itself and agrees
    fs.writeFileSync(
      fake,
      `#!/bin/sh\ncase "$1" in\n  list) cat ${dir}/onevnet-list.xml ;;\n  show) cat ${dir}/onevnet-show-$3.xml ;;\nesac\n`,
    );
    const ok = await cli(env, ['reconcile', '--onevnet', '--onevnet-command', fake]);
    expect([ok.code, ok.stderr]).toEqual([0, '']);
    expect(ok.stdout).toMatch(/oned: 4 networks, 12 leases[\s\S]*in agreement/);
  });

  it('tells an AR that names a range at other addresses (mismatched), and shows the table an operator reads', async () => {
    const { env } = await replayed('mismatch', '11');
    const dir = path.join(tmp, 'mismatch');
    const files = snapshotFiles(dir, 'snapshot-1');
    const show34 = files.find((f) => f.endsWith('show-34.xml'))!;
    // AR 1 copied from another network by hand, PGIPAM_RANGE_ID and all
    fs.writeFileSync(
      show34,
      fs.readFileSync(show34, 'utf8').replace('<IP6><![CDATA[2001:db8:70::100]]></IP6>', '<IP6><![CDATA[2001:db8:71::100]]></IP6>'),
    );
    const r = await cli(env, ['reconcile', '--fix', ...files]);
    expect([r.code, r.stderr]).toEqual([1, '']);
    expect(r.stdout.split('\n').slice(2)).toEqual([
      'KIND        NETWORK  AR  RANGE  WHERE                                DONE',
      'mismatched  34       1   51     2001:db8:70::100 - 2001:db8:70::11f  left: IP6 2001:db8:71::100 is not 2001:db8:70::100; the AR does not describe range 51',
      'drift: 1: mismatched 1 (repaired 0)',
      '',
    ]);
    // monitoring sees what the last run left
    const metrics = await cli(env, ['metrics']);
    expect(metrics.stdout).toMatch(/^pgipam_reconcile_drift\{platform="default",kind="mismatched"\} 1$/m);
    expect(metrics.stdout).toMatch(/^pgipam_reconcile_repaired\{platform="default",kind="mismatched"\} 0$/m);
    expect(metrics.stdout).toMatch(/^pgipam_reconcile_last_run_timestamp_seconds\{platform="default"\} \d+/m);
    const doctor = await cli(env, ['doctor', '--json', '--remotes', dir, '--oned-conf', path.join(dir, 'none')]);
    const checks = JSON.parse(doctor.stdout) as Array<{ check: string; status: string; detail: string }>;
    expect(checks.find((c) => c.check === 'reconcile')).toEqual({
      check: 'reconcile',
      status: 'warn',
      detail: expect.stringMatching(/^platform "default": last run .* left mismatched 1: see "pgipam reconcile"$/),
    });
  });
});
