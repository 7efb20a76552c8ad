// npm run stress: many action processes at once (64 in flight by default) over several ranges for
// a bounded time, mixing get, allocate, free, register and unregister at random, killing some
// processes with SIGKILL at random moments and optionally restarting PostgreSQL mid-run. A model
// of what the driver replied is then compared with the database. Prints what it ran and found and
// exits non-zero on any violation.
import pg from 'pg';
import { type ActionRun, runActionProcess } from '../support/processes';
import { formatIPv4, parseIPv4 } from '../../src/address';
import { migrate } from '../../src/db/migrate';
import { checkDatabase } from '../../src/admin/check';
import { silentContext } from '../../src/allocator/context';
import { reasonLines } from '../../src/errors';
import { parseTemplate } from '../../src/driver/template';
import { startEmbeddedPostgres } from '../support/embedded';
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
import { makeRng, seedFromEnv, type Rng } from '../support/random';
import { addPool } from '../../src/admin/pool-admin';

export interface StressOptions {
  databaseUrl: string;
  durationMs: number;
  concurrency: number;
  killProbability: number;
  seed: number;
  initialRanges?: number;
  // Stops PostgreSQL at `atMs` for `downMs`, then starts it again.
  restart?: { atMs: number; downMs: number; stop: () => Promise<void>; start: () => Promise<void> };
  log?: (line: string) => void;
  // Runs after the load and before the check (tests use it to prove the checker catches damage).
  beforeCheck?: (db: pg.Client) => Promise<void>;
}

type OpType = 'get' | 'allocate' | 'free' | 'register' | 'unregister';

export interface StressReport {
  seed: number;
  durationMs: number;
  ops: Record<OpType, { ok: number; refused: number; killed: number; outage: number }>;
  killed: number;
  // failures whose commit may or may not have happened (connection lost during COMMIT, server never came back in time)
  ambiguous: number;
  restarts: number;
  outageFailures: number;
  slowestOutageFailureMs: number;
  slowestOutageFailure: string;
  // wall time of the failing process, start-up included (with 64 processes on a small machine most of it is waiting for a CPU)
  medianOutageFailureMs: number;
  unreportedLeases: number;
  extraRanges: number;
  liveRanges: number;
  leasesChecked: number;
  violations: string[];
}

interface ModelRange {
  id: number;
  ar: Attrs;
  size: number;
  state: 'live' | 'unregistering' | 'gone' | 'uncertain';
  held: Set<number>;
  releasing: Set<number>;
  freed: Set<number>;
  uncertain: Set<number>;
  killedGives: number;
  reserved: Set<number>;
  // bumped whenever the driver gives an index: a free that completes after a newer give must not undo it
  generation: Map<number, number>;
}

// What a refusal may say; anything else is a violation.
const EXPECTED_REFUSALS = [
  /^no free address in range /,
  /^no block of \d+ contiguous free addresses in range /,
  /^\S+ (\+ \d+ )?is not free: /,
  /^pgipam has no range /,
  /^pool "stress" has no free IPv4 /,
];
const OUTAGE = [
  /^cannot reach PostgreSQL /,
  /^lost (the|or could not open the) connection to PostgreSQL/,
  /outcome is unknown/,
  /^PostgreSQL .* is shutting down or starting up/,
  /^connection to PostgreSQL .* failed/,
  /gave up after \d+ ms/,
  /^PostgreSQL .* has too many connections/,
  /^the database .* does not exist/,
  /^timed out waiting for a lock/,
  /took longer than statement_timeout_ms/,
];

function reasonOf(r: ActionRun): string {
  return reasonLines(r.stderr).join('\n');
}

export async function runStress(o: StressOptions): Promise<StressReport> {
  const rng: Rng = makeRng(o.seed);
  const log = o.log ?? (() => {});
  const env = {
    ...process.env,
    PGIPAM_DEBUG: process.env.PGIPAM_STRESS_TRACE ?? '',
    PGIPAM_DATABASE_URL: o.databaseUrl,
    PGIPAM_CONFIG: '/dev/null',
    PGIPAM_CONNECT_TIMEOUT_MS: '3000',
    PGIPAM_ACTION_TIMEOUT_MS: '12000',
  };
  const report: StressReport = {
    seed: o.seed,
    durationMs: o.durationMs,
    ops: { get: z(), allocate: z(), free: z(), register: z(), unregister: z() },
    killed: 0,
    ambiguous: 0,
    restarts: 0,
    outageFailures: 0,
    slowestOutageFailureMs: 0,
    slowestOutageFailure: '',
    medianOutageFailureMs: 0,
    unreportedLeases: 0,
    extraRanges: 0,
    liveRanges: 0,
    leasesChecked: 0,
    violations: [],
  };
  const violation = (s: string) => {
    if (report.violations.length < 50) report.violations.push(s);
    log(`VIOLATION ${s}`);
  };
  const ranges = new Map<number, ModelRange>();
  const outageTimes: number[] = [];
  let nextSubnet = 0;
  let killedRegisters = 0;
  let killedUnregisters = 0;
  let requestId = 1000;

  const admin = new pg.Client({ connectionString: o.databaseUrl });
  admin.on('error', () => {});
  await admin.connect();
  await addPool(admin, 'stress', { prefixes: ['10.128.0.0/16'], gateway: 'first' }, silentContext).catch((e) => {
    if (!/already exists/.test((e as Error).message)) throw e;
  });
  await admin.end();

  const byRequest = new Map<string, string>();
  let killing = false; // no kills while the initial ranges are registered
  async function exec(action: string, xml: string): Promise<{ r: ActionRun; killed: boolean }> {
    let killTimer: NodeJS.Timeout | undefined;
    const willKill = killing && rng.chance(o.killProbability);
    const delay = rng.int(5, 300);
    const rid = String(requestId++);
    const r = await runActionProcess(action, toBase64(xml), env, [rid], {
      timeoutMs: 60_000,
      onSpawn: (kill) => {
        if (willKill) killTimer = setTimeout(kill, delay);
      },
    });
    if (killTimer) clearTimeout(killTimer);
    const killed = r.signal === 'SIGKILL';
    if (killed) report.killed++;
    byRequest.set(rid, `${action} ${killed ? 'killed' : `exit ${r.exitCode}`} ${r.ms}ms ${reasonOf(r).slice(0, 100)}`);
    return { r, killed };
  }

  // Classifies a finished process: ok, expected refusal, outage, or a violation.
  function outcome(type: OpType, r: ActionRun, killed: boolean): 'ok' | 'refused' | 'killed' | 'outage' | 'ambiguous' {
    if (killed) {
      report.ops[type].killed++;
      return 'killed';
    }
    if (r.exitCode === 0) {
      report.ops[type].ok++;
      return 'ok';
    }
    const reason = reasonOf(r);
    if (r.stdout !== '') violation(`${type} failed but wrote stdout: ${JSON.stringify(r.stdout.slice(0, 80))}`);
    if (reason.split('\n').length !== 1 || reason === '')
      violation(`${type} failed without exactly one reason line: ${JSON.stringify(r.stderr.slice(0, 200))}`);
    if (/^\s+at |TypeError|ReferenceError/m.test(r.stderr))
      violation(`${type} printed a stack trace: ${JSON.stringify(r.stderr.slice(0, 200))}`);
    if (OUTAGE.some((re) => re.test(reason))) {
      report.ops[type].outage++;
      report.outageFailures++;
      outageTimes.push(r.ms);
      if (r.ms > report.slowestOutageFailureMs) {
        report.slowestOutageFailureMs = r.ms;
        report.slowestOutageFailure = `${type}: ${reason}`;
        if (process.env.PGIPAM_STRESS_TRACE) log(`slowest outage failure so far (${r.ms} ms): ${r.stderr}`);
      }
      // The driver says when it cannot know whether its commit happened; like a kill, either state is right.
      if (/outcome is unknown/.test(reason)) {
        report.ambiguous++;
        return 'ambiguous';
      }
      return 'outage';
    }
    if (!EXPECTED_REFUSALS.some((re) => re.test(reason))) violation(`${type} refused with an unexpected reason: ${reason}`);
    report.ops[type].refused++;
    return 'refused';
  }

  function give(range: ModelRange, first: number, size: number, what: string): void {
    for (let i = first; i < first + size; i++) {
      if (range.reserved.has(i)) violation(`${what} handed out reserved address ${i} of range ${range.id}`);
      if (range.held.has(i) && !range.releasing.has(i) && !range.uncertain.has(i))
        violation(`${what} handed out index ${i} of range ${range.id}, which the driver had already given and not freed`);
      range.held.add(i);
      range.freed.delete(i);
      range.uncertain.delete(i);
      range.generation.set(i, (range.generation.get(i) ?? 0) + 1);
    }
  }

  function liveRanges(): ModelRange[] {
    return [...ranges.values()].filter((r) => r.state === 'live');
  }

  let registering = 0;
  async function register(): Promise<void> {
    registering++;
    try {
      await registerOnce();
    } finally {
      registering--;
    }
  }

  async function registerOnce(): Promise<void> {
    const n = nextSubnet++;
    const viaPool = rng.chance(0.3);
    const request: Attrs = viaPool
      ? { TYPE: 'IP4', SIZE: String(rng.int(4, 40)), IPAM_MAD: 'pgipam', PGIPAM_POOL: 'stress' }
      : {
          TYPE: 'IP4',
          IP: formatIPv4(parseIPv4('10.0.0.0') + n * 64),
          SIZE: String(rng.int(8, 48)),
          IPAM_MAD: 'pgipam',
          NETWORK_ADDRESS: `${formatIPv4(parseIPv4('10.0.0.0') + n * 64)}/26`,
        };
    const { r, killed } = await exec('register_address_range', actionData(arXmlFormA(request), EMPTY_ADDRESS));
    const res = outcome('register', r, killed);
    if (res === 'killed' || res === 'ambiguous') killedRegisters++;
    if (res !== 'ok') return;
    const ar = storedAr(parseTemplate(r.stdout).values, Number(n));
    const id = Number(ar.PGIPAM_RANGE_ID);
    const reserved = new Set<number>();
    // the AR started on the network address of its /26: pgipam trims it off (issue 12), and every
    // index of the reply's AR is leasable
    if (!viaPool && ar.IP !== formatIPv4(parseIPv4(request.IP!) + 1))
      violation(`register replied IP ${ar.IP} for an AR starting on the network address ${request.IP}`);
    ranges.set(id, {
      id,
      ar,
      size: Number(ar.SIZE),
      state: 'live',
      held: new Set(reserved),
      releasing: new Set(),
      freed: new Set(),
      uncertain: new Set(),
      killedGives: 0,
      reserved,
      generation: new Map(),
    });
  }

  async function unregister(range: ModelRange): Promise<void> {
    range.state = 'unregistering';
    const form = rng.chance(0.5) ? arXmlFormA({ ...range.ar, ALLOCATED: '' }) : arXmlFormB(range.ar, range.held.size);
    const { r, killed } = await exec('unregister_address_range', actionData(form, EMPTY_ADDRESS));
    const res = outcome('unregister', r, killed);
    if (res === 'ok') range.state = 'gone';
    else if (res === 'killed' || res === 'ambiguous') {
      range.state = 'uncertain';
      killedUnregisters++;
    } else range.state = 'live';
  }

  async function get(range: ModelRange): Promise<void> {
    const size = rng.chance(0.8) ? 1 : rng.int(2, 4);
    const { r, killed } = await exec('get_address', actionData(arXmlFormB(range.ar, range.held.size), addressXml({ size })));
    const res = outcome('get', r, killed);
    if (range.state === 'gone') return;
    if (res === 'killed' || res === 'ambiguous') range.killedGives += size;
    if (res !== 'ok') return;
    const ip = parseTemplate(r.stdout).values.IP!;
    const index = parseIPv4(ip) - parseIPv4(range.ar.IP!);
    if (index < 0 || index + size > range.size) violation(`get_address returned ${ip} + ${size} outside range ${range.id}`);
    give(range, index, size, 'get_address');
  }

  async function allocate(range: ModelRange): Promise<void> {
    const index = rng.int(0, range.size - 1);
    const { r, killed } = await exec(
      'allocate_address',
      actionData(arXmlFormB(range.ar, range.held.size), addressXml(addressForIndex(range.ar, index, 1))),
    );
    const res = outcome('allocate', r, killed);
    if (range.state === 'gone') return;
    if (res === 'killed' || res === 'ambiguous') range.killedGives += 1;
    if (res === 'ok') give(range, index, 1, 'allocate_address');
  }

  async function free(range: ModelRange): Promise<void> {
    const candidates = [...range.held].filter((i) => !range.releasing.has(i) && !range.reserved.has(i));
    if (!candidates.length) return get(range);
    const index = rng.pick(candidates);
    const generation = range.generation.get(index);
    range.releasing.add(index);
    const { r, killed } = await exec(
      'free_address',
      actionData(arXmlFormB(range.ar, range.held.size), addressXml(addressForIndex(range.ar, index, 1))),
    );
    const res = outcome('free', r, killed);
    range.releasing.delete(index);
    if (range.state === 'gone') return;
    // a get that re-gave the address while this free was finishing owns it now
    if (range.generation.get(index) !== generation) return;
    if (res === 'ok') {
      range.held.delete(index);
      range.freed.add(index);
    } else if (res === 'killed' || res === 'ambiguous') {
      range.held.delete(index);
      range.uncertain.add(index);
    } else if (res === 'refused') {
      violation(`free_address of ${index} in range ${range.id} was refused: ${reasonOf(r)}`);
    }
  }

  async function oneOp(): Promise<void> {
    const live = liveRanges();
    if (live.length + registering < 3 || rng.chance(0.04)) return register();
    if (!live.length) return new Promise((r) => setTimeout(r, 20)); // the first ranges are still being registered
    const range = rng.pick(live);
    if (rng.chance(0.03) && live.length > 3) return unregister(range);
    const x = rng.next();
    if (x < 0.45) return get(range);
    if (x < 0.65) return allocate(range);
    // free from a range that has something to free
    const withLeases = live.filter((r) => [...r.held].some((i) => !r.releasing.has(i) && !r.reserved.has(i)));
    return free(withLeases.length ? rng.pick(withLeases) : range);
  }

  const started = Date.now();
  for (let i = 0; i < (o.initialRanges ?? 4); i++) await register();
  killing = true;
  const inflight = new Set<Promise<void>>();
  let restartDone: Promise<void> | undefined;
  while (Date.now() - started < o.durationMs) {
    if (o.restart && !restartDone && Date.now() - started >= o.restart.atMs) {
      const rs = o.restart;
      log(`stopping PostgreSQL for ${rs.downMs} ms`);
      restartDone = (async () => {
        await rs.stop();
        await new Promise((r) => setTimeout(r, rs.downMs));
        await rs.start();
        report.restarts++;
        log('PostgreSQL is back');
      })();
    }
    while (inflight.size < o.concurrency) {
      const p: Promise<void> = oneOp().finally(() => inflight.delete(p));
      inflight.add(p);
    }
    await Promise.race(inflight);
  }
  await Promise.all(inflight);
  if (restartDone) await restartDone;

  if (o.beforeCheck) {
    const db = new pg.Client({ connectionString: o.databaseUrl });
    await db.connect();
    await o.beforeCheck(db).finally(() => db.end());
  }
  await check(o.databaseUrl, ranges, report, violation, killedRegisters + killedUnregisters, byRequest);
  report.durationMs = Date.now() - started;
  outageTimes.sort((a, b) => a - b);
  report.medianOutageFailureMs = outageTimes.length ? outageTimes[Math.floor(outageTimes.length / 2)]! : 0;
  return report;
}

function z() {
  return { ok: 0, refused: 0, killed: 0, outage: 0 };
}

// Compares the database with the model of the driver's replies.
async function check(
  url: string,
  ranges: Map<number, ModelRange>,
  report: StressReport,
  violation: (s: string) => void,
  killedRangeOps: number,
  byRequest: Map<string, string>,
): Promise<void> {
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    // 1. the database agrees with itself
    for (const p of (await checkDatabase(db)).problems) violation(p);

    // 2. the database agrees with what the driver replied
    const { rows: dbRanges } = await db.query<{ id: string }>('select id::text from pgipam.address_range');
    const inDb = new Set(dbRanges.map((r) => Number(r.id)));
    let extra = 0;
    for (const id of inDb) if (!ranges.has(id)) extra++;
    report.extraRanges = extra;
    if (extra > killedRangeOps)
      violation(
        `${extra} ranges exist that no reply reported, more than the ${killedRangeOps} killed register/unregister processes explain`,
      );
    for (const m of ranges.values()) {
      if (m.state === 'gone') {
        if (inDb.has(m.id)) violation(`range ${m.id} was unregistered (exit 0) but still exists`);
        continue;
      }
      if (m.state === 'uncertain') continue;
      if (!inDb.has(m.id)) {
        violation(`range ${m.id} was registered (exit 0) and never unregistered, but is gone`);
        continue;
      }
      report.liveRanges++;
      const { rows: leases } = await db.query<{ first_idx: string; last_idx: string; kind: string; request_id: string }>(
        `select first_idx::text, last_idx::text, kind, request_id from pgipam.lease where range_id = $1`,
        [m.id],
      );
      const leased = new Set<number>();
      const requestOf = new Map<number, string>();
      for (const l of leases) {
        for (let i = Number(l.first_idx); i <= Number(l.last_idx); i++) {
          if (l.kind === 'lease' || l.kind === 'allocation' || l.kind === 'reservation') leased.add(i);
          requestOf.set(i, l.request_id);
        }
      }
      for (const i of m.held) {
        if (m.uncertain.has(i)) continue;
        report.leasesChecked++;
        if (!leased.has(i)) violation(`range ${m.id}: index ${i} was given by the driver and never freed, but is not leased`);
      }
      let unreported = 0;
      for (const i of leased) if (!m.held.has(i)) unreported++;
      const explained = m.killedGives + m.uncertain.size;
      report.unreportedLeases += unreported;
      if (unreported > explained) {
        const who = [...leased]
          .filter((i) => !m.held.has(i))
          .slice(0, 5)
          .map((i) => `${i}: request ${requestOf.get(i)} ${byRequest.get(requestOf.get(i) ?? '') ?? '?'}`);
        violation(
          `range ${m.id}: ${unreported} leased addresses no reply reported, more than the ${explained} that killed processes explain (${who.join('; ')})`,
        );
      }
    }
  } finally {
    await db.end();
  }
}

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? Number(process.argv[i + 1]) : fallback;
}

export function formatReport(r: StressReport): string {
  const lines = [
    `seed ${r.seed} (replay with PGIPAM_STRESS_SEED=${r.seed}), ran ${(r.durationMs / 1000).toFixed(1)} s`,
    'operation                 ok  refused   killed   outage',
    ...Object.entries(r.ops).map(
      ([k, v]) =>
        `${k.padEnd(20)} ${String(v.ok).padStart(7)} ${String(v.refused).padStart(8)} ${String(v.killed).padStart(8)} ${String(v.outage).padStart(8)}`,
    ),
    `processes killed with SIGKILL: ${r.killed}; failures with an unknown commit outcome (said so by the driver): ${r.ambiguous}`,
    `PostgreSQL restarts: ${r.restarts}; actions failed during the outage: ${r.outageFailures} (median ${r.medianOutageFailureMs} ms, slowest ${r.slowestOutageFailureMs} ms${r.slowestOutageFailure ? `: ${r.slowestOutageFailure}` : ''})`,
    `checked: ${r.liveRanges} live ranges, ${r.leasesChecked} addresses the driver reported as given`,
    `leases left by killed processes (never reported, like a request oned timed out): ${r.unreportedLeases}; ranges left by killed register/unregister: ${r.extraRanges}`,
    `violations: ${r.violations.length}`,
    ...r.violations.map((v) => `  - ${v}`),
  ];
  return lines.join('\n');
}

async function main() {
  const seed = seedFromEnv('PGIPAM_STRESS_SEED');
  const durationMs = arg('duration', 60) * 1000;
  const concurrency = arg('concurrency', 64);
  const killProbability = arg('kill', 0.1);
  const restartAt = arg('restart-at', durationMs / 2000);
  process.stdout.write(
    `pgipam stress: ${durationMs / 1000} s, ${concurrency} processes in flight, kill probability ${killProbability}, PostgreSQL restart at ${restartAt} s, seed ${seed}\n`,
  );
  const server = await startEmbeddedPostgres({ label: 'stress' });
  try {
    const db = new pg.Client({ connectionString: server.url });
    await db.connect();
    await migrate(db);
    await db.end();
    const report = await runStress({
      databaseUrl: server.url,
      durationMs,
      concurrency,
      killProbability,
      seed,
      restart: restartAt > 0 ? { atMs: restartAt * 1000, downMs: 3000, stop: server.pause, start: server.resume } : undefined,
      log: (l) => process.stdout.write(`  ${l}\n`),
    });
    process.stdout.write(formatReport(report) + '\n');
    process.exitCode = report.violations.length ? 1 : 0;
  } finally {
    await server.stop();
  }
}

if (require.main === module) {
  main().catch((e) => {
    process.stderr.write(`stress failed: ${(e as Error).message}\n`);
    process.exitCode = 1;
  });
}
