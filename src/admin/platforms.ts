// Platforms are OpenNebula front-ends (or groups of HA peers) that share the address space. Each
// may get its own PostgreSQL login role, a member of pgipam_driver; row-level security then keeps
// it to its own ranges and to the pools granted to it.
import crypto from 'node:crypto';
import { escapeIdentifier, escapeLiteral } from 'pg';
import type { Db } from '../db/client';
import { withTransaction } from '../db/client';
import { IpamError } from '../errors';
import { checkName } from '../names';
import type { ActionContext } from '../allocator/context';
import { recordHistory } from '../allocator/history';
import { getPool } from '../allocator/pool-space';

export const DRIVER_GROUP = 'pgipam_driver';

// What the actions need and nothing more: no DDL, no pool changes, history append-only. Pool
// free space and subnets change only through the database functions of migration 4.
export const DRIVER_GRANTS = [
  `grant usage on schema pgipam to ${DRIVER_GROUP}`,
  `grant select on pgipam.space, pgipam.migration, pgipam.platform to ${DRIVER_GROUP}`,
  `grant select, insert, update, delete on pgipam.address_range, pgipam.lease, pgipam.free_extent to ${DRIVER_GROUP}`,
  `grant select on pgipam.pool, pgipam.pool_prefix, pgipam.pool_reservation, pgipam.pool_grant, pgipam.pool_allocation, pgipam.pool_free_block to ${DRIVER_GROUP}`,
  `revoke insert, update, delete on pgipam.pool_free_block, pgipam.pool_allocation from ${DRIVER_GROUP}`,
  `grant select, insert on pgipam.history, pgipam.refusal, pgipam.reconcile_run to ${DRIVER_GROUP}`,
  `grant usage on all sequences in schema pgipam to ${DRIVER_GROUP}`,
  `grant execute on function pgipam.pool_covering(bigint, integer, numeric, numeric), pgipam.pool_check_use(bigint),
     pgipam.pool_take_block(bigint, integer, integer), pgipam.pool_take_span(bigint, integer, numeric, numeric, boolean),
     pgipam.pool_assign(bigint), pgipam.pool_release_range(bigint), pgipam.range_reserve_pool_reservations(bigint, bigint, bigint, text),
     pgipam.vlan_pool_allowed(bigint), pgipam.vlan_take(bigint, integer, bigint), pgipam.vlan_release_range(bigint)
     to ${DRIVER_GROUP}`,
  `grant select on pgipam.vlan_pool, pgipam.vlan_pool_span, pgipam.vlan_free_extent, pgipam.vlan_allocation, pgipam.vlan_pool_grant to ${DRIVER_GROUP}`,
];

// A role may serve a platform only when it is confined by row-level security and cannot make
// itself more: not the schema owner (nor a member of it), not a superuser, no CREATEROLE, no
// BYPASSRLS. Such a role named with --role would silently move every owner-connected front-end.
async function refuseUnconfinedRole(db: Db, role: string): Promise<void> {
  const { rows } = await db.query<{ superuser: boolean; createrole: boolean; bypassrls: boolean; owner: boolean }>(
    `select r.rolsuper as superuser, r.rolcreaterole as createrole, r.rolbypassrls as bypassrls,
            pg_catalog.pg_has_role(r.oid, (select n.nspowner from pg_catalog.pg_namespace n where n.nspname = 'pgipam'), 'MEMBER') as owner
       from pg_catalog.pg_roles r where r.rolname = $1`,
    [role],
  );
  const r = rows[0];
  if (!r) return;
  const why = r.superuser
    ? 'is a superuser'
    : r.owner
      ? 'owns the pgipam schema (or is a member of its owner)'
      : r.createrole
        ? 'has CREATEROLE'
        : r.bypassrls
          ? 'has BYPASSRLS'
          : null;
  if (why)
    throw new IpamError(
      'BAD_REQUEST',
      `role ${role} ${why}: row-level security cannot confine it, so it cannot be a platform's role; give the platform a role of its own`,
    );
}

// SCRAM's 4,096 iterations stretch a password a person chose, against guessing from a stolen
// verifier. A 256-bit random password (pgipam db setup makes them) cannot be guessed however
// cheap each try is, so its verifier takes 16 iterations: every action connects with it, and the
// stretching cost each connection about 3.7 ms on both sides (npm run bench).
export const GENERATED_PASSWORD_ITERATIONS = 16;

// What CREATE ROLE ... PASSWORD receives: a SCRAM-SHA-256 verifier computed here, as psql's
// \password does, so the password itself never reaches the server (nor its log, with
// log_statement = ddl, nor an error message).
export function scramVerifier(password: string, iterations = 4096, salt: Buffer = crypto.randomBytes(16)): string {
  const salted = crypto.pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256');
  const hmac = (key: Buffer, text: string) => crypto.createHmac('sha256', key).update(text).digest();
  const storedKey = crypto.createHash('sha256').update(hmac(salted, 'Client Key')).digest();
  const serverKey = hmac(salted, 'Server Key');
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

async function roleExists(db: Db, role: string): Promise<boolean> {
  const { rowCount } = await db.query('select 1 from pg_catalog.pg_roles where rolname = $1', [role]);
  return (rowCount ?? 0) > 0;
}

// Creates the group role if needed and (re)applies its grants; `pgipam migrate` calls it too so
// that tables added by later migrations are covered. Creating runs inside the caller's
// transaction (platform add). Roles belong to the whole cluster, so two databases of one cluster
// (or two platform adds at once) may create the group together; the one that loses finds it made
// and goes on, its transaction intact (a savepoint).
export async function applyDriverGrants(db: Db, create = true): Promise<boolean> {
  if (!(await roleExists(db, DRIVER_GROUP))) {
    if (!create) return false;
    await db.query('savepoint pgipam_driver_group');
    try {
      await db.query(`create role ${DRIVER_GROUP} nologin`);
      await db.query('release savepoint pgipam_driver_group');
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code !== '23505' && code !== '42710') throw e;
      await db.query('rollback to savepoint pgipam_driver_group');
    }
  }
  for (const g of DRIVER_GRANTS) await db.query(g);
  return true;
}

export interface PlatformInfo {
  name: string;
  role: string | null;
  description: string;
  pools: string[];
  ranges: number;
}

export async function addPlatform(
  db: Db,
  name: string,
  o: { role?: string; password?: string; description?: string; generatedPassword?: boolean },
  ctx: ActionContext,
): Promise<PlatformInfo> {
  checkName('platform name', name);
  const role = o.role ?? `pgipam_${name.replace(/[^A-Za-z0-9_]/g, '_').toLowerCase()}`;
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(role))
    throw new IpamError('BAD_REQUEST', `role name "${role}" must be lower-case letters, digits and _`);
  return withTransaction(db, async () => {
    const exists = await db.query('select 1 from pgipam.platform where name = $1', [name]);
    if (exists.rowCount) throw new IpamError('CONFLICT', `platform "${name}" already exists`);
    const taken = await db.query<{ name: string }>('select name from pgipam.platform where role_name = $1', [role]);
    if (taken.rows[0]) throw new IpamError('CONFLICT', `role ${role} already belongs to platform "${taken.rows[0].name}"`);
    await refuseUnconfinedRole(db, role);
    await applyDriverGrants(db);
    const verifier = o.password === undefined ? '' : scramVerifier(o.password, o.generatedPassword ? GENERATED_PASSWORD_ITERATIONS : 4096);
    const password = verifier ? ` password ${escapeLiteral(verifier)}` : '';
    if (!(await roleExists(db, role))) await db.query(`create role ${escapeIdentifier(role)} login${password}`);
    else if (password) await db.query(`alter role ${escapeIdentifier(role)}${password}`);
    await db.query(`grant ${DRIVER_GROUP} to ${escapeIdentifier(role)}`);
    await db.query('insert into pgipam.platform (name, role_name, description) values ($1, $2, $3)', [name, role, o.description ?? '']);
    await recordHistory(db, ctx, { event: 'platform_added', spaceId: null, rangeId: null, detail: { platform: name, role } });
    return { name, role, description: o.description ?? '', pools: [], ranges: 0 };
  }).catch((e) => {
    if ((e as { code?: string }).code === '42501')
      throw new IpamError(
        'PERMISSION_DENIED',
        `creating role ${role} needs CREATEROLE: run this as a role that has it, or create the role yourself and pass --role`,
      );
    throw e;
  });
}

// Removes a platform that holds no ranges: its grants go, its role leaves pgipam_driver (the
// role itself is kept: it may be used elsewhere; DROP ROLE it when it is not).
export async function removePlatform(db: Db, name: string, ctx: ActionContext): Promise<{ role: string | null }> {
  if (name === 'default')
    throw new IpamError('BAD_REQUEST', 'the default platform (front-ends connected as the schema owner) cannot be removed');
  return withTransaction(db, async () => {
    const { rows } = await db.query<{ role_name: string | null; ranges: string }>(
      `select p.role_name, (select count(*) from pgipam.address_range r where r.platform = p.name)::text as ranges from pgipam.platform p where p.name = $1 for update`,
      [name],
    );
    const p = rows[0];
    if (!p) throw new IpamError('NOT_FOUND', `no platform "${name}"`);
    if (p.ranges !== '0')
      throw new IpamError(
        'CONFLICT',
        `platform "${name}" still has ${p.ranges} ranges: unregister them in OpenNebula first (or remove them with "pgipam range rm")`,
      );
    await db.query('delete from pgipam.platform where name = $1', [name]);
    if (p.role_name && (await roleExists(db, p.role_name))) await db.query(`revoke ${DRIVER_GROUP} from ${escapeIdentifier(p.role_name)}`);
    await recordHistory(db, ctx, {
      event: 'platform_removed',
      spaceId: null,
      rangeId: null,
      detail: { platform: name, role: p.role_name },
    });
    return { role: p.role_name };
  });
}

export async function listPlatforms(db: Db): Promise<PlatformInfo[]> {
  const { rows } = await db.query<{ name: string; role_name: string | null; description: string; pools: string[] | null; ranges: string }>(
    `select p.name, p.role_name, p.description,
        (select array_agg(pl.name order by pl.name) from pgipam.pool_grant g join pgipam.pool pl on pl.id = g.pool_id where g.platform = p.name) as pools,
        (select count(*) from pgipam.address_range r where r.platform = p.name)::text as ranges
       from pgipam.platform p order by p.name`,
  );
  return rows.map((r) => ({ name: r.name, role: r.role_name, description: r.description, pools: r.pools ?? [], ranges: Number(r.ranges) }));
}

export async function grantPool(db: Db, platform: string, poolName: string, ctx: ActionContext): Promise<void> {
  await changeGrant(db, platform, poolName, 'grant', ctx);
}

export async function revokePool(db: Db, platform: string, poolName: string, ctx: ActionContext): Promise<void> {
  await changeGrant(db, platform, poolName, 'revoke', ctx);
}

async function changeGrant(db: Db, platform: string, poolName: string, change: 'grant' | 'revoke', ctx: ActionContext): Promise<void> {
  await withTransaction(db, async () => {
    const p = await db.query('select 1 from pgipam.platform where name = $1', [platform]);
    if (!p.rowCount) throw new IpamError('NOT_FOUND', `no platform "${platform}": add it with "pgipam platform add ${platform}"`);
    const pool = await getPool(db, poolName);
    if (!pool) throw new IpamError('NOT_FOUND', `no pool "${poolName}"`);
    if (change === 'grant')
      await db.query('insert into pgipam.pool_grant (pool_id, platform) values ($1, $2) on conflict do nothing', [pool.id, platform]);
    else await db.query('delete from pgipam.pool_grant where pool_id = $1 and platform = $2', [pool.id, platform]);
    await recordHistory(db, ctx, {
      event: change === 'grant' ? 'platform_granted' : 'platform_revoked',
      spaceId: pool.spaceId,
      rangeId: null,
      detail: { platform, pool: poolName, pool_restricted: pool.restricted },
    });
  });
}
