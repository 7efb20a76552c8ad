// A primary and a streaming standby on loopback, from Debian's PostgreSQL 15 (pg_basebackup is not
// in the embedded binaries), for failover tests. As root the servers run as the postgres system
// user (initdb refuses root). Trust authentication on 127.0.0.1: a throw-away pair.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './embedded';

// runuser lives in /usr/sbin, which a minimal PATH (oned's, CI's env -i) leaves out.
export const RUNUSER = ['/usr/sbin/runuser', '/sbin/runuser'].find((f) => fs.existsSync(f)) ?? 'runuser';

export const PG15_BIN = '/usr/lib/postgresql/15/bin';

export interface Server {
  port: number;
  dataDir: string;
  url: string;
}

export interface ReplicaPair {
  primary: Server;
  standby: Server;
  // both hosts, the primary first, as an operator would list them
  url: string;
  // cuts the standby off the primary: its WAL receiver cannot reconnect, and nothing committed
  // from then on reaches it
  disconnectStandby: () => void;
  // the primary dies: an immediate shutdown, as in a crash
  crashPrimary: () => void;
  promoteStandby: () => void;
  stop: () => void;
}

export function pg15Available(): boolean {
  return ['initdb', 'pg_ctl', 'pg_basebackup', 'postgres'].every((b) => fs.existsSync(path.join(PG15_BIN, b)));
}

const asRoot = (process.getuid?.() ?? 1) === 0;
function pgRun(bin: string, args: string[]): string {
  const cmd = asRoot ? [RUNUSER, '-u', 'postgres', '--', path.join(PG15_BIN, bin), ...args] : [path.join(PG15_BIN, bin), ...args];
  return execFileSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export async function startReplicaPair(o: { synchronous: boolean; database: string }): Promise<ReplicaPair> {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'pgipam-pair-'));
  fs.chmodSync(base, 0o755);
  if (asRoot) execFileSync('chown', ['postgres:postgres', base]);
  const primary = { port: await freePort(), dataDir: path.join(base, 'primary') };
  const standby = { port: await freePort(), dataDir: path.join(base, 'standby') };
  pgRun('initdb', ['-D', primary.dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8']);
  fs.appendFileSync(
    path.join(primary.dataDir, 'postgresql.conf'),
    [
      `port = ${primary.port}`,
      "listen_addresses = '127.0.0.1'",
      `unix_socket_directories = '${base}'`,
      'wal_level = replica',
      'max_wal_senders = 5',
      'fsync = off',
      'synchronous_commit = on',
      '',
    ].join('\n'),
  );
  fs.appendFileSync(path.join(primary.dataDir, 'pg_hba.conf'), 'host replication postgres 127.0.0.1/32 trust\n');
  pgRun('pg_ctl', ['-D', primary.dataDir, '-l', path.join(base, 'primary.log'), '-w', 'start']);
  pgRun('createdb', ['-h', '127.0.0.1', '-p', String(primary.port), '-U', 'postgres', o.database]);
  pgRun('pg_basebackup', [
    '-h',
    '127.0.0.1',
    '-p',
    String(primary.port),
    '-U',
    'postgres',
    '-D',
    standby.dataDir,
    '-R',
    '-X',
    'stream',
    '--checkpoint=fast',
  ]);
  fs.appendFileSync(
    path.join(standby.dataDir, 'postgresql.auto.conf'),
    [`port = ${standby.port}`, `primary_conninfo = 'host=127.0.0.1 port=${primary.port} user=postgres application_name=standby1'`, ''].join(
      '\n',
    ),
  );
  pgRun('pg_ctl', ['-D', standby.dataDir, '-l', path.join(base, 'standby.log'), '-w', 'start']);
  const psql = (port: number, ...sql: string[]) =>
    pgRun('psql', ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-q', ...sql.flatMap((q) => ['-c', q])]);
  // only now: a commit on a primary that names a synchronous standby waits until that standby is there
  if (o.synchronous) {
    psql(primary.port, "alter system set synchronous_standby_names = 'standby1'", 'select pg_reload_conf()');
  }
  const url = (ports: number[]) => `postgres://postgres@${ports.map((p) => `127.0.0.1:${p}`).join(',')}/${o.database}`;
  return {
    primary: { ...primary, url: url([primary.port]) },
    standby: { ...standby, url: url([standby.port]) },
    url: `${url([primary.port, standby.port])}?target_session_attrs=read-write`,
    disconnectStandby: () => {
      psql(
        standby.port,
        "alter system set primary_conninfo = 'host=127.0.0.1 port=1 user=postgres application_name=standby1'",
        'select pg_reload_conf()',
      );
      psql(primary.port, 'select pg_terminate_backend(pid) from pg_stat_replication');
    },
    crashPrimary: () => pgRun('pg_ctl', ['-D', primary.dataDir, '-m', 'immediate', 'stop']),
    promoteStandby: () => pgRun('pg_ctl', ['-D', standby.dataDir, '-w', 'promote']),
    stop: () => {
      for (const d of [primary.dataDir, standby.dataDir])
        spawnSync(
          asRoot ? RUNUSER : path.join(PG15_BIN, 'pg_ctl'),
          asRoot
            ? ['-u', 'postgres', '--', path.join(PG15_BIN, 'pg_ctl'), '-D', d, '-m', 'immediate', 'stop']
            : ['-D', d, '-m', 'immediate', 'stop'],
        );
      fs.rmSync(base, { recursive: true, force: true });
    },
  };
}
