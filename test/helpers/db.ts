// A fresh database per test file, cloned from the migrated template (graphile-worker's approach).
import crypto from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { withDatabase } from '../global-setup';
import type { ActionContext } from '../../src/allocator/context';

export interface TestDb {
  url: string;
  name: string;
  db: pg.Client;
  drop: () => Promise<void>;
}

export async function createTestDatabase(label: string): Promise<TestDb> {
  const adminUrl = inject('pgAdminUrl');
  const name = `t_${label.replace(/[^a-z0-9]/gi, '_').toLowerCase().slice(0, 30)}_${crypto.randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`create database ${name} template ${inject('templateDb')}`);
  await admin.end();
  const url = withDatabase(adminUrl, name);
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  return {
    url,
    name,
    db,
    drop: async () => {
      await db.end().catch(() => {});
      const a = new pg.Client({ connectionString: adminUrl });
      await a.connect();
      await a.query(`drop database if exists ${name} with (force)`);
      await a.end();
    },
  };
}

export async function emptyDatabase(label: string): Promise<TestDb> {
  const adminUrl = inject('pgAdminUrl');
  const name = `e_${label.replace(/[^a-z0-9]/gi, '_').toLowerCase().slice(0, 30)}_${crypto.randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = withDatabase(adminUrl, name);
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  return {
    url, name, db,
    drop: async () => {
      await db.end().catch(() => {});
      const a = new pg.Client({ connectionString: adminUrl });
      await a.connect();
      await a.query(`drop database if exists ${name} with (force)`);
      await a.end();
    },
  };
}

// A fingerprint of every pgipam row: equal before and after means the database did not change.
export async function snapshot(db: pg.Client): Promise<string> {
  const { rows } = await db.query<{ s: string }>(`select concat_ws('|',
      (select md5(coalesce(string_agg(t::text, ',' order by t.id), '')) from pgipam.address_range t),
      (select md5(coalesce(string_agg(t::text, ',' order by t.range_id, t.first_idx), '')) from pgipam.lease t),
      (select md5(coalesce(string_agg(t::text, ',' order by t.range_id, t.first_idx), '')) from pgipam.free_extent t),
      (select md5(coalesce(string_agg(t::text, ',' order by t.id), '')) from pgipam.history t),
      (select md5(coalesce(string_agg(t::text, ',' order by t.id), '')) from pgipam.space t),
      (select md5(coalesce(string_agg(t::text, ',' order by t.pool_id, t.family, t.network), '')) from pgipam.pool_free_block t),
      (select md5(coalesce(string_agg(t::text, ',' order by t.pool_id, t.family, t.network), '')) from pgipam.pool_allocation t),
      (select md5(coalesce(string_agg(t::text, ',' order by t.id), '')) from pgipam.pool_reservation t),
      (select md5(coalesce(string_agg(t::text, ',' order by t.id), '')) from pgipam.pool t)) as s`);
  return rows[0]!.s;
}

export function testContext(requestId = 't'): ActionContext & { lines: string[] } {
  const lines: string[] = [];
  return { requestId, platform: 'default', log: (m) => lines.push(m), lines };
}

// Checks the free-space index against the leases: every address of every range is in exactly one
// lease or one free extent.
export async function checkConsistency(db: pg.Client): Promise<string[]> {
  const { rows } = await db.query<{ id: string; size: string; leased: string; free: string; overlaps: string }>(`
    select r.id::text, r.size::text,
      coalesce((select sum(last_idx - first_idx + 1) from pgipam.lease l where l.range_id = r.id), 0)::text as leased,
      coalesce((select sum(last_idx - first_idx + 1) from pgipam.free_extent f where f.range_id = r.id), 0)::text as free,
      (select count(*) from pgipam.free_extent f join pgipam.lease l on l.range_id = f.range_id
         and int8range(f.first_idx, f.last_idx, '[]') && l.span where f.range_id = r.id)::text as overlaps
    from pgipam.address_range r`);
  const problems: string[] = [];
  for (const r of rows) {
    if (Number(r.leased) + Number(r.free) !== Number(r.size)) problems.push(`range ${r.id}: leased ${r.leased} + free ${r.free} != size ${r.size}`);
    if (r.overlaps !== '0') problems.push(`range ${r.id}: ${r.overlaps} free extents overlap leases`);
  }
  const adj = await db.query<{ n: string }>(`select count(*)::text as n from pgipam.free_extent a join pgipam.free_extent b
    on a.range_id = b.range_id and b.first_idx = a.last_idx + 1`);
  if (adj.rows[0]!.n !== '0') problems.push(`${adj.rows[0]!.n} pairs of adjacent free extents were not merged`);
  return problems;
}
