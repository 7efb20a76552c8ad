// Operator-side pool management: define, change, remove and show pools.
import type { Db } from '../db/client';
import { listVlanPools } from './vlan-pools';
import { withTransaction } from '../db/client';
import { IpamError } from '../errors';
import { PGIPAM_SET_ATTRIBUTES } from '../ar-attributes';
import { checkName } from '../names';
import { templateValueProblem } from '../template-value';
import { parseCidr4, parseCidr6 } from '../address';
import type { ActionContext } from '../allocator/context';
import { lockPools } from '../allocator/locks';
import { recordHistory } from '../allocator/history';
import { spaceIdByName } from '../allocator/range-queries';
import {
  type Block,
  type Family,
  type PoolRow,
  blockSize,
  describeBlock,
  formatAddress,
  getPool,
  listPoolRows,
  assignSubnets,
  returnBlock,
  takeSpan,
} from '../allocator/pool-space';

export interface PoolOptions {
  space?: string;
  prefixes?: string[];
  gateway?: string;
  dns?: string;
  searchDomain?: string;
  mtu?: number | null;
  vlanId?: number | null;
  // the VLAN pool carved networks take VLAN_ID from ("none" on set: no VLAN pool); replaces vlanId
  vlanPool?: string;
  holdSeconds?: number;
  isDefault?: boolean;
  restricted?: boolean;
  extra?: Record<string, string>;
  description?: string;
}

export function parsePrefix(text: string): Block {
  if (text.includes(':')) {
    const c = parseCidr6(text, 'prefix');
    if (c.network !== parseCidr6(text.split('/')[0] + '/128', 'prefix').network)
      throw new IpamError('BAD_REQUEST', `prefix ${text} has host bits set; did you mean ${formatAddress(6, c.network)}/${c.prefix}?`);
    return { family: 6, network: c.network, prefixLength: c.prefix };
  }
  const c = parseCidr4(text, 'prefix');
  if (BigInt(c.network) !== BigInt(parseCidr4(text.split('/')[0] + '/32', 'prefix').network))
    throw new IpamError(
      'BAD_REQUEST',
      `prefix ${text} has host bits set; did you mean ${formatAddress(4, BigInt(c.network))}/${c.prefix}?`,
    );
  return { family: 4, network: BigInt(c.network), prefixLength: c.prefix };
}

function validateOptions(o: PoolOptions): void {
  if (o.gateway !== undefined && !/^(first|last|none|[0-9]{1,9})$/.test(o.gateway))
    throw new IpamError('BAD_REQUEST', `gateway must be first, last, none or a host offset, got "${o.gateway}"`);
  if (o.gateway !== undefined && /^[0-9]+$/.test(o.gateway) && Number(o.gateway) < 1)
    throw new IpamError('BAD_REQUEST', 'gateway offset 0 is the network address: give an offset of 1 or more (or first, last, none)');
  for (const k of Object.keys(o.extra ?? {})) {
    if (!/^[A-Z_][A-Z0-9_]{0,63}$/.test(k))
      throw new IpamError('BAD_REQUEST', `attribute name ${k} must be upper-case letters, digits and _`);
    if (PGIPAM_SET_ATTRIBUTES.has(k)) throw new IpamError('BAD_REQUEST', `attribute ${k} is set by pgipam itself`);
  }
  for (const [k, v] of Object.entries({ dns: o.dns, search_domain: o.searchDomain, description: o.description, ...o.extra })) {
    const problem = v === undefined ? null : templateValueProblem(v);
    if (problem) throw new IpamError('BAD_REQUEST', `${k} ${problem}`);
  }
}

// A pool takes its networks' VLAN IDs from a VLAN pool, or has a fixed VLAN_ID: not both.
async function setVlanPoolOf(db: Db, name: string, o: PoolOptions): Promise<void> {
  if (o.vlanId !== undefined && o.vlanId !== null && o.vlanPool !== 'none')
    throw new IpamError('BAD_REQUEST', 'give --vlan (one VLAN_ID for every network) or --vlan-pool (one each), not both');
  let id: string | null = null;
  if (o.vlanPool !== 'none') {
    const { rows } = await db.query<{ id: string }>('select id::text from pgipam.vlan_pool where name = $1', [o.vlanPool]);
    if (!rows[0]) throw new IpamError('NOT_FOUND', `VLAN pool "${o.vlanPool}" does not exist: see "pgipam vlan-pool list"`);
    id = rows[0].id;
  }
  await db.query(
    'update pgipam.pool set vlan_pool_id = $2::int8, vlan_id = case when $2::int8 is null then vlan_id else null end where name = $1',
    [name, id],
  );
}

export async function addPool(db: Db, name: string, o: PoolOptions, ctx: ActionContext): Promise<PoolRow> {
  checkName('pool name', name);
  validateOptions(o);
  const prefixes = (o.prefixes ?? []).map(parsePrefix);
  return withTransaction(db, async () => {
    const spaceId = await spaceIdByName(db, o.space ?? 'default');
    if (o.isDefault) await db.query('update pgipam.pool set is_default = false where is_default');
    const { rows } = await db.query<{ id: string }>(
      `insert into pgipam.pool (name, space_id, is_default, gateway, dns, search_domain, mtu, vlan_id, hold_seconds, restricted, extra, description)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) on conflict (name) do nothing returning id::text`,
      [
        name,
        spaceId,
        o.isDefault ?? false,
        o.gateway ?? 'first',
        o.dns ?? '',
        o.searchDomain ?? '',
        o.mtu ?? null,
        o.vlanId ?? null,
        o.holdSeconds ?? 0,
        o.restricted ?? false,
        JSON.stringify(o.extra ?? {}),
        o.description ?? '',
      ],
    );
    if (!rows[0]) throw new IpamError('CONFLICT', `pool "${name}" already exists`);
    if (o.vlanPool !== undefined) await setVlanPoolOf(db, name, o);
    const pool = (await getPool(db, name))!;
    for (const p of prefixes) await addPrefix(db, pool, p);
    await checkGatewayFits(db, pool.id, pool.gateway);
    await recordHistory(db, ctx, {
      event: 'pool_created',
      spaceId,
      rangeId: null,
      detail: { pool: name, prefixes: prefixes.map(describeBlock), options: { ...o, prefixes: undefined } },
    });
    return pool;
  });
}

// A gateway at host offset n needs carved subnets of more than n + 1 addresses: refuse an offset
// that no IPv4 prefix of the pool can hold, rather than let every carve fail later.
async function checkGatewayFits(db: Db, poolId: number, gateway: string): Promise<void> {
  if (!/^[0-9]+$/.test(gateway)) return;
  const { rows } = await db.query<{ len: number | null }>(
    'select min(prefix_length)::int as len from pgipam.pool_prefix where pool_id = $1 and family = 4',
    [poolId],
  );
  const len = rows[0]?.len;
  if (len === null || len === undefined) return;
  const maxOffset = 2 ** (32 - len) - 2;
  if (Number(gateway) > maxOffset)
    throw new IpamError(
      'BAD_REQUEST',
      `gateway offset ${gateway} does not fit in any subnet of the pool: its largest IPv4 prefix is a /${len} (offsets 1 to ${maxOffset})`,
    );
}

// Adds a prefix to a pool. Ranges already registered inside it (outside any pool) are adopted:
// their addresses are taken out of the pool's free space.
async function addPrefix(db: Db, pool: PoolRow, p: Block): Promise<void> {
  const last = p.network + blockSize(p.family, p.prefixLength) - 1n;
  try {
    await db.query('savepoint prefix');
    await db.query(
      `insert into pgipam.pool_prefix (pool_id, space_id, family, network, prefix_length, last) values ($1, $2, $3, $4::numeric, $5, $6::numeric)`,
      [pool.id, pool.spaceId, p.family, p.network.toString(), p.prefixLength, last.toString()],
    );
  } catch (e) {
    if ((e as { code?: string }).code !== '23P01') throw e;
    await db.query('rollback to savepoint prefix');
    const { rows } = await db.query<{ name: string; prefix: string }>(
      `select p.name, x.network::text || '/' || x.prefix_length as prefix from pgipam.pool_prefix x join pgipam.pool p on p.id = x.pool_id
        where x.space_id = $1 and x.family = $2 and x.span && numrange($3::numeric, $4::numeric, '[]') limit 1`,
      [pool.spaceId, p.family, p.network.toString(), last.toString()],
    );
    const other = rows[0] ? `prefix of pool "${rows[0].name}"` : 'another pool prefix';
    throw new IpamError('CONFLICT', `${describeBlock(p)} overlaps a ${other} in space ${pool.spaceName}`);
  }
  await lockPools(db, [pool.id]);
  await returnBlock(db, pool.id, p);
  const column = p.family === 4 ? 'ip4' : 'ip6';
  const { rows: ranges } = await db.query<{ id: string; first: string; size: string; pool_id: string | null }>(
    `select id::text, ${column}_first::text as first, size::text, pool_id::text from pgipam.address_range
      where space_id = $1 and ${column}_span && ${p.family === 4 ? 'int8range($2::int8, $3::int8 + 1)' : 'numrange($2::numeric, $3::numeric + 1)'}
      order by ${column}_first`,
    [pool.spaceId, p.network.toString(), last.toString()],
  );
  for (const r of ranges) {
    const first = BigInt(r.first);
    const rLast = first + BigInt(r.size) - 1n;
    if (first < p.network || rLast > last)
      throw new IpamError('CONFLICT', `range ${r.id} straddles the edge of ${describeBlock(p)}; choose a prefix that contains it whole`);
    if (r.pool_id !== null) throw new IpamError('CONFLICT', `range ${r.id} already belongs to another pool`);
    await takeSpan(db, pool, p.family, first, rLast);
    await assignSubnets(db, Number(r.id));
    await db.query('update pgipam.address_range set pool_id = $2 where id = $1', [r.id, pool.id]);
  }
}

export interface PoolChange extends PoolOptions {
  addPrefixes?: string[];
  removePrefixes?: string[];
}

export async function setPool(db: Db, name: string, o: PoolChange, ctx: ActionContext): Promise<PoolRow> {
  validateOptions(o);
  return withTransaction(db, async () => {
    const pool = await getPool(db, name);
    if (!pool) throw new IpamError('NOT_FOUND', `no pool "${name}"`);
    await lockPools(db, [pool.id]);
    if (o.isDefault) await db.query('update pgipam.pool set is_default = false where is_default and id <> $1', [pool.id]);
    await db.query(
      `update pgipam.pool set
         is_default = coalesce($2, is_default), gateway = coalesce($3, gateway), dns = coalesce($4, dns),
         search_domain = coalesce($5, search_domain), mtu = case when $6::boolean then $7 else mtu end,
         vlan_id = case when $8::boolean then $9 else vlan_id end, hold_seconds = coalesce($10, hold_seconds),
         restricted = coalesce($11, restricted), extra = extra || $12::jsonb, description = coalesce($13, description)
       where id = $1`,
      [
        pool.id,
        o.isDefault ?? null,
        o.gateway ?? null,
        o.dns ?? null,
        o.searchDomain ?? null,
        o.mtu !== undefined,
        o.mtu ?? null,
        o.vlanId !== undefined,
        o.vlanId ?? null,
        o.holdSeconds ?? null,
        o.restricted ?? null,
        JSON.stringify(o.extra ?? {}),
        o.description ?? null,
      ],
    );
    if (o.vlanPool !== undefined) await setVlanPoolOf(db, name, o);
    for (const text of o.addPrefixes ?? []) await addPrefix(db, pool, parsePrefix(text));
    for (const text of o.removePrefixes ?? []) {
      const p = parsePrefix(text);
      const { rowCount } = await db.query(
        'select 1 from pgipam.pool_prefix where pool_id = $1 and family = $2 and network = $3::numeric and prefix_length = $4',
        [pool.id, p.family, p.network.toString(), p.prefixLength],
      );
      if (!rowCount) throw new IpamError('NOT_FOUND', `pool "${name}" has no prefix ${describeBlock(p)}`);
      // Only a prefix with nothing carved from it can go: taking all of it out of the free space proves that.
      await takeSpan(db, pool, p.family, p.network, p.network + blockSize(p.family, p.prefixLength) - 1n, { pending: false }).catch((e) => {
        throw new IpamError('CONFLICT', `cannot remove ${describeBlock(p)} from pool "${name}": ${(e as Error).message}`);
      });
      await db.query('delete from pgipam.pool_prefix where pool_id = $1 and family = $2 and network = $3::numeric', [
        pool.id,
        p.family,
        p.network.toString(),
      ]);
      await db.query(
        "delete from pgipam.pool_reservation where pool_id = $1 and family = $2 and span <@ numrange($3::numeric, $4::numeric, '[]')",
        [pool.id, p.family, p.network.toString(), (p.network + blockSize(p.family, p.prefixLength) - 1n).toString()],
      );
    }
    const changed = (await getPool(db, name))!;
    await checkGatewayFits(db, changed.id, changed.gateway);
    await recordHistory(db, ctx, { event: 'pool_changed', spaceId: pool.spaceId, rangeId: null, detail: { pool: name, change: o } });
    return changed;
  });
}

export async function removePool(db: Db, name: string, force: boolean, ctx: ActionContext): Promise<{ detached: number }> {
  return withTransaction(db, async () => {
    const pool = await getPool(db, name);
    if (!pool) throw new IpamError('NOT_FOUND', `no pool "${name}"`);
    await lockPools(db, [pool.id]);
    const { rows } = await db.query<{ n: string }>('select count(*)::text as n from pgipam.address_range where pool_id = $1', [pool.id]);
    const ranges = Number(rows[0]!.n);
    if (ranges > 0 && !force)
      throw new IpamError(
        'CONFLICT',
        `pool "${name}" still has ${ranges} ranges: unregister them in OpenNebula first, or use --force to keep them as ranges outside any pool`,
      );
    await db.query('delete from pgipam.pool_allocation where pool_id = $1', [pool.id]);
    await db.query('update pgipam.address_range set pool_id = null where pool_id = $1', [pool.id]);
    await db.query('delete from pgipam.pool where id = $1', [pool.id]);
    await recordHistory(db, ctx, {
      event: 'pool_removed',
      spaceId: pool.spaceId,
      rangeId: null,
      detail: { pool: name, forced: force, detached_ranges: ranges },
    });
    return { detached: ranges };
  });
}

export interface PrefixUsage {
  prefix: string;
  family: Family;
  size: bigint;
  carved: bigint;
  reserved: bigint;
  free: bigint;
  // the prefix in equal parts, each with what of it is carved or reserved (cli/render.ts draws it)
  cells: PoolCell[];
}

export interface PoolCell {
  size: bigint;
  carved: bigint;
  reserved: bigint;
}

export interface PoolInfo {
  pool: PoolRow;
  prefixes: PrefixUsage[];
  ranges: number;
  grants: string[];
  reservations: Array<{ first: string; last: string; reason: string }>;
  // the VLAN pool's use, when the pool names one
  vlan: { pool: string; domain: string; size: number; used: number; reserved: number; free: number } | null;
}

const MAP_CELLS = 64;

// Utilisation of each prefix, and how it is used in 64 equal parts.
export async function poolInfo(db: Db, pool: PoolRow): Promise<PoolInfo> {
  const { rows: prefixes } = await db.query<{ family: Family; network: string; prefix_length: number; last: string }>(
    'select x.family, x.network::text as network, x.prefix_length, x.last::text as last from pgipam.pool_prefix x where x.pool_id = $1 order by x.family, x.network',
    [pool.id],
  );
  const out: PrefixUsage[] = [];
  for (const p of prefixes) {
    const family = Number(p.family) as Family;
    const first = BigInt(p.network);
    const size = BigInt(p.last) - first + 1n;
    const cells = size < BigInt(MAP_CELLS) ? Number(size) : MAP_CELLS;
    const cellSize = size / BigInt(cells);
    const { rows } = await db.query<{ cell: number; kind: string; n: string }>(
      `with cells as (select c, $2::numeric + c * $3::numeric as lo, $2::numeric + (c + 1) * $3::numeric - 1 as hi from generate_series(0, $4::int - 1) c)
       select c as cell, 'carved' as kind, sum(least(a.last, hi) - greatest(a.network, lo) + 1)::text as n
         from cells join pgipam.pool_allocation a on a.pool_id = $1 and a.family = $5 and a.span && numrange(lo, hi, '[]') group by c
       union all
       select c, 'reserved', sum(least(r.last, hi) - greatest(r.first, lo) + 1)::text
         from cells join pgipam.pool_reservation r on r.pool_id = $1 and r.family = $5 and r.span && numrange(lo, hi, '[]') group by c`,
      [pool.id, first.toString(), cellSize.toString(), cells, family],
    );
    const byCell: PoolCell[] = Array.from({ length: cells }, () => ({ size: cellSize, carved: 0n, reserved: 0n }));
    for (const r of rows) byCell[r.cell]![r.kind === 'carved' ? 'carved' : 'reserved'] = BigInt(r.n);
    const totals = await db.query<{ carved: string; reserved: string; free: string }>(
      `select
         coalesce((select sum(last - network + 1) from pgipam.pool_allocation where pool_id = $1 and family = $2 and span <@ numrange($3::numeric, $4::numeric, '[]')), 0)::text as carved,
         coalesce((select sum(last - first + 1) from pgipam.pool_reservation where pool_id = $1 and family = $2 and span <@ numrange($3::numeric, $4::numeric, '[]')), 0)::text as reserved,
         coalesce((select sum(power(2::numeric, $5::int - prefix_length)) from pgipam.pool_free_block where pool_id = $1 and family = $2 and network between $3::numeric and $4::numeric), 0)::text as free`,
      [pool.id, family, first.toString(), p.last, family === 4 ? 32 : 128],
    );
    const t = totals.rows[0]!;
    out.push({
      prefix: `${formatAddress(family, first)}/${p.prefix_length}`,
      family,
      size,
      carved: BigInt(t.carved),
      reserved: BigInt(t.reserved.split('.')[0]!),
      free: BigInt(t.free.split('.')[0]!),
      cells: byCell,
    });
  }
  const ranges = await db.query<{ n: string }>('select count(*)::text as n from pgipam.address_range where pool_id = $1', [pool.id]);
  const grants = await db.query<{ platform: string }>('select platform from pgipam.pool_grant where pool_id = $1 order by platform', [
    pool.id,
  ]);
  const res = await db.query<{ family: Family; first: string; last: string; reason: string }>(
    'select r.family, r.first::text as first, r.last::text as last, r.reason from pgipam.pool_reservation r where r.pool_id = $1 order by r.family, r.first',
    [pool.id],
  );
  let vlan: PoolInfo['vlan'] = null;
  if (pool.vlanPoolId !== null) {
    const v = (await listVlanPools(db)).find((x) => x.name === pool.vlanPoolName);
    if (v) vlan = { pool: v.name, domain: v.domain, size: v.size, used: v.used, reserved: v.reserved, free: v.free };
  }
  return {
    pool,
    vlan,
    prefixes: out,
    ranges: Number(ranges.rows[0]!.n),
    grants: grants.rows.map((g) => g.platform),
    reservations: res.rows.map((r) => ({
      first: formatAddress(Number(r.family) as Family, BigInt(r.first)),
      last: formatAddress(Number(r.family) as Family, BigInt(r.last)),
      reason: r.reason,
    })),
  };
}

export async function listPools(db: Db): Promise<PoolInfo[]> {
  const out: PoolInfo[] = [];
  for (const p of await listPoolRows(db)) out.push(await poolInfo(db, p));
  return out;
}
