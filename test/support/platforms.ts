// Platforms with login roles of their own, for the tests that connect as a platform's front-end.
// Login roles are cluster-wide: each test file drops the ones it made (dropPlatformRoles).
import crypto from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { addPlatform } from '../../src/admin/platforms';
import type { ActionContext } from '../../src/allocator/context';
import type { TestDb } from './db';

export interface TestPlatform {
  name: string;
  role: string;
  url: string; // the test database, as this platform's role
}

// A platform named `<prefix>-<random>` with a role and password of its own; its role is added to `roles`.
export async function addTestPlatform(t: TestDb, prefix: string, roles: string[], ctx: ActionContext): Promise<TestPlatform> {
  const name = `${prefix}-${crypto.randomBytes(3).toString('hex')}`;
  const password = crypto.randomBytes(12).toString('hex');
  const info = await addPlatform(t.db, name, { password }, ctx);
  roles.push(info.role!);
  const u = new URL(t.url);
  u.username = info.role!;
  u.password = password;
  return { name, role: info.role!, url: u.toString() };
}

export async function dropPlatformRoles(roles: readonly string[]): Promise<void> {
  const admin = new pg.Client({ connectionString: inject('pgAdminUrl') });
  await admin.connect();
  for (const r of roles) await admin.query(`drop role if exists ${pg.escapeIdentifier(r)}`);
  await admin.end();
}
