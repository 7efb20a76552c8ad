import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { migrate } from '../../src/db/migrate';
import { SCHEMA_TABLES, SCHEMA_VERSION, schemaVersion, checkSchemaAndPlatform, missingSchemaObjects } from '../../src/db/schema';
import { checkDatabase } from '../../src/admin/check';
import { actionData, addressXml, arXmlFormB, toBase64 } from '../support/oned-sim';
import { runActionProcess } from '../support/processes';
import { MIGRATIONS } from '../../src/db/migrations.generated';
import { type TestDb, createTestDatabase, emptyDatabase } from '../support/db';
import fs from 'node:fs';
import path from 'node:path';

let t: TestDb;
beforeAll(async () => {
  t = await emptyDatabase('migrate');
});
afterAll(async () => t?.drop());

describe('migrations', () => {
  it('the embedded SQL matches src/db/migrations', () => {
    const dir = path.resolve(__dirname, '../../src/db/migrations');
    const files = fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.sql'))
      .sort();
    expect(MIGRATIONS.map((m) => fs.readFileSync(path.join(dir, files[m.id - 1]!), 'utf8'))).toEqual(MIGRATIONS.map((m) => m.sql));
  });
  it('refuses to run actions before migrate, then migrates once even from many clients at once', async () => {
    await expect(checkSchemaAndPlatform(t.db)).rejects.toThrow(/run "pgipam migrate"/);
    const clients = await Promise.all(
      Array.from({ length: 10 }, async () => {
        const c = new pg.Client({ connectionString: t.url });
        await c.connect();
        return c;
      }),
    );
    const results = await Promise.all(clients.map((c) => migrate(c)));
    await Promise.all(clients.map((c) => c.end()));
    expect(results.filter((r) => r.applied.length > 0)).toHaveLength(1);
    expect(await schemaVersion(t.db)).toBe(SCHEMA_VERSION);
    const again = await migrate(t.db);
    expect(again.applied).toEqual([]);
    await checkSchemaAndPlatform(t.db);
  });
  it('says when the schema is newer than the code', async () => {
    await t.db.query(`insert into pgipam.migration (id, name) values (9999, 'future')`);
    await expect(checkSchemaAndPlatform(t.db)).rejects.toThrow(/newer than this pgipam/);
    await expect(migrate(t.db)).rejects.toThrow(/newer than this pgipam/);
    await t.db.query(`delete from pgipam.migration where id = 9999`);
  });
});

describe('a damaged schema', () => {
  it('knows every table and function of the schema', async () => {
    const d = await createTestDatabase('schema_list');
    try {
      const { rows } = await d.db.query<{ name: string }>(
        `select 'pgipam.' || relname as name from pg_class where relnamespace = 'pgipam'::regnamespace and relkind in ('r', 'p') order by 1`,
      );
      expect(rows.map((r) => r.name)).toEqual([...SCHEMA_TABLES].sort());
      expect(await missingSchemaObjects(d.db)).toEqual([]);
    } finally {
      await d.drop();
    }
  });

  it('says what is missing, to the actions, check and migrate alike, instead of "run pgipam migrate"', async () => {
    const d = await createTestDatabase('damaged');
    try {
      await d.db.query('drop table pgipam.lease cascade');
      const line =
        /^the pgipam schema is damaged: it says version \d+ but pgipam\.lease is missing \(a partial restore, or dropped by hand\); "pgipam migrate" cannot repair that: restore the database from a backup$/;
      await expect(checkSchemaAndPlatform(d.db)).rejects.toThrow(line);
      await expect(migrate(d.db)).rejects.toThrow(line);
      const action = await runActionProcess(
        'get_address',
        toBase64(actionData(arXmlFormB({ TYPE: 'IP4', IP: '10.0.0.1', SIZE: '4', PGIPAM_RANGE_ID: '1' }), addressXml({ size: 1 }))),
        { PGIPAM_DATABASE_URL: d.url },
      );
      expect([action.exitCode, action.reason]).toEqual([255, expect.stringMatching(line)]);
      expect((await checkDatabase(d.db as never)).problems).toEqual([
        'the pgipam schema is damaged: pgipam.lease missing; restore the database from a backup',
      ]);
      await d.db.query('drop table pgipam.platform cascade');
      await expect(checkSchemaAndPlatform(d.db)).rejects.toThrow(
        /damaged: it says version \d+ but pgipam\.lease, pgipam\.platform are missing/,
      );
    } finally {
      await d.drop();
    }
  });
});
