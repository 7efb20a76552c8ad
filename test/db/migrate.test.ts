import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { migrate, SCHEMA_VERSION, schemaVersion, checkSchemaAndPlatform } from '../../src/db/migrate';
import { MIGRATIONS } from '../../src/db/migrations.generated';
import { type TestDb, emptyDatabase } from '../support/db';
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
