// VLAN pools as the operator manages them (issue 12): spans of IDs in a VLAN domain, reserved IDs
// with a reason, the BRIDGE / PHYDEV / VN_MAD templates a carved network gets, grants. Runs as the
// schema owner; the free extents follow every change (the allocator takes from them).
import type { Db } from '../db/client';
import { withTransaction } from '../db/client';
import { IpamError, badRequest } from '../errors';
import type { ActionContext } from '../allocator/context';
import { recordHistory } from '../allocator/history';
import { checkName } from '../names';

export interface VlanPoolOptions {
  domain?: string;
  bridge?: string | null;
  phydev?: string | null;
  vnMad?: string | null;
  restricted?: boolean;
  description?: string;
}

// "100-199,300,400-409" as sorted, merged [first, last] spans; 1..4094 only.
export function parseVlanIds(text: string, what = '--ids'): Array<[number, number]> {
  const spans: Array<[number, number]> = [];
  for (const part of text.split(',').map((p) => p.trim())) {
    const m = /^(\d{1,4})(?:-(\d{1,4}))?$/.exec(part);
    const first = m ? Number(m[1]) : NaN;
    const last = m ? Number(m[2] ?? m[1]) : NaN;
    if (!m || first < 1 || last > 4094 || last < first)
      throw badRequest(`${what} takes VLAN IDs from 1 to 4094 as a list such as 100-199,300, got "${part.slice(0, 20)}"`);
    spans.push([first, last]);
  }
  spans.sort((a, b) => a[0] - b[0]);
  const merged: Array<[number, number]> = [];
  for (const s of spans) {
    const prev = merged[merged.length - 1];
    if (prev && s[0] <= prev[1] + 1) prev[1] = Math.max(prev[1], s[1]);
    else merged.push([s[0], s[1]]);
  }
  return merged;
}

export const formatVlanSpans = (spans: ReadonlyArray<readonly [number, number]>) =>
  spans.map(([f, l]) => (f === l ? String(f) : `${f}-${l}`)).join(',');

const ids = (spans: ReadonlyArray<readonly [number, number]>) =>
  spans.flatMap(([f, l]) => Array.from({ length: l - f + 1 }, (_, i) => f + i));

// Sorted IDs as merged spans.
function toSpans(list: Iterable<number>): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const id of [...new Set(list)].sort((a, b) => a - b)) {
    const prev = out[out.length - 1];
    if (prev && id === prev[1] + 1) prev[1] = id;
    else out.push([id, id]);
  }
  return out;
}

interface VlanPoolRecord {
  id: number;
  name: string;
  domain: string;
}

async function lockVlanPool(db: Db, name: string): Promise<VlanPoolRecord> {
  const { rows } = await db.query<{ id: string; name: string; domain: string }>(
    'select id::text, name, domain from pgipam.vlan_pool where name = $1 for update',
    [name],
  );
  if (!rows[0]) throw new IpamError('NOT_FOUND', `VLAN pool "${name}" does not exist: see "pgipam vlan-pool list"`);
  await db.query('select pgipam.vlan_pool_lock($1::int8)', [rows[0].id]);
  return { id: Number(rows[0].id), name: rows[0].name, domain: rows[0].domain };
}

// The pool's spans and free extents become `spans`, its free IDs those not held in the domain.
async function setSpans(db: Db, pool: VlanPoolRecord, spans: Array<[number, number]>): Promise<void> {
  await db.query('delete from pgipam.vlan_pool_span where vlan_pool_id = $1', [pool.id]);
  await db.query('savepoint spans');
  try {
    for (const [f, l] of spans)
      await db.query('insert into pgipam.vlan_pool_span (vlan_pool_id, domain, first, last) values ($1, $2, $3, $4)', [
        pool.id,
        pool.domain,
        f,
        l,
      ]);
    await db.query('release savepoint spans');
  } catch (e) {
    if ((e as { code?: string }).code !== '23P01') throw e;
    await db.query('rollback to savepoint spans');
    const { rows } = await db.query<{ name: string; first: number; last: number }>(
      `select v.name, s.first, s.last from pgipam.vlan_pool_span s join pgipam.vlan_pool v on v.id = s.vlan_pool_id
        where s.domain = $1 and s.vlan_pool_id <> $2 and s.span && any($3::int4range[]) order by s.first limit 1`,
      [pool.domain, pool.id, spans.map(([f, l]) => `[${f},${l}]`)],
    );
    const o = rows[0];
    throw new IpamError(
      'CONFLICT',
      `VLAN IDs ${o ? formatVlanSpans([[o.first, o.last]]) : ''} of domain ${pool.domain} belong to VLAN pool "${o?.name ?? '?'}" already`,
    );
  }
  // IDs held in the domain (named by an AR outside every pool, reserved) now belong to this pool
  const wanted = ids(spans);
  await db.query(
    'update pgipam.vlan_allocation set vlan_pool_id = $1 where domain = $2 and vlan_id = any($3::int4[]) and vlan_pool_id is null',
    [pool.id, pool.domain, wanted],
  );
  const { rows: held } = await db.query<{ vlan_id: number }>('select vlan_id from pgipam.vlan_allocation where domain = $1', [pool.domain]);
  const taken = new Set(held.map((h) => h.vlan_id));
  await db.query('delete from pgipam.vlan_free_extent where vlan_pool_id = $1', [pool.id]);
  for (const [f, l] of toSpans(wanted.filter((i) => !taken.has(i))))
    await db.query('insert into pgipam.vlan_free_extent (vlan_pool_id, first, last) values ($1, $2, $3)', [pool.id, f, l]);
}

export async function addVlanPool(db: Db, name: string, idsText: string, o: VlanPoolOptions, ctx: ActionContext): Promise<void> {
  checkName('VLAN pool name', name);
  const domain = checkName('--domain', o.domain ?? 'default');
  const spans = parseVlanIds(idsText);
  await withTransaction(db, async () => {
    const { rows } = await db
      .query<{ id: string }>(
        `insert into pgipam.vlan_pool (name, domain, bridge, phydev, vn_mad, restricted, description) values ($1, $2, $3, $4, $5, $6, $7) returning id::text`,
        [name, domain, o.bridge ?? null, o.phydev ?? null, o.vnMad ?? null, o.restricted ?? false, o.description ?? ''],
      )
      .catch((e: { code?: string; constraint?: string }) => {
        if (e.code === '23505') throw new IpamError('CONFLICT', `a VLAN pool "${name}" exists already`);
        throw e;
      });
    const pool = { id: Number(rows[0]!.id), name, domain };
    await db.query('select pgipam.vlan_pool_lock($1::int8)', [pool.id]);
    await setSpans(db, pool, spans);
    await recordHistory(db, ctx, {
      event: 'vlan_pool_created',
      spaceId: null,
      rangeId: null,
      detail: {
        vlan_pool: name,
        domain,
        ids: formatVlanSpans(spans),
        bridge: o.bridge ?? null,
        phydev: o.phydev ?? null,
        vn_mad: o.vnMad ?? null,
      },
    });
  });
}

export interface VlanPoolChange extends VlanPoolOptions {
  addIds?: string;
  removeIds?: string;
}

export async function setVlanPool(db: Db, name: string, o: VlanPoolChange, ctx: ActionContext): Promise<void> {
  if (o.domain !== undefined) throw badRequest('the domain of a VLAN pool cannot change: add a new pool');
  await withTransaction(db, async () => {
    const pool = await lockVlanPool(db, name);
    await db.query(
      `update pgipam.vlan_pool set bridge = case when $2 then $3 else bridge end, phydev = case when $4 then $5 else phydev end,
              vn_mad = case when $6 then $7 else vn_mad end, restricted = coalesce($8, restricted), description = coalesce($9, description)
        where id = $1`,
      [
        pool.id,
        o.bridge !== undefined,
        o.bridge || null,
        o.phydev !== undefined,
        o.phydev || null,
        o.vnMad !== undefined,
        o.vnMad || null,
        o.restricted ?? null,
        o.description ?? null,
      ],
    );
    if (o.addIds !== undefined || o.removeIds !== undefined) {
      const { rows } = await db.query<{ first: number; last: number }>(
        'select first, last from pgipam.vlan_pool_span where vlan_pool_id = $1',
        [pool.id],
      );
      const now = new Set(ids(rows.map((r) => [r.first, r.last] as [number, number])));
      for (const id of o.addIds ? ids(parseVlanIds(o.addIds, '--add-ids')) : []) now.add(id);
      const removed = o.removeIds ? ids(parseVlanIds(o.removeIds, '--remove-ids')) : [];
      if (removed.length) {
        const { rows: held } = await db.query<{ vlan_id: number; range_id: string | null; reason: string | null }>(
          'select vlan_id, range_id::text, reason from pgipam.vlan_allocation where vlan_pool_id = $1 and vlan_id = any($2::int4[]) order by vlan_id limit 1',
          [pool.id, removed],
        );
        const h = held[0];
        if (h)
          throw new IpamError(
            'CONFLICT',
            `VLAN ID ${h.vlan_id} is held (${h.range_id ? `by range ${h.range_id}` : `reserved: ${h.reason}`}): it cannot leave the pool`,
          );
      }
      for (const id of removed) now.delete(id);
      if (!now.size) throw badRequest(`VLAN pool "${name}" would have no IDs left: remove the pool instead`);
      await setSpans(db, pool, toSpans(now));
    }
    await recordHistory(db, ctx, { event: 'vlan_pool_changed', spaceId: null, rangeId: null, detail: { vlan_pool: name, ...o } });
  });
}

export async function removeVlanPool(db: Db, name: string, ctx: ActionContext): Promise<void> {
  await withTransaction(db, async () => {
    const pool = await lockVlanPool(db, name);
    const users = await db.query<{ name: string }>('select name from pgipam.pool where vlan_pool_id = $1 order by name', [pool.id]);
    if (users.rows.length)
      throw new IpamError(
        'CONFLICT',
        `VLAN pool "${name}" is used by address pool ${users.rows.map((r) => `"${r.name}"`).join(', ')}: "pgipam pool set <name> --vlan-pool none" first`,
      );
    const held = await db.query<{ n: number }>(
      'select count(*)::int as n from pgipam.vlan_allocation where vlan_pool_id = $1 and range_id is not null',
      [pool.id],
    );
    if (held.rows[0]!.n) throw new IpamError('CONFLICT', `VLAN pool "${name}" still has ${held.rows[0]!.n} VLAN IDs held by ranges`);
    await db.query('delete from pgipam.vlan_allocation where vlan_pool_id = $1', [pool.id]);
    await db.query('delete from pgipam.vlan_pool where id = $1', [pool.id]);
    await recordHistory(db, ctx, {
      event: 'vlan_pool_removed',
      spaceId: null,
      rangeId: null,
      detail: { vlan_pool: name, domain: pool.domain },
    });
  });
}

export async function reserveVlans(db: Db, name: string, idsText: string, reason: string, ctx: ActionContext): Promise<number[]> {
  if (!reason.trim()) throw badRequest('--reason says why the VLAN IDs are kept out');
  return withTransaction(db, async () => {
    const pool = await lockVlanPool(db, name);
    const wanted = ids(parseVlanIds(idsText, 'the VLAN IDs'));
    for (const id of wanted) {
      const { rows } = await db.query<{ ok: boolean }>('select pgipam.vlan_take_free($1::int8, $2::int4) as ok', [pool.id, id]);
      if (!rows[0]!.ok) {
        const h = await db.query<{ range_id: string | null; reason: string | null }>(
          'select range_id::text, reason from pgipam.vlan_allocation where domain = $1 and vlan_id = $2',
          [pool.domain, id],
        );
        const holder = h.rows[0];
        throw new IpamError(
          holder ? 'ADDRESS_IN_USE' : 'BAD_REQUEST',
          holder
            ? `VLAN ID ${id} of domain ${pool.domain} is held already (${holder.range_id ? `by range ${holder.range_id}` : `reserved: ${holder.reason}`})`
            : `VLAN ID ${id} is not an ID of VLAN pool "${name}"`,
        );
      }
      await db.query(
        `insert into pgipam.vlan_allocation (domain, vlan_id, vlan_pool_id, reason, platform) values ($1, $2, $3, $4, 'default')`,
        [pool.domain, id, pool.id, reason],
      );
    }
    await recordHistory(db, ctx, {
      event: 'vlan_reserved',
      spaceId: null,
      rangeId: null,
      detail: { vlan_pool: name, domain: pool.domain, ids: formatVlanSpans(toSpans(wanted)), reason },
    });
    return wanted;
  });
}

export async function unreserveVlans(db: Db, name: string, idsText: string, ctx: ActionContext): Promise<number> {
  return withTransaction(db, async () => {
    const pool = await lockVlanPool(db, name);
    const wanted = ids(parseVlanIds(idsText, 'the VLAN IDs'));
    const { rows } = await db.query<{ vlan_id: number }>(
      'delete from pgipam.vlan_allocation where vlan_pool_id = $1 and range_id is null and vlan_id = any($2::int4[]) returning vlan_id',
      [pool.id, wanted],
    );
    for (const r of rows) await db.query('select pgipam.vlan_give_free($1::int8, $2::int4)', [pool.id, r.vlan_id]);
    if (rows.length)
      await recordHistory(db, ctx, {
        event: 'vlan_unreserved',
        spaceId: null,
        rangeId: null,
        detail: { vlan_pool: name, domain: pool.domain, ids: formatVlanSpans(toSpans(rows.map((r) => r.vlan_id))) },
      });
    return rows.length;
  });
}

export async function grantVlanPool(db: Db, name: string, platform: string, grant: boolean): Promise<void> {
  await withTransaction(db, async () => {
    const pool = await lockVlanPool(db, name);
    const p = await db.query('select 1 from pgipam.platform where name = $1', [platform]);
    if (!p.rows.length) throw new IpamError('NOT_FOUND', `platform "${platform}" does not exist: see "pgipam platform list"`);
    if (grant)
      await db.query('insert into pgipam.vlan_pool_grant (vlan_pool_id, platform) values ($1, $2) on conflict do nothing', [
        pool.id,
        platform,
      ]);
    else await db.query('delete from pgipam.vlan_pool_grant where vlan_pool_id = $1 and platform = $2', [pool.id, platform]);
  });
}

export interface VlanPoolInfo {
  name: string;
  domain: string;
  ids: string;
  size: number;
  used: number;
  reserved: number;
  free: number;
  bridge: string | null;
  phydev: string | null;
  vnMad: string | null;
  restricted: boolean;
  grants: string[];
  addressPools: string[];
  description: string;
}

const INFO_SQL = `select v.name, v.domain, v.bridge, v.phydev, v.vn_mad, v.restricted, v.description,
    coalesce((select string_agg(case when s.first = s.last then s.first::text else s.first || '-' || s.last end, ',' order by s.first) from pgipam.vlan_pool_span s where s.vlan_pool_id = v.id), '') as ids,
    coalesce((select sum(s.last - s.first + 1) from pgipam.vlan_pool_span s where s.vlan_pool_id = v.id), 0)::int as size,
    (select count(*) from pgipam.vlan_allocation a where a.vlan_pool_id = v.id and a.range_id is not null)::int as used,
    (select count(*) from pgipam.vlan_allocation a where a.vlan_pool_id = v.id and a.range_id is null)::int as reserved,
    coalesce((select sum(f.last - f.first + 1) from pgipam.vlan_free_extent f where f.vlan_pool_id = v.id), 0)::int as free,
    coalesce((select array_agg(g.platform order by g.platform) from pgipam.vlan_pool_grant g where g.vlan_pool_id = v.id), '{}') as grants,
    coalesce((select array_agg(p.name order by p.name) from pgipam.pool p where p.vlan_pool_id = v.id), '{}') as pools
  from pgipam.vlan_pool v`;

type InfoRow = Omit<VlanPoolInfo, 'vnMad' | 'addressPools'> & { vn_mad: string | null; pools: string[] };
const toInfo = ({ vn_mad, pools, ...r }: InfoRow): VlanPoolInfo => ({ ...r, vnMad: vn_mad, addressPools: pools });

export async function listVlanPools(db: Db): Promise<VlanPoolInfo[]> {
  const { rows } = await db.query<InfoRow>(`${INFO_SQL} order by v.domain, v.name`);
  return rows.map(toInfo);
}

export interface VlanHolder {
  domain: string;
  vlanId: number;
  vlanPool: string | null;
  rangeId: number | null;
  platform: string;
  reason: string | null;
  since: Date;
  // the network holding it: its first address and the oned network, when known
  first: string | null;
}

export async function showVlanPool(db: Db, name: string): Promise<VlanPoolInfo & { held: VlanHolder[] }> {
  const { rows } = await db.query<InfoRow>(`${INFO_SQL} where v.name = $1`, [name]);
  if (!rows[0]) throw new IpamError('NOT_FOUND', `VLAN pool "${name}" does not exist: see "pgipam vlan-pool list"`);
  return { ...toInfo(rows[0]), held: await vlanHolders(db, { pool: name }) };
}

// Who holds a VLAN ID (in every domain), or every ID of a pool.
export async function vlanHolders(db: Db, q: { vlanId?: number; pool?: string }): Promise<VlanHolder[]> {
  const { rows } = await db.query<{
    domain: string;
    vlan_id: number;
    pool: string | null;
    range_id: string | null;
    platform: string;
    reason: string | null;
    created_at: Date;
    first: string | null;
  }>(
    `select a.domain, a.vlan_id, v.name as pool, a.range_id::text, a.platform, a.reason, a.created_at,
            coalesce(r.attrs->>'IP', r.attrs->>'IP6', r.attrs->>'MAC') as first
       from pgipam.vlan_allocation a left join pgipam.vlan_pool v on v.id = a.vlan_pool_id left join pgipam.address_range r on r.id = a.range_id
      where ($1::int4 is null or a.vlan_id = $1) and ($2::text is null or v.name = $2)
      order by a.domain, a.vlan_id`,
    [q.vlanId ?? null, q.pool ?? null],
  );
  return rows.map((r) => ({
    domain: r.domain,
    vlanId: r.vlan_id,
    vlanPool: r.pool,
    rangeId: r.range_id === null ? null : Number(r.range_id),
    platform: r.platform,
    reason: r.reason,
    since: r.created_at,
    first: r.first,
  }));
}
