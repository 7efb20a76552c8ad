// `pgipam db setup`: what a first install needs on the PostgreSQL side, from an administrative
// connection, on a server pgipam did not create: the database, the schema-owner role, btree_gist,
// the schema, and a driver login role for the platform with a random 256-bit password that goes
// only into the driver's config file. Run twice, it changes nothing and says so.
import crypto from 'node:crypto';
import pg from 'pg';
import { IpamError } from '../errors';
import { checkName } from '../names';
import { migrate } from '../db/migrate';
import { GENERATED_PASSWORD_ITERATIONS, addPlatform, scramVerifier } from './platforms';
import type { ActionContext } from '../allocator/context';
import type { Db } from '../db/client';

export interface DbSetupOptions {
  adminUrl?: string;
  database: string;
  owner: string;
  platform: string;
  // how front-ends reach the server (host[:port]) in the database_url written for them
  dbHost?: string;
  frontEnds: string[];
  // the password of an existing platform role is not recoverable: set a new one
  resetPassword: boolean;
  // the config file already holds a working database_url for the platform's role
  configHasRole: (role: string) => boolean;
}

export interface DbSetupResult {
  steps: Array<{ what: string; done: 'created' | 'exists' | 'updated' }>;
  databaseUrl: string | null;
  role: string;
  hba: string[];
  ident: string[];
  advice: string[];
  changed: boolean;
}

const q = pg.escapeIdentifier;

// The local superuser over the Unix socket when no --admin-url: `sudo -u postgres pgipam db setup`.
function adminConfig(url: string | undefined): pg.ClientConfig {
  return url ? { connectionString: url } : { host: '/var/run/postgresql', user: 'postgres', database: 'postgres' };
}

async function connectAs(config: pg.ClientConfig): Promise<pg.Client> {
  const c = new pg.Client({ ...config, options: '-c search_path=pg_catalog,pgipam' });
  c.on('error', () => {});
  await c.connect();
  return c;
}

export async function dbSetup(o: DbSetupOptions, ctx: ActionContext): Promise<DbSetupResult> {
  checkName('platform name', o.platform);
  for (const [what, v] of [
    ['--database', o.database],
    ['--owner', o.owner],
  ] as const) {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(v)) throw new IpamError('BAD_REQUEST', `${what} "${v}" must be lower-case letters, digits and _`);
  }
  const steps: DbSetupResult['steps'] = [];
  const base = adminConfig(o.adminUrl);
  const admin = await connectAs(base);
  let settings: { listen: string; encryption: string; superuser: boolean };
  try {
    settings = await serverSettings(admin);
    if (!settings.superuser)
      throw new IpamError(
        'PERMISSION_DENIED',
        'db setup needs a superuser connection (--admin-url, or run it as the postgres user on the database server)',
      );
    steps.push(
      await ensure(
        admin,
        `role ${o.owner} (owns the pgipam schema)`,
        'select 1 from pg_roles where rolname = $1',
        [o.owner],
        `create role ${q(o.owner)} nologin`,
      ),
    );
    steps.push(
      await ensure(
        admin,
        `database ${o.database}`,
        'select 1 from pg_database where datname = $1',
        [o.database],
        `create database ${q(o.database)} owner ${q(o.owner)}`,
      ),
    );
  } finally {
    await admin.end();
  }
  const db = await connectAs(o.adminUrl ? { connectionString: withDatabase(o.adminUrl, o.database) } : { ...base, database: o.database });
  try {
    steps.push(
      await ensure(
        db,
        'extension btree_gist',
        `select 1 from pg_extension where extname = 'btree_gist'`,
        [],
        'create extension btree_gist',
      ),
    );
    steps.push(await migrateAsOwner(db, o.owner));
    const platform = await ensurePlatform(db as Db, o, ctx);
    steps.push(...platform.steps);
    const host = o.dbHost ?? hostOf(o.adminUrl);
    const databaseUrl = platform.password === null ? null : `postgres://${platform.role}:${platform.password}@${host}/${o.database}`;
    const hba = [
      ...o.frontEnds.map((cidr) => `host    ${o.database}  ${platform.role}  ${cidr}  scram-sha-256`),
      `local   ${o.database}  ${platform.role}  peer map=pgipam`,
    ];
    const ident = [`pgipam  oneadmin  ${platform.role}`];
    const advice = adviceFor(settings, o);
    return { steps, databaseUrl, role: platform.role, hba, ident, advice, changed: steps.some((s) => s.done !== 'exists') };
  } finally {
    await db.end();
  }
}

async function serverSettings(c: pg.Client): Promise<{ listen: string; encryption: string; superuser: boolean }> {
  const { rows } = await c.query<{ listen: string; encryption: string; superuser: boolean }>(
    `select current_setting('listen_addresses') as listen, current_setting('password_encryption') as encryption,
            (select rolsuper from pg_roles where rolname = current_user) as superuser`,
  );
  return rows[0]!;
}

async function ensure(
  c: pg.Client,
  what: string,
  probe: string,
  params: unknown[],
  create: string,
): Promise<DbSetupResult['steps'][number]> {
  if ((await c.query(probe, params)).rowCount) return { what, done: 'exists' };
  await c.query(create);
  return { what, done: 'created' };
}

// The schema is created and migrated as its owner, so that its objects belong to that role and not
// to the administrator who ran the setup. A schema that exists keeps its owner.
async function migrateAsOwner(c: pg.Client, owner: string): Promise<DbSetupResult['steps'][number]> {
  const { rows } = await c.query<{ owner: string }>(`select nspowner::regrole::text as owner from pg_namespace where nspname = 'pgipam'`);
  await c.query(`set role ${q(rows[0]?.owner ?? owner)}`);
  try {
    const r = await migrate(c);
    return {
      what: `pgipam schema (version ${r.to}${rows[0] ? `, owner ${rows[0].owner}` : ''})`,
      done: r.applied.length ? (r.from === 0 ? 'created' : 'updated') : 'exists',
    };
  } finally {
    await c.query('reset role');
  }
}

// The platform and its login role. A new role gets a random 256-bit password; an existing one
// keeps its password (it cannot be read back) unless --reset-password.
async function ensurePlatform(
  db: Db,
  o: DbSetupOptions,
  ctx: ActionContext,
): Promise<{ role: string; password: string | null; steps: DbSetupResult['steps'] }> {
  const { rows } = await db.query<{ role_name: string | null }>('select role_name from pgipam.platform where name = $1', [o.platform]);
  const newPassword = () => crypto.randomBytes(32).toString('base64url');
  if (!rows[0]) {
    const password = newPassword();
    const p = await addPlatform(db, o.platform, { password, generatedPassword: true, description: 'created by pgipam db setup' }, ctx);
    return { role: p.role!, password, steps: [{ what: `platform ${o.platform} with login role ${p.role}`, done: 'created' }] };
  }
  const role = rows[0].role_name;
  if (!role)
    throw new IpamError(
      'CONFLICT',
      `platform "${o.platform}" connects as the schema owner (it has no role of its own): name another --platform`,
    );
  if (o.resetPassword) {
    const password = newPassword();
    await db.query(`alter role ${q(role)} password ${pg.escapeLiteral(scramVerifier(password, GENERATED_PASSWORD_ITERATIONS))}`);
    return { role, password, steps: [{ what: `password of role ${role}`, done: 'updated' }] };
  }
  if (!o.configHasRole(role)) {
    throw new IpamError(
      'CONFLICT',
      `platform "${o.platform}" exists but the config file has no database_url for its role ${role}, and its password cannot be read back: run again with --reset-password`,
    );
  }
  return { role, password: null, steps: [{ what: `platform ${o.platform} with login role ${role}`, done: 'exists' }] };
}

function adviceFor(s: { listen: string; encryption: string }, o: DbSetupOptions): string[] {
  const out: string[] = [];
  const local = (c: string) => /^(127\.|::1|localhost)/.test(c);
  if (o.frontEnds.some((c) => !local(c)) && /^\s*(localhost|127\.0\.0\.1|::1)?\s*$/.test(s.listen)) {
    out.push(
      `listen_addresses is '${s.listen}': front-ends elsewhere cannot connect; set listen_addresses = '*' (or the address they reach) in postgresql.conf and restart PostgreSQL`,
    );
  }
  if (s.encryption !== 'scram-sha-256')
    out.push(
      `password_encryption is ${s.encryption}: set it to scram-sha-256 in postgresql.conf, reload, and run this again with --reset-password`,
    );
  return out;
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

function hostOf(url: string | undefined): string {
  if (!url) return 'localhost';
  const u = new URL(url);
  return `${u.hostname || 'localhost'}${u.port ? `:${u.port}` : ''}`;
}
