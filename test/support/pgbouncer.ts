// A PgBouncer in transaction pooling mode in front of the test server (Debian's pgbouncer), for
// running the black-box tests the way many front-ends run behind one: no session state survives a
// transaction, and start-up settings are refused.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './embedded';

export const PGBOUNCER = '/usr/sbin/pgbouncer';

export interface PgBouncer {
  // the server URL with PgBouncer's host and port (any database name is passed through)
  url: string;
  stop: () => void;
}

export async function startPgBouncer(serverUrl: string): Promise<PgBouncer> {
  const server = new URL(serverUrl);
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgipam-pgbouncer-'));
  fs.chmodSync(dir, 0o755);
  const ini = path.join(dir, 'pgbouncer.ini');
  fs.writeFileSync(
    ini,
    [
      '[databases]',
      `* = host=127.0.0.1 port=${server.port} user=${decodeURIComponent(server.username)} password=${decodeURIComponent(server.password)}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      // clients are not authenticated (a test instance); every server login is the one above
      'auth_type = any',
      'pool_mode = transaction',
      'max_client_conn = 1000',
      'default_pool_size = 40',
      'ignore_startup_parameters = extra_float_digits',
      '',
    ].join('\n'),
  );
  const asRoot = (process.getuid?.() ?? 1) === 0;
  const child: ChildProcess = spawn(PGBOUNCER, [...(asRoot ? ['-u', 'postgres'] : []), ini], { stdio: 'ignore' });
  // ready when it accepts connections
  for (let i = 0; i < 100; i++) {
    if (spawnSync('bash', ['-c', `exec 3<>/dev/tcp/127.0.0.1/${port}`]).status === 0) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const url = new URL(serverUrl);
  url.port = String(port);
  return {
    url: url.toString(),
    stop: () => {
      child.kill('SIGTERM');
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
