// Checks that the database agrees with itself: what `pgipam check` reports, what the stress run
// and the tests assert. Read-only; safe to run while the driver works (a REPEATABLE READ snapshot).
import type { Db } from '../db/client';
import { missingSchemaObjects } from '../db/migrate';

export interface CheckResult {
  ranges: number;
  pools: number;
  problems: string[];
}

export async function checkDatabase(db: Db): Promise<CheckResult> {
  const problems: string[] = [];
  // A damaged schema first: without its tables nothing below can be checked.
  const missing = await missingSchemaObjects(db);
  if (missing.length)
    return {
      ranges: 0,
      pools: 0,
      problems: [`the pgipam schema is damaged: ${missing.join(', ')} missing; restore the database from a backup`],
    };
  await db.query('begin isolation level repeatable read read only');
  try {
    // Every address of every range is in exactly one lease or one free extent.
    const { rows: tiles } = await db.query<{ id: string; size: string; leased: string; free: string; overlaps: string }>(`
      select r.id::text, r.size::text,
        coalesce((select sum(last_idx - first_idx + 1) from pgipam.lease l where l.range_id = r.id), 0)::text as leased,
        coalesce((select sum(last_idx - first_idx + 1) from pgipam.free_extent f where f.range_id = r.id), 0)::text as free,
        (select count(*) from pgipam.free_extent f join pgipam.lease l on l.range_id = f.range_id
           and int8range(f.first_idx, f.last_idx, '[]') && l.span where f.range_id = r.id)::text as overlaps
      from pgipam.address_range r order by r.id`);
    for (const t of tiles) {
      if (Number(t.leased) + Number(t.free) !== Number(t.size))
        problems.push(`range ${t.id}: ${t.leased} leased + ${t.free} free != size ${t.size}`);
      if (t.overlaps !== '0') problems.push(`range ${t.id}: ${t.overlaps} free extents overlap leases`);
    }
    const { rows: counts } = await db.query<{ what: string; n: string }>(`
      select 'pairs of adjacent free extents not merged' as what, count(*)::text as n from pgipam.free_extent a
          join pgipam.free_extent b on a.range_id = b.range_id and b.first_idx = a.last_idx + 1
      union all select 'leases outside their range', count(*)::text from pgipam.lease l join pgipam.address_range r on r.id = l.range_id where l.last_idx >= r.size
      union all select 'free extents outside their range', count(*)::text from pgipam.free_extent f join pgipam.address_range r on r.id = f.range_id where f.last_idx >= r.size
      union all select 'pool ranges without a subnet', count(*)::text from pgipam.address_range r
          where r.pool_id is not null and not exists (select 1 from pgipam.pool_allocation a where a.range_id = r.id)
      union all select 'pool free blocks overlapping subnets', count(*)::text from pgipam.pool_free_block f join pgipam.pool_allocation a
          on a.pool_id = f.pool_id and a.family = f.family
          and a.span && numrange(f.network, f.network + power(2::numeric, (case f.family when 4 then 32 else 128 end) - f.prefix_length), '[)')
      union all select 'pairs of overlapping pool free blocks', count(*)::text from pgipam.pool_free_block a join pgipam.pool_free_block b
          on a.pool_id = b.pool_id and a.family = b.family and a.network < b.network
          and b.network < a.network + power(2::numeric, (case a.family when 4 then 32 else 128 end) - a.prefix_length)
      union all select 'ranges lying in free space of a pool', count(*)::text from pgipam.address_range r
          join pgipam.pool p on p.space_id = r.space_id join pgipam.pool_free_block f on f.pool_id = p.id
          where (f.family = 4 and r.ip4_first is not null
                  and numrange(r.ip4_first, r.ip4_first + r.size) && numrange(f.network, f.network + power(2::numeric, 32 - f.prefix_length)))
             or (f.family = 6 and r.ip6_first is not null
                  and r.ip6_span && numrange(f.network, f.network + power(2::numeric, 128 - f.prefix_length)))
      union all select 'leases on addresses a pool reserves', count(*)::text from pgipam.pool_reservation x
          join pgipam.address_range r on r.space_id = x.space_id join pgipam.lease l on l.range_id = r.id and l.kind <> 'reservation'
          where (x.family = 4 and r.ip4_first is not null and x.span && numrange(r.ip4_first + l.first_idx, r.ip4_first + l.last_idx, '[]'))
             or (x.family = 6 and r.ip6_first is not null and x.span && numrange(r.ip6_first + l.first_idx, r.ip6_first + l.last_idx, '[]'))
      union all select 'subnets taken from a pool and given to no range', count(*)::text from pgipam.pool_allocation a where a.range_id is null
      union all select 'free VLAN IDs outside their VLAN pool''s spans', count(*)::text from pgipam.vlan_free_extent f join pgipam.vlan_pool v on v.id = f.vlan_pool_id
          where not exists (select 1 from pgipam.vlan_pool_span s where s.vlan_pool_id = f.vlan_pool_id and s.span @> int4range(f.first, f.last, '[]'))
      union all select 'VLAN IDs both free and held', count(*)::text from pgipam.vlan_free_extent f join pgipam.vlan_pool v on v.id = f.vlan_pool_id
          join pgipam.vlan_allocation a on a.domain = v.domain and a.vlan_id between f.first and f.last
      union all select 'pairs of adjacent or overlapping free VLAN extents', count(*)::text from pgipam.vlan_free_extent a join pgipam.vlan_free_extent b
          on a.vlan_pool_id = b.vlan_pool_id and a.first < b.first and b.first <= a.last + 1`);
    for (const c of counts) if (c.n !== '0') problems.push(`${c.n} ${c.what}`);
    // Free blocks and subnets of a pool add up to its prefixes.
    const { rows: pools } = await db.query<{ name: string; total: string; accounted: string }>(`
      select p.name, coalesce((select sum(last - network + 1) from pgipam.pool_prefix x where x.pool_id = p.id), 0)::text as total,
        (coalesce((select sum(power(2::numeric, (case f.family when 4 then 32 else 128 end) - f.prefix_length)) from pgipam.pool_free_block f where f.pool_id = p.id), 0)
         + coalesce((select sum(last - network + 1) from pgipam.pool_allocation a where a.pool_id = p.id), 0))::text as accounted
      from pgipam.pool p order by p.name`);
    for (const p of pools) {
      if (BigInt(p.total) !== BigInt(p.accounted.split('.')[0]!))
        problems.push(`pool ${p.name}: free blocks + subnets = ${p.accounted.split('.')[0]}, prefixes = ${p.total}`);
    }
    // Every ID of a VLAN pool's spans is free or held, once (migration 9).
    const { rows: vlans } = await db.query<{ name: string; total: number; free: number; held: number }>(`
      select v.name, coalesce((select sum(s.last - s.first + 1) from pgipam.vlan_pool_span s where s.vlan_pool_id = v.id), 0)::int as total,
        coalesce((select sum(f.last - f.first + 1) from pgipam.vlan_free_extent f where f.vlan_pool_id = v.id), 0)::int as free,
        (select count(*) from pgipam.vlan_allocation a join pgipam.vlan_pool_span s on s.domain = a.domain and s.span @> a.vlan_id
          where s.vlan_pool_id = v.id)::int as held
      from pgipam.vlan_pool v order by v.name`);
    for (const v of vlans)
      if (v.free + v.held !== v.total) problems.push(`VLAN pool ${v.name}: ${v.free} free + ${v.held} held != ${v.total} IDs in its spans`);
    if (await publicSchemaWritable(db)) problems.push(PUBLIC_SCHEMA_PROBLEM);
    return { ranges: tiles.length, pools: pools.length, problems };
  } finally {
    await db.query('rollback');
  }
}

export const PUBLIC_SCHEMA_PROBLEM =
  'the "public" schema is writable by the driver roles (the default before PostgreSQL 15): pgipam pins its own search_path, but revoke it with REVOKE CREATE ON SCHEMA public FROM PUBLIC';

// Whether pgipam's driver roles (or, before any exists, every role) may create objects in the
// "public" schema: where they can, a planted function is a trap for any session that searches it.
export async function publicSchemaWritable(db: Db): Promise<boolean> {
  const { rows } = await db.query<{ writable: boolean | null }>(`
    select case
      when not exists (select 1 from pg_catalog.pg_namespace where nspname = 'public') then false
      when exists (select 1 from pg_catalog.pg_roles where rolname = 'pgipam_driver') then pg_catalog.has_schema_privilege('pgipam_driver', 'public', 'CREATE')
      else exists (select 1 from pg_catalog.pg_namespace n, pg_catalog.aclexplode(coalesce(n.nspacl, pg_catalog.acldefault('n', n.nspowner))) a
                    where n.nspname = 'public' and a.grantee = 0 and a.privilege_type = 'CREATE')
    end as writable`);
  return rows[0]?.writable === true;
}
