// A connection lost while COMMIT is on its way: the driver asks the server what became of the
// transaction instead of guessing, so a committed lease is reported as given and an aborted one
// as failed. The one-trip path (migration 11) asks by running its call again with the same token:
// a committed first call is reported with its own result, one that died did not commit, and the
// second call does the work; either way the address is given once. Synchronous replication to a standby that does not exist holds COMMIT open after the
// commit record is written, which makes the lost-acknowledgement case reproducible.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config';
import { connect } from '../../src/db/client';
import { migrate } from '../../src/db/migrate';
import { startEmbeddedPostgres, type EmbeddedServer } from '../support/embedded';
import { testContext } from '../support/db';
import { getAddress, getAddressInTransaction } from '../../src/allocator/get-address';
import { registerAddressRange } from '../../src/allocator/index';

let server: EmbeddedServer;
let admin: pg.Client;
const ctx = testContext('fate');

beforeAll(async () => {
  server = await startEmbeddedPostgres({ label: 'fate' });
  admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  await migrate(admin);
  // the embedded server runs with synchronous_commit off; these sessions need it on
  await admin.query('alter database pgipam set synchronous_commit = on');
});
afterAll(async () => {
  await admin?.end().catch(() => {});
  await server?.stop();
});

async function holdCommits(on: boolean) {
  await admin.query(
    on ? `alter system set synchronous_standby_names = 'pgipam_no_such_standby'` : 'alter system reset synchronous_standby_names',
  );
  await admin.query('select pg_reload_conf()');
  await new Promise((r) => setTimeout(r, 200));
}

async function killAction(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const { rows } = await admin.query(
      `select pg_terminate_backend(pid) as t from pg_stat_activity where application_name = 'pgipam/test' and wait_event = 'SyncRep'`,
    );
    if (rows.length) return rows.length;
    await new Promise((r) => setTimeout(r, 100));
  }
  return 0;
}

describe('commit outcome after a lost connection', () => {
  it.each([
    ['one trip', getAddress],
    ['transaction', getAddressInTransaction],
  ] as const)('%s: reports a lease that committed as given, even though the acknowledgement was lost', async (_path, lease) => {
    const { reply: ar } = await registerAddressRange(
      admin,
      { ar: { TYPE: 'IP4', IP: _path === 'one trip' ? '10.0.0.0' : '10.2.0.0', SIZE: '16', IPAM_MAD: 'pgipam' }, address: {} },
      ctx,
    );
    const db = await connect(
      { ...loadConfig({ PGIPAM_DATABASE_URL: server.url, PGIPAM_CONFIG: '/dev/null', PGIPAM_ACTION_TIMEOUT_MS: '8000' }) },
      { applicationName: 'pgipam/test' },
    );
    db.on('error', () => {});
    await holdCommits(true);
    const leasing = lease(db, { ar, address: { SIZE: '1' } }, ctx);
    expect(await killAction()).toBe(1);
    await holdCommits(false);
    const r = await leasing;
    expect(r.ip).toBe(ar.IP);
    const { rows } = await admin.query(`select count(*)::int as n from pgipam.lease where range_id = $1`, [ar.PGIPAM_RANGE_ID]);
    expect(rows[0].n).toBe(1);
    const { rows: h } = await admin.query(`select action_token from pgipam.history where range_id = $1 and event = 'address_leased'`, [
      ar.PGIPAM_RANGE_ID,
    ]);
    expect(h).toHaveLength(1);
    expect(h[0].action_token !== null).toBe(_path === 'one trip');
  });

  it('transaction: reports a transaction that died before its commit record as failed, leaving nothing', async () => {
    const { reply: ar } = await registerAddressRange(
      admin,
      { ar: { TYPE: 'IP4', IP: '10.1.0.0', SIZE: '16', IPAM_MAD: 'pgipam' }, address: {} },
      ctx,
    );
    const db = await connect(
      { ...loadConfig({ PGIPAM_DATABASE_URL: server.url, PGIPAM_CONFIG: '/dev/null' }) },
      { applicationName: 'pgipam/test' },
    );
    db.on('error', () => {});
    // kill the backend while the transaction waits for the range lock, before it can commit
    await admin.query('begin');
    await admin.query('select * from pgipam.address_range where id = $1 for update', [ar.PGIPAM_RANGE_ID]);
    const leasing = getAddressInTransaction(db, { ar, address: { SIZE: '1' } }, ctx).then(
      () => null,
      (e: Error) => e,
    );
    await new Promise((r) => setTimeout(r, 300));
    const other = new pg.Client({ connectionString: server.url });
    await other.connect();
    const { rows: killed } = await other.query(
      `select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'pgipam/test'`,
    );
    expect(killed).toHaveLength(1);
    await other.end();
    await admin.query('rollback');
    expect((await leasing)?.message).toMatch(/lost the connection|terminat/i);
    const { rows } = await admin.query(`select count(*)::int as n from pgipam.lease where range_id = $1`, [ar.PGIPAM_RANGE_ID]);
    expect(rows[0].n).toBe(0);
  });

  it('one trip: a call that died waiting for the range runs again with its token, and the address is given once', async () => {
    const { reply: ar } = await registerAddressRange(
      admin,
      { ar: { TYPE: 'IP4', IP: '10.3.0.0', SIZE: '16', IPAM_MAD: 'pgipam' }, address: {} },
      ctx,
    );
    const db = await connect(
      { ...loadConfig({ PGIPAM_DATABASE_URL: server.url, PGIPAM_CONFIG: '/dev/null', PGIPAM_ACTION_TIMEOUT_MS: '8000' }) },
      { applicationName: 'pgipam/test' },
    );
    db.on('error', () => {});
    await admin.query('begin');
    await admin.query('select * from pgipam.address_range where id = $1 for update', [ar.PGIPAM_RANGE_ID]);
    const leasing = getAddress(db, { ar, address: { SIZE: '1' } }, ctx);
    await new Promise((r) => setTimeout(r, 300));
    const other = new pg.Client({ connectionString: server.url });
    await other.connect();
    const { rows: killed } = await other.query(
      `select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'pgipam/test' and wait_event_type = 'Lock'`,
    );
    expect(killed).toHaveLength(1);
    await other.end();
    // the second call waits for the range as the first did; it gets it now
    await new Promise((r) => setTimeout(r, 300));
    await admin.query('rollback');
    expect((await leasing).ip).toBe('10.3.0.0');
    const { rows } = await admin.query(`select count(*)::int as n from pgipam.lease where range_id = $1`, [ar.PGIPAM_RANGE_ID]);
    expect(rows[0].n).toBe(1);
    const { rows: h } = await admin.query(
      `select count(distinct action_token)::int as n, count(*)::int as rows from pgipam.history
      where range_id = $1 and event = 'address_leased'`,
      [ar.PGIPAM_RANGE_ID],
    );
    expect(h[0]).toEqual({ n: 1, rows: 1 });
  });
});
