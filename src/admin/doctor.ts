// `pgipam doctor`: the one command an operator runs after an install and whenever something is
// wrong. Each check says ok, warn or fail, and what to do. It reads the configuration exactly as
// the actions do, and changes nothing.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config';
import { type Db, connect } from '../db/client';
import { SCHEMA_VERSION, checkSchemaAndPlatform, missingSchemaObjects } from '../db/migrate';
import { coerceError } from '../errors';
import { ACTION_NAMES } from '../ipam-actions';
import { PGIPAM_VERSION } from '../version';
import { lastReconcileRuns } from './reconcile';
import { PUBLIC_SCHEMA_PROBLEM, checkDatabase, publicSchemaWritable } from './check';
import { lookupUser } from './files';

// runuser lives in /usr/sbin, which a minimal PATH (oned's, CI's env -i) leaves out.
const RUNUSER = ['/usr/sbin/runuser', '/sbin/runuser'].find((f) => fs.existsSync(f)) ?? 'runuser';

export type Status = 'ok' | 'warn' | 'fail';

export interface DoctorCheck {
  check: string;
  status: Status;
  detail: string;
}

export interface DoctorOptions {
  remotes: string;
  mad: string;
  onedConf: string;
  configPath: string;
  // loads the configuration as the actions do (throws the line an action would print)
  loadConfig: () => Config;
}

const ok = (check: string, detail: string): DoctorCheck => ({ check, status: 'ok', detail });
const warn = (check: string, detail: string): DoctorCheck => ({ check, status: 'warn', detail });
const fail = (check: string, detail: string): DoctorCheck => ({ check, status: 'fail', detail });

export async function runDoctor(o: DoctorOptions): Promise<DoctorCheck[]> {
  const checks: DoctorCheck[] = [configFileCheck(o.configPath)];
  let config: Config | null = null;
  try {
    config = o.loadConfig();
    for (const w of config.warnings) checks.push(warn('config', w));
  } catch (e) {
    checks.push(fail('config', coerceError(e).message));
  }
  if (config) checks.push(...(await databaseChecks(config)));
  checks.push(onedConfCheck(o.onedConf, o.mad));
  checks.push(...actionChecks(o.remotes, o.mad));
  checks.push(nodeCheck());
  return checks;
}

// The driver's config file: present, a regular file, oneadmin's, not readable by others.
function configFileCheck(file: string): DoctorCheck {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    return warn('config file', `${file} does not exist (PGIPAM_DATABASE_URL or PG* must then say where the database is)`);
  }
  if (!st.isFile()) return fail('config file', `${file} is not a regular file`);
  const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
  const oneadmin = lookupUser('oneadmin');
  if (st.mode & 0o077) return fail('config file', `${file} has mode ${mode}: it may hold a password; chmod 600 ${file}`);
  if (oneadmin && st.uid !== oneadmin.uid)
    return fail('config file', `${file} is not owned by oneadmin (the actions run as oneadmin): chown oneadmin ${file}`);
  return ok('config file', `${file}: mode ${mode}${oneadmin ? ', owner oneadmin' : ''}`);
}

async function databaseChecks(config: Config): Promise<DoctorCheck[]> {
  const started = Date.now();
  let db: Db;
  try {
    db = await connect(config, { applicationName: 'pgipam/doctor', skipSchemaCheck: true });
  } catch (e) {
    return [fail('database', coerceError(e).message)];
  }
  const out: DoctorCheck[] = [ok('database', `connected in ${Date.now() - started} ms`)];
  try {
    out.push(await tlsCheck(db, config));
    const schema = await schemaCheck(db, config);
    out.push(schema);
    if (schema.status === 'fail') return out;
    out.push(await roleCheck(db));
    out.push(await replicationCheck(db));
    if (await publicSchemaWritable(db)) out.push(warn('public schema', PUBLIC_SCHEMA_PROBLEM));
    out.push(...(await usageChecks(db)));
    out.push(await staleActionsCheck(db));
    out.push(...(await reconcileChecks(db)));
    const consistency = await checkDatabase(db);
    out.push(
      consistency.problems.length
        ? fail(
            'consistency',
            `${consistency.problems.length} problems: ${consistency.problems.slice(0, 3).join('; ')} (see "pgipam check")`,
          )
        : ok('consistency', `${consistency.ranges} ranges and ${consistency.pools} pools agree with themselves`),
    );
  } catch (e) {
    out.push(fail('database', coerceError(e).message));
  } finally {
    await db.end().catch(() => {});
  }
  return out;
}

async function tlsCheck(db: Db, config: Config): Promise<DoctorCheck> {
  const { rows } = await db.query<{ ssl: boolean | null; local: boolean }>(
    `select (select ssl from pg_catalog.pg_stat_ssl where pid = pg_catalog.pg_backend_pid()) as ssl,
            coalesce(pg_catalog.inet_client_addr() <<= '127.0.0.0/8'::inet or pg_catalog.inet_client_addr() = '::1'::inet, true) as local`,
  );
  const r = rows[0]!;
  if (r.ssl) return ok('tls', 'the connection is encrypted');
  if (r.local) return ok('tls', 'not encrypted, but the server is on this host');
  return warn(
    'tls',
    `the connection to a remote server is not encrypted: add sslmode=verify-full (and sslrootcert) to the database_url in ${config.source}`,
  );
}

async function schemaCheck(db: Db, config: Config): Promise<DoctorCheck> {
  try {
    const platform = await checkSchemaAndPlatform(db, config.platform);
    const missing = await missingSchemaObjects(db);
    if (missing.length) return fail('schema', `damaged: ${missing.join(', ')} missing; restore the database from a backup`);
    return ok('schema', `version ${SCHEMA_VERSION}, as this pgipam expects; platform "${platform}" is known`);
  } catch (e) {
    return fail('schema', coerceError(e).message);
  }
}

// The role the actions connect as should be a platform's: confined by row-level security, no DDL.
async function roleCheck(db: Db): Promise<DoctorCheck> {
  const { rows } = await db.query<{ role: string; superuser: boolean; owner: boolean; ddl: boolean }>(
    `select current_user as role, (select rolsuper from pg_catalog.pg_roles where rolname = current_user) as superuser,
            pg_catalog.pg_has_role(current_user, (select nspowner from pg_catalog.pg_namespace where nspname = 'pgipam'), 'MEMBER') as owner,
            pg_catalog.has_schema_privilege(current_user, 'pgipam', 'CREATE') as ddl`,
  );
  const r = rows[0]!;
  if (r.superuser)
    return fail(
      'driver role',
      `the actions connect as ${r.role}, a superuser: give this front-end a platform role ("pgipam db setup" or "pgipam platform add")`,
    );
  if (r.owner)
    return warn(
      'driver role',
      `the actions connect as ${r.role}, the schema owner: only pgipam's code keeps this front-end to its platform; a platform role ("pgipam platform add") is confined by the database itself`,
    );
  if (r.ddl)
    return fail('driver role', `role ${r.role} may create objects in the pgipam schema: REVOKE CREATE ON SCHEMA pgipam FROM ${r.role}`);
  return ok('driver role', `${r.role}: a platform role, no DDL, confined by row-level security`);
}

// With asynchronous replication a failover can lose leases the driver already reported to oned.
async function replicationCheck(db: Db): Promise<DoctorCheck> {
  const { rows } = await db.query<{ standbys: number; sync: number; commit: string }>(
    `select count(*)::int as standbys, count(*) filter (where sync_state in ('sync', 'quorum'))::int as sync,
            current_setting('synchronous_commit') as commit from pg_catalog.pg_stat_replication`,
  );
  const r = rows[0]!;
  if (r.standbys === 0) return ok('replication', 'no standby streams from this server');
  if (r.sync === 0 || r.commit === 'off' || r.commit === 'local') {
    return warn(
      'replication',
      `${r.standbys} standby(s), none synchronous: a failover can lose leases already reported to OpenNebula, and hand them out again; set synchronous_standby_names and synchronous_commit = on (or remote_apply)`,
    );
  }
  return ok('replication', `${r.sync} of ${r.standbys} standby(s) synchronous (synchronous_commit = ${r.commit})`);
}

async function usageChecks(db: Db): Promise<DoctorCheck[]> {
  const { rows } = await db.query<{ what: string; pct: string }>(
    `select 'range ' || r.id as what, round(100.0 * coalesce(sum(l.last_idx - l.first_idx + 1), 0) / r.size, 1)::text as pct
       from pgipam.address_range r left join pgipam.lease l on l.range_id = r.id group by r.id, r.size
      having coalesce(sum(l.last_idx - l.first_idx + 1), 0) * 10 > r.size * 9
     union all
     select 'pool ' || p.name || ' ' || x.network::text || '/' || x.prefix_length,
            round(100 - 100.0 * coalesce((select sum(power(2::numeric, (case f.family when 4 then 32 else 128 end) - f.prefix_length))
              from pgipam.pool_free_block f where f.pool_id = p.id and f.family = x.family and f.network between x.network and x.last), 0) / (x.last - x.network + 1), 1)::text
       from pgipam.pool p join pgipam.pool_prefix x on x.pool_id = p.id
      where coalesce((select sum(power(2::numeric, (case f.family when 4 then 32 else 128 end) - f.prefix_length))
              from pgipam.pool_free_block f where f.pool_id = p.id and f.family = x.family and f.network between x.network and x.last), 0) * 10 < (x.last - x.network + 1)
     order by 1`,
  );
  if (!rows.length) return [ok('usage', 'no range or pool prefix is above 90% used')];
  return rows.map((r) => warn('usage', `${r.what} is ${r.pct}% used`));
}

// The last reconcile of each platform: drift it left, or none for too long.
async function reconcileChecks(db: Db): Promise<DoctorCheck[]> {
  const rows = await lastReconcileRuns(db);
  const ranged = await db.query<{ n: number }>('select count(*)::int as n from pgipam.address_range where not observed');
  if (!rows.length)
    return ranged.rows[0]!.n
      ? [
          warn(
            'reconcile',
            'never run: schedule "pgipam reconcile --onevnet --fix" (as oneadmin on the front-end) to find leases oned and pgipam disagree on',
          ),
        ]
      : [];
  return rows.map((r) => {
    const left = Object.entries(r.found)
      .map(([k, n]) => [k, n - (r.repaired[k] ?? 0)] as const)
      .filter(([, n]) => n > 0);
    const when = `last run ${r.at.toISOString()}`;
    if (left.length)
      return warn(
        'reconcile',
        `platform "${r.platform}": ${when} left ${left.map(([k, n]) => `${k} ${n}`).join(', ')}: see "pgipam reconcile"`,
      );
    if (r.ageSeconds > 26 * 3600) return warn('reconcile', `platform "${r.platform}": ${when}, over a day ago; is the cron job running?`);
    return ok(
      'reconcile',
      `platform "${r.platform}": ${when}, in agreement${Object.values(r.found).some((n) => n > 0) ? ' after repairs' : ''}`,
    );
  });
}

// Changes of the last day made by another pgipam version: a stale copy of the actions in remotes/
// (or on an HA peer).
async function staleActionsCheck(db: Db): Promise<DoctorCheck> {
  const { rows } = await db.query<{ v: string }>(
    `select distinct pgipam_version as v from pgipam.history where at > now() - interval '1 day' and pgipam_version is not null and pgipam_version <> $1`,
    [PGIPAM_VERSION],
  );
  if (rows.length)
    return warn(
      'versions',
      `changes of the last day were made by pgipam ${rows.map((r) => r.v).join(', ')}, this CLI is ${PGIPAM_VERSION}: a front-end (or an HA peer) runs other actions; run "pgipam install" there`,
    );
  return ok('versions', `every change of the last day was made by pgipam ${PGIPAM_VERSION} (or none was made)`);
}

function onedConfCheck(file: string, mad: string): DoctorCheck {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return warn('oned.conf', `${file} is not readable here: check that IPAM_MAD's -i list names ${mad}`);
  }
  const args = /IPAM_MAD\s*=\s*\[[^\]]*?ARGUMENTS\s*=\s*"([^"]*)"/.exec(text)?.[1];
  const list = args ? /(^|\s)-i\s+(\S+)/.exec(args)?.[2]?.split(',') : undefined;
  if (list?.includes(mad)) return ok('oned.conf', `IPAM_MAD names ${mad} (ARGUMENTS = "${args}")`);
  return fail(
    'oned.conf',
    `IPAM_MAD in ${file} does not name ${mad}${args ? ` (ARGUMENTS = "${args}")` : ''}: "pgipam install" prints the line to use`,
  );
}

// Every action present, executable, and of this CLI's version (its --help says which).
function actionChecks(remotes: string, mad: string): DoctorCheck[] {
  const dir = path.join(remotes, 'ipam', mad);
  const out: DoctorCheck[] = [];
  for (const a of ACTION_NAMES) {
    const file = path.join(dir, a);
    let st: fs.Stats;
    try {
      st = fs.statSync(file);
    } catch {
      out.push(fail('actions', `${file} is missing: run "pgipam install"`));
      continue;
    }
    if ((st.mode & 0o111) === 0) {
      out.push(fail('actions', `${file} is not executable: chmod 755 ${file}`));
      continue;
    }
    const help = spawnSync(file, ['--help'], { encoding: 'utf8', timeout: 10_000 });
    const version = /^\S+ - pgipam (\S+) /.exec(help.stdout ?? '')?.[1];
    if (version !== PGIPAM_VERSION)
      out.push(
        fail(
          'actions',
          `${file} is ${version ? `pgipam ${version}` : 'not a pgipam action'}, this CLI is ${PGIPAM_VERSION}: run "pgipam install"`,
        ),
      );
  }
  if (!out.length) out.push(ok('actions', `the five actions in ${dir} are pgipam ${PGIPAM_VERSION}`));
  const cache = codeCacheCheck(dir);
  if (cache) out.push(cache);
  return out;
}

// The actions keep V8's code cache beside themselves (build/action-loader.js); in a directory
// oneadmin cannot write, every action compiles its bundle from scratch, about 30 ms more.
function codeCacheCheck(dir: string): DoctorCheck | null {
  const oneadmin = lookupUser('oneadmin');
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch {
    return null;
  }
  if (!oneadmin) return null;
  const writable = (st.uid === oneadmin.uid && st.mode & 0o200) || (st.gid === oneadmin.gid && st.mode & 0o020) || st.mode & 0o002;
  return writable
    ? null
    : warn(
        'actions',
        `oneadmin cannot write ${dir}, so the actions cannot keep their code cache there (about 30 ms more each): chown oneadmin ${dir}`,
      );
}

// The node that oned's actions start (oneadmin's PATH): Node 20 is past its end of life.
function nodeCheck(): DoctorCheck {
  const asOneadmin = lookupUser('oneadmin') && (process.getuid?.() ?? 1) === 0;
  const r = asOneadmin
    ? spawnSync(RUNUSER, ['-u', 'oneadmin', '--', 'sh', '-lc', 'node --version'], { encoding: 'utf8', timeout: 10_000 })
    : spawnSync('node', ['--version'], { encoding: 'utf8', timeout: 10_000 });
  const who = asOneadmin ? "oneadmin's PATH" : 'PATH';
  const v = /^v(\d+)\./.exec(r.stdout ?? '');
  if (!v) return fail('node', `no node on ${who}: the actions are "#!/usr/bin/env node" scripts; install Node.js 22 or 24`);
  const major = Number(v[1]);
  if (major < 20) return fail('node', `node ${r.stdout.trim()} on ${who} is too old: install Node.js 22 or 24`);
  if (major === 20)
    return warn('node', `node ${r.stdout.trim()} on ${who} works but is past its end of life (April 2026): install Node.js 22 or 24`);
  return ok('node', `node ${r.stdout.trim()} on ${who}`);
}
