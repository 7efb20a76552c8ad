// An action behind a PgBouncer in transaction mode with `pooler = transaction` set: it connects
// without first trying the start-up settings PgBouncer refuses, and goes one round trip with its
// own timeouts; with `pooler = none` it refuses to take PgBouncer for a server, with one
// line. Skipped, naming the apt-get install, without pgbouncer.
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerAddressRange } from '../../src/allocator/index';
import { type TestDb, createTestDatabase, testContext } from '../support/db';
import { actionData, addressXml, arXmlFormB, toBase64 } from '../support/oned-sim';
import { PGBOUNCER, type PgBouncer, startPgBouncer } from '../support/pgbouncer';
import { runActionProcess } from '../support/processes';

const available = fs.existsSync(PGBOUNCER);
if (!available) console.log('pooler tests skipped: apt-get install pgbouncer');

describe.runIf(available)('pooler = transaction', () => {
  let t: TestDb;
  let bouncer: PgBouncer;
  let ar: Record<string, string>;
  beforeAll(async () => {
    t = await createTestDatabase('pooler');
    bouncer = await startPgBouncer(t.directUrl);
    ({ reply: ar } = await registerAddressRange(
      t.db,
      { ar: { TYPE: 'IP4', IP: '10.44.0.0', SIZE: '16', IPAM_MAD: 'pgipam' }, address: {} },
      testContext(),
    ));
  });
  afterAll(async () => {
    bouncer?.stop();
    await t?.drop();
  });

  it('goes one round trip with its own timeouts, and pooler = none says what is wrong', async () => {
    const input = toBase64(actionData(arXmlFormB(ar), addressXml({ size: 1 })));
    const env = { PGIPAM_DATABASE_URL: bouncer.url, PGIPAM_DEBUG: '1' };
    const r = await runActionProcess('get_address', input, { ...env, PGIPAM_POOLER: 'transaction' }, ['5']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('IP = "10.44.0.0"');
    // one round trip: the call with its timeouts set in front of it (four settings and the call)
    expect(r.stderr).toMatch(/1 round trips \(5 statements\)/);
    const { rows } = await t.db.query(`select action_token is not null as one_trip from pgipam.history where event = 'address_leased'`);
    expect(rows).toEqual([{ one_trip: true }]);
    const none = await runActionProcess('get_address', input, { ...env, PGIPAM_POOLER: 'none' }, ['6']);
    expect(none.exitCode).toBe(255);
    expect(none.reason).toMatch(/unsupported startup parameter/);
    expect(none.reason.split('\n')).toHaveLength(1);
  });
});
