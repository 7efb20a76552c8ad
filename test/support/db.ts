// A fresh database per test file, cloned from the migrated template (graphile-worker's approach).
import crypto from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { withDatabase } from '../global-setup';
import type { ActionContext } from '../../src/allocator/context';
import { checkDatabase } from '../../src/admin/check';

export interface TestDb {
  // the database as the code under test reaches it (through PgBouncer when the run asks for it)
  url: string;
  // the database on the server itself
  directUrl: string;
  name: string;
  db: pg.Client;
  drop: () => Promise<void>;
}

// A database of its own for a test file: cloned from the migrated template, or empty.
export async function createTestDatabase(label: string, options: { empty?: boolean } = {}): Promise<TestDb> {
  const adminUrl = inject('pgAdminUrl');
  const name = `${options.empty ? 'e' : 't'}_${label
    .replace(/[^a-z0-9]/gi, '_')
    .toLowerCase()
    .slice(0, 30)}_${crypto.randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(options.empty ? `create database ${name}` : `create database ${name} template ${inject('templateDb')}`);
  await admin.end();
  // the database as the code under test reaches it: through PgBouncer when the run asks for it
  const url = withDatabase(inject('pgClientUrl') ?? adminUrl, name);
  const db = new pg.Client({ connectionString: withDatabase(adminUrl, name) });
  await db.connect();
  return {
    url,
    directUrl: withDatabase(adminUrl, name),
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

export const emptyDatabase = (label: string) => createTestDatabase(label, { empty: true });

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

// Every address of every range in exactly one lease or free extent, pools accounted for.
export async function checkConsistency(db: pg.Client): Promise<string[]> {
  return (await checkDatabase(db)).problems;
}
