// Checks that the database agrees with itself: what `pgipam check` reports, what the stress run
// and the tests assert. Read-only; safe to run while the driver works (a REPEATABLE READ snapshot).
import type { Db } from '../db/client';

export interface CheckResult {
  ranges: number;
  pools: number;
  problems: string[];
}

export async function checkDatabase(db: Db): Promise<CheckResult> {
  const problems: string[] = [];
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
      if (Number(t.leased) + Number(t.free) !== Number(t.size)) problems.push(`range ${t.id}: ${t.leased} leased + ${t.free} free != size ${t.size}`);
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
          and b.network < a.network + power(2::numeric, (case a.family when 4 then 32 else 128 end) - a.prefix_length)`);
    for (const c of counts) if (c.n !== '0') problems.push(`${c.n} ${c.what}`);
    // Free blocks and subnets of a pool add up to its prefixes.
    const { rows: pools } = await db.query<{ name: string; total: string; accounted: string }>(`
      select p.name, coalesce((select sum(last - network + 1) from pgipam.pool_prefix x where x.pool_id = p.id), 0)::text as total,
        (coalesce((select sum(power(2::numeric, (case f.family when 4 then 32 else 128 end) - f.prefix_length)) from pgipam.pool_free_block f where f.pool_id = p.id), 0)
         + coalesce((select sum(last - network + 1) from pgipam.pool_allocation a where a.pool_id = p.id), 0))::text as accounted
      from pgipam.pool p order by p.name`);
    for (const p of pools) {
      if (BigInt(p.total) !== BigInt(p.accounted.split('.')[0]!)) problems.push(`pool ${p.name}: free blocks + subnets = ${p.accounted.split('.')[0]}, prefixes = ${p.total}`);
    }
    return { ranges: tiles.length, pools: pools.length, problems };
  } finally {
    await db.query('rollback');
  }
}
