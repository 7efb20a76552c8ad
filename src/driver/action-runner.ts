// Everything an action executable does around the library call: read and decode the request,
// connect, run, print the reply on stdout, or print one clean line on stderr and exit non-zero.
import { DEFAULT_ACTION_TIMEOUT_MS, loadConfig } from '../config';
import { PGIPAM_VERSION } from '../version';
import { routeProcessWarnings } from '../process-warnings';
import { isCommitInFlight, withClient, type Db } from '../db/client';
import { checkSchemaAndPlatform } from '../db/schema';
import { type IpamError, coerceError, toOneLine } from '../errors';
import type { ActionContext } from '../allocator/context';
import {
  MAX_INPUT_BYTES,
  decodePayload,
  parseActionXml,
  readActionInput,
  readPipedStdinNow,
  readStream,
  readStreamBytes,
  stdinIsTerminal,
} from './request';
import { type IpamRequest } from '../ipam-request';

import type { ActionName } from '../ipam-actions';
export { ACTION_NAMES, type ActionName } from '../ipam-actions';

// OpenNebula's MAD reads the exit code only; its docs ask for -1 (255) when addresses cannot be assigned.
export const FAILURE_EXIT_CODE = 255;

export interface ActionDefinition {
  name: ActionName;
  // The help text: what the action reads and writes.
  help: string;
  // Runs the library call and returns the reply for stdout ('' for actions oned ignores).
  run: (db: Db, req: IpamRequest, ctx: ActionContext) => Promise<string>;
  // The same in one round trip, before the schema check (allocator/one-trip.ts), or null when
  // run must do it.
  oneTrip?: (db: Db, req: IpamRequest, ctx: ActionContext) => Promise<string | null>;
}

export interface ActionIo {
  argv: string[];
  env: NodeJS.ProcessEnv;
  stdin: NodeJS.ReadStream;
  // the process's own stdin: what its pipe already holds, read without waiting (request.ts), and
  // whether it is a terminal, both without creating process.stdin, which costs milliseconds
  readStdinNow?: () => { data: Buffer; complete: boolean } | null;
  stdinIsTty?: () => boolean;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  // Sees the error behind a failure (tests use it to tell expected refusals from bugs).
  onError?: (e: IpamError) => void;
}

const COMMON_HELP = `
Input:  base64 of <IPAM_DRIVER_ACTION_DATA><AR>...</AR><ADDRESS>...</ADDRESS></IPAM_DRIVER_ACTION_DATA>
        on stdin, $1 = oned request id (OpenNebula >= 5.10); or $1 = base64 (5.4 - 5.8);
        or raw XML on stdin when run by hand.
Errors: one line on stderr, exit code ${FAILURE_EXIT_CODE}; the database is left as it was.
Logs:   "INFO: pgipam[<request id>] ..." lines on stderr (oned.log).
Config: PGIPAM_DATABASE_URL, or database_url in $PGIPAM_CONFIG (default /etc/one/ipam/pgipam.conf),
        or the PG* variables. See the pgipam README.
`;

export async function executeAction(
  def: ActionDefinition,
  io: ActionIo = { argv: process.argv.slice(2), env: process.env, stdin: process.stdin, stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  if (io.argv.includes('--help') || io.argv.includes('-h')) {
    io.stdout.write(`${def.name} - pgipam ${PGIPAM_VERSION} OpenNebula IPAM driver action\n\n${def.help.trim()}\n${COMMON_HELP}`);
    return 0;
  }
  let requestId = '-';
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  let phase = 'waiting for the request on stdin';
  // Last line of defence for oned's serial queue (one action at a time, no timeout of its own):
  // whatever hangs, a caller that never closes stdin included, the process ends in time. Armed
  // before anything is read, with the environment's limit, then with the config file's.
  const arm = (limitMs: number) => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(
      () => {
        const outcome = isCommitInFlight()
          ? 'a commit was on its way, so the outcome is unknown: see "pgipam history"'
          : `nothing was committed (${phase})`;
        io.stderr.write(`${toOneLine(`${def.name} gave up after ${limitMs} ms (action_timeout_ms); ${outcome}`)}\n`);
        process.exit(FAILURE_EXIT_CODE);
      },
      Math.max(0, limitMs - (Date.now() - started)),
    );
    timer.unref();
  };
  const envLimit = io.env.PGIPAM_ACTION_TIMEOUT_MS;
  arm(envLimit && /^\d{1,7}$/.test(envLimit) && Number(envLimit) > 0 ? Number(envLimit) : DEFAULT_ACTION_TIMEOUT_MS);
  try {
    const input = await readActionInput(
      io.argv,
      () => readStdin(io),
      () => (io.stdinIsTty ? io.stdinIsTty() : Boolean(io.stdin.isTTY)),
    );
    const inputReadAt = msSinceStart();
    requestId = input.requestId.replace(/[^0-9-]/g, '').slice(0, 20) || '-';
    const req = parseActionXml(decodePayload(input.payload));
    const parsedAt = msSinceStart();
    const config = loadConfig(io.env);
    arm(config.actionTimeoutMs);
    phase = 'working on the database';
    const logPrefix = `pgipam[${requestId}] ${def.name}:`;
    for (const w of config.warnings) io.stderr.write(`WARN: ${logPrefix} ${toOneLine(w)}\n`);
    // What the library logs ("allocated ...") is true only once the transaction committed: the
    // lines are written after the reply, never for an action that failed.
    const logLines: string[] = [];
    const ctx: ActionContext = {
      requestId,
      platform: config.platform,
      log: (message) => logLines.push(`INFO: ${logPrefix} ${toOneLine(message)}\n`),
    };
    const timings = io.env.PGIPAM_DEBUG ? new ActionTimings(inputReadAt, parsedAt) : null;
    // An action with a one-trip path connects without the schema check: its function checks the
    // schema version itself, and when it declines the check runs before the transactional path.
    const reply = await withClient(config, { applicationName: `pgipam/${def.name}`, skipSchemaCheck: Boolean(def.oneTrip) }, async (db) => {
      timings?.connected(db);
      const fast = def.oneTrip ? await def.oneTrip(db, req, ctx) : null;
      if (fast !== null) return fast;
      if (def.oneTrip) db.pgipamPlatform = await checkSchemaAndPlatform(db, config.platform);
      const actionCtx = { ...ctx, platform: db.pgipamPlatform ?? config.platform };
      try {
        return await def.run(db, req, actionCtx);
      } catch (e) {
        await recordRefusal(db, def.name, e, actionCtx);
        throw e;
      }
    });
    io.stdout.write(reply);
    for (const line of logLines) io.stderr.write(line);
    if (io.env.PGIPAM_DEBUG) io.stderr.write(`DEBUG: ${logPrefix} done in ${Date.now() - started} ms; ${timings!.text()}\n`);
    return 0;
  } catch (e) {
    const err = coerceError(e);
    io.onError?.(err);
    io.stderr.write(`${toOneLine(err.message)}\n`);
    if (io.env.PGIPAM_DEBUG && err.stack) {
      for (const line of err.stack.split('\n')) io.stderr.write(`DEBUG: pgipam[${requestId}] ${toOneLine(line)}\n`);
    }
    return FAILURE_EXIT_CODE;
  } finally {
    if (timer) clearTimeout(timer);
  }
}

async function readStdin(io: ActionIo): Promise<string> {
  const now = io.readStdinNow?.();
  if (!now) return readStream(io.stdin);
  if (now.complete) return now.data.toString('utf8');
  return Buffer.concat([now.data, await readStreamBytes(io.stdin, MAX_INPUT_BYTES - now.data.length)]).toString('utf8');
}

// Where one action's time goes, for PGIPAM_DEBUG and the benchmark: from the process's start to
// the first line of pgipam's code (Node's start-up and the bundle's load), connecting (TCP or
// socket, TLS, authentication, the session settings and the schema check), and each round trip
// after that with the statements it carried.
// when the bundle had loaded this far (Node's start-up and the code before it)
// process.uptime and not performance.now: the global performance loads perf_hooks and eight
// modules more at start-up
const msSinceStart = () => process.uptime() * 1000;
const MODULE_EVALUATED_AT = msSinceStart();

class ActionTimings {
  private readonly configAt = msSinceStart();
  constructor(
    private readonly inputReadAt: number,
    private readonly parsedAt: number,
  ) {}
  private connectedAt = 0;
  private readonly trips: number[] = [];
  private statements = 0;

  connected(db: { query: (...args: never[]) => unknown }): void {
    this.connectedAt = msSinceStart();
    const query = db.query.bind(db) as (...args: unknown[]) => Promise<unknown>;
    (db as { query: unknown }).query = async (...args: unknown[]) => {
      const t0 = msSinceStart();
      const text = typeof args[0] === 'string' ? args[0] : ((args[0] as { text?: string })?.text ?? '');
      this.statements += Math.max(1, text.split(';').filter((x) => x.trim() !== '').length);
      try {
        return await query(...args);
      } finally {
        this.trips.push(msSinceStart() - t0);
      }
    };
  }

  text(): string {
    const ms = (n: number) => n.toFixed(1);
    return `timings: start to code ${ms(MODULE_EVALUATED_AT)} ms, stdin read ${ms(this.inputReadAt - MODULE_EVALUATED_AT)} ms, request parsed ${ms(this.parsedAt - this.inputReadAt)} ms, config ${ms(this.configAt - this.parsedAt)} ms, connect ${ms(this.connectedAt - this.configAt)} ms, ${this.trips.length} round trips (${this.statements} statements): ${this.trips.map(ms).join(' ')} ms, total ${ms(msSinceStart())} ms`;
  }
}

// A refusal (the range is full, the address taken, the request bad, the pool not granted) is
// counted for monitoring (pgipam metrics), after the action's transaction rolled back; best
// effort: the connection may be the thing that failed.
const REFUSALS = new Set([
  'BAD_REQUEST',
  'RANGE_NOT_FOUND',
  'RANGE_OVERLAP',
  'RANGE_MISMATCH',
  'SPACE_NOT_FOUND',
  'NO_FREE_ADDRESS',
  'ADDRESS_IN_USE',
  'NOT_FOUND',
  'CONFLICT',
  'PERMISSION_DENIED',
]);

async function recordRefusal(db: Db, action: ActionName, e: unknown, ctx: ActionContext): Promise<void> {
  const code = (e as { code?: string }).code;
  if (!code || !REFUSALS.has(code)) return;
  await db
    .query('insert into pgipam.refusal (action, code, platform, request_id) values ($1, $2, $3, $4)', [
      action,
      code,
      ctx.platform,
      ctx.requestId,
    ])
    .catch(() => {});
}

// The process entry of the five executables (actions/*.ts): exit code from executeAction.
export function actionProcessMain(def: ActionDefinition): void {
  routeProcessWarnings(`pgipam ${def.name}`);
  const io: ActionIo = {
    argv: process.argv.slice(2),
    env: process.env,
    // created only when read from (a terminal, a socket, or a pipe still being written)
    get stdin() {
      return process.stdin;
    },
    readStdinNow: readPipedStdinNow,
    stdinIsTty: stdinIsTerminal,
    stdout: process.stdout,
    stderr: process.stderr,
  };
  // Ends the process as soon as the action is done, instead of letting Node tear its environment
  // down piece by piece (several milliseconds of a process that lives for one action). Safe here:
  // the connection is closed by then, and on Linux writes to stdout and stderr (pipes, files,
  // terminals) are synchronous, so nothing written is lost. 'exit' handlers still run (the code
  // cache is written in one).
  executeAction(def, io).then(
    (code) => process.exit(code),
    (e) => {
      process.stderr.write(`${toOneLine(String((e as Error)?.message ?? e))}\n`);
      process.exit(FAILURE_EXIT_CODE);
    },
  );
}
