// Platforms are OpenNebula front-ends (or groups of HA peers) that share the address space. Each
// may get its own PostgreSQL login role, a member of pgipam_driver; row-level security then keeps
// it to its own ranges and to the pools granted to it.
import type { Db } from '../db/client';
import { withTransaction } from '../db/client';
import { IpamError } from '../errors';
import { checkName } from '../names';
import type { ActionContext } from '../allocator/context';
import { recordHistory } from '../allocator/store';
import { getPool } from '../allocator/pools';

export const DRIVER_GROUP = 'pgipam_driver';

// What the actions need and nothing more: no DDL, no pool changes, history append-only. Pool
// free space and subnets change only through the database functions of migration 4.
export const DRIVER_GRANTS = [
  `grant usage on schema pgipam to ${DRIVER_GROUP}`,
  `grant select on pgipam.space, pgipam.migration, pgipam.platform to ${DRIVER_GROUP}`,
  `grant select, insert, update, delete on pgipam.address_range, pgipam.lease, pgipam.free_extent to ${DRIVER_GROUP}`,
  `grant select on pgipam.pool, pgipam.pool_prefix, pgipam.pool_reservation, pgipam.pool_grant, pgipam.pool_allocation, pgipam.pool_free_block to ${DRIVER_GROUP}`,
  `revoke insert, update, delete on pgipam.pool_free_block, pgipam.pool_allocation from ${DRIVER_GROUP}`,
  `grant select, insert on pgipam.history to ${DRIVER_GROUP}`,
  `grant usage on all sequences in schema pgipam to ${DRIVER_GROUP}`,
  `grant execute on function pgipam.pool_covering(bigint, integer, numeric, numeric), pgipam.pool_check_use(bigint),
     pgipam.pool_take_block(bigint, integer, integer), pgipam.pool_take_span(bigint, integer, numeric, numeric, boolean),
     pgipam.pool_assign(bigint), pgipam.pool_release_range(bigint), pgipam.range_reserve_pool_reservations(bigint, bigint, bigint, text)
     to ${DRIVER_GROUP}`,
];

function quoteIdent(name: string): string {
  return '"' + name.replace(/"/g, '""') + '"';
}

async function roleExists(db: Db, role: string): Promise<boolean> {
  const { rowCount } = await db.query('select 1 from pg_roles where rolname = $1', [role]);
  return (rowCount ?? 0) > 0;
}

// Creates the group role if needed and (re)applies its grants; `pgipam migrate` calls it too so
// that tables added by later migrations are covered.
export async function applyDriverGrants(db: Db, create = true): Promise<boolean> {
  if (!(await roleExists(db, DRIVER_GROUP))) {
    if (!create) return false;
    await db.query(`create role ${DRIVER_GROUP} nologin`);
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

export async function addPlatform(db: Db, name: string, o: { role?: string; password?: string; description?: string }, ctx: ActionContext): Promise<PlatformInfo> {
  checkName('platform name', name);
  const role = o.role ?? `pgipam_${name.replace(/[^A-Za-z0-9_]/g, '_').toLowerCase()}`;
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(role)) throw new IpamError('BAD_REQUEST', `role name "${role}" must be lower-case letters, digits and _`);
  return withTransaction(db, async () => {
    const exists = await db.query('select 1 from pgipam.platform where name = $1', [name]);
    if (exists.rowCount) throw new IpamError('CONFLICT', `platform "${name}" already exists`);
    await applyDriverGrants(db);
    if (!(await roleExists(db, role))) {
      // The password reaches the server as a literal in CREATE ROLE (it cannot be a parameter);
      // it is escaped here and never logged or recorded in the history.
      const password = o.password === undefined ? '' : ` password '${o.password.replace(/'/g, "''")}'`;
      await db.query(`create role ${quoteIdent(role)} login${password}`);
    } else if (o.password !== undefined) {
      await db.query(`alter role ${quoteIdent(role)} password '${o.password.replace(/'/g, "''")}'`);
    }
    await db.query(`grant ${DRIVER_GROUP} to ${quoteIdent(role)}`);
    await db.query('insert into pgipam.platform (name, role_name, description) values ($1, $2, $3)', [name, role, o.description ?? '']);
    await recordHistory(db, ctx, { event: 'platform_added', spaceId: null, rangeId: null, detail: { platform: name, role } });
    return { name, role, description: o.description ?? '', pools: [], ranges: 0 };
  }).catch((e) => {
    if ((e as { code?: string }).code === '42501') throw new IpamError('PERMISSION_DENIED', `creating role ${role} needs CREATEROLE: run this as a role that has it, or create the role yourself and pass --role`);
    throw e;
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

export async function grantPool(db: Db, platform: string, poolName: string, grant: boolean, ctx: ActionContext): Promise<void> {
  await withTransaction(db, async () => {
    const p = await db.query('select 1 from pgipam.platform where name = $1', [platform]);
    if (!p.rowCount) throw new IpamError('NOT_FOUND', `no platform "${platform}": add it with "pgipam platform add ${platform}"`);
    const pool = await getPool(db, poolName);
    if (!pool) throw new IpamError('NOT_FOUND', `no pool "${poolName}"`);
    if (grant) await db.query('insert into pgipam.pool_grant (pool_id, platform) values ($1, $2) on conflict do nothing', [pool.id, platform]);
    else await db.query('delete from pgipam.pool_grant where pool_id = $1 and platform = $2', [pool.id, platform]);
    await recordHistory(db, ctx, { event: grant ? 'platform_granted' : 'platform_revoked', spaceId: pool.spaceId, rangeId: null, detail: { platform, pool: poolName, pool_restricted: pool.restricted } });
  });
}
