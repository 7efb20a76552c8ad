// npm run demo: a full lease lifecycle through the real action executables, fed exactly as oned
// feeds them, on an embedded PostgreSQL that this script starts and stops itself.
import pg from 'pg';
import { runActionProcess } from '../support/processes';
import { migrate } from '../../src/db/migrate';
import { parseTemplate } from '../../src/driver/template';
import { silentContext } from '../../src/allocator/context';
import { startEmbeddedPostgres } from '../support/embedded';
import {
  type Attrs,
  EMPTY_ADDRESS,
  actionData,
  addressForIndex,
  addressXml,
  arXmlFormA,
  arXmlFormB,
  storedAr,
  toBase64,
} from '../support/oned-sim';
import { listRanges } from '../../src/admin/range-admin';
import { addPool } from '../../src/admin/pool-admin';
import { reserve } from '../../src/admin/reservations';

let requestId = 0;

async function step(title: string, action: string, xml: string, env: NodeJS.ProcessEnv, expectOk = true) {
  requestId++;
  const r = await runActionProcess(action, toBase64(xml), env, [String(requestId)]);
  const status = r.exitCode === 0 ? 'ok' : `exit ${r.exitCode}`;
  process.stdout.write(`\n== ${title}\n$ echo <base64> | ${action} ${requestId}    -> ${status} (${r.ms} ms)\n`);
  const show = (label: string, text: string) => text && process.stdout.write(text.trimEnd().replace(/^/gm, `   ${label}| `) + '\n');
  show('stdout', r.stdout);
  show('stderr', r.stderr);
  if ((r.exitCode === 0) !== expectOk) throw new Error(`${action} ${expectOk ? 'failed' : 'succeeded'} unexpectedly`);
  return r;
}

async function main() {
  process.stdout.write('starting an embedded PostgreSQL server...\n');
  const server = await startEmbeddedPostgres({ label: 'demo' });
  try {
    const db = new pg.Client({ connectionString: server.url });
    await db.connect();
    const m = await migrate(db);
    process.stdout.write(`PostgreSQL on 127.0.0.1:${server.port}; schema migrated to version ${m.to}\n`);
    const env = { ...process.env, PGIPAM_DATABASE_URL: server.url, PGIPAM_CONFIG: '/dev/null' };

    // 1. onevnet addar: an IPv4 AR whose IPAM_MAD is pgipam
    const request: Attrs = {
      TYPE: 'IP4',
      IP: '10.20.0.1',
      SIZE: '254',
      IPAM_MAD: 'pgipam',
      NETWORK_MASK: '255.255.255.0',
      GATEWAY: '10.20.0.1',
      DNS: '10.20.0.2 10.20.0.3',
      MY_TAG: 'say "hi"',
    };
    const reg = await step(
      'register_address_range (onevnet addar)',
      'register_address_range',
      actionData(arXmlFormA(request), EMPTY_ADDRESS),
      env,
    );
    const ar = storedAr(parseTemplate(reg.stdout).values, 0);

    // 2. three VMs start; one reservation of 4
    const got: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await step(
        `get_address SIZE 1 (VM ${i} starts)`,
        'get_address',
        actionData(arXmlFormB(ar, i), addressXml({ size: 1 })),
        env,
      );
      got.push(parseTemplate(r.stdout).values.IP!);
    }
    await step('get_address SIZE 4 (onevnet reserve -s 4)', 'get_address', actionData(arXmlFormB(ar, 3), addressXml({ size: 4 })), env);

    // 3. a VM asks for a specific address, then a second one asks for the same
    const idx = 99;
    await step(
      'allocate_address 10.20.0.100 (NIC with IP=)',
      'allocate_address',
      actionData(arXmlFormB(ar, 7), addressXml(addressForIndex(ar, idx, 1))),
      env,
    );
    await step(
      'allocate_address 10.20.0.100 again (refused, names the holder)',
      'allocate_address',
      actionData(arXmlFormB(ar, 8), addressXml(addressForIndex(ar, idx, 1))),
      env,
      false,
    );

    // 4. the second VM terminates; its address is the first one handed out again
    const freedIndex = Number(got[1]!.split('.')[3]) - 1;
    await step(
      `free_address ${got[1]} (VM 1 terminates)`,
      'free_address',
      actionData(arXmlFormB(ar, 8), addressXml(addressForIndex(ar, freedIndex, 1))),
      env,
    );
    await step(
      `free_address ${got[1]} again (already free: succeeds)`,
      'free_address',
      actionData(arXmlFormB(ar, 7), addressXml(addressForIndex(ar, freedIndex, 1))),
      env,
    );
    await step(
      'get_address SIZE 1 (first fit reuses the freed address)',
      'get_address',
      actionData(arXmlFormB(ar, 7), addressXml({ size: 1 })),
      env,
    );

    // 5. an IPv6 static range, an explicit IPv6 request, and bad input
    const ar6req: Attrs = { TYPE: 'IP6_STATIC', IP6: '2001:db8:100::10', PREFIX_LENGTH: '64', SIZE: '4096', IPAM_MAD: 'pgipam' };
    const reg6 = await step(
      'register_address_range IP6_STATIC',
      'register_address_range',
      actionData(arXmlFormA(ar6req), EMPTY_ADDRESS),
      env,
    );
    const ar6 = storedAr(parseTemplate(reg6.stdout).values, 1);
    await step(
      'allocate_address IP6 2001:db8:100::20',
      'allocate_address',
      actionData(arXmlFormB(ar6), addressXml(addressForIndex(ar6, 16, 1))),
      env,
    );
    await step(
      'register_address_range overlapping 10.20.0.0/24 (refused)',
      'register_address_range',
      actionData(arXmlFormA({ TYPE: 'IP4', IP: '10.20.0.128', SIZE: '16', IPAM_MAD: 'pgipam' }), EMPTY_ADDRESS),
      env,
      false,
    );
    await step('get_address SIZE 0 (bad input)', 'get_address', actionData(arXmlFormB(ar), addressXml({ size: 0 })), env, false);

    // 6. a pool carves the network when the AR gives only a SIZE
    await addPool(db, 'cloud', { prefixes: ['10.30.0.0/16'], dns: '10.30.0.2', vlanId: 130, isDefault: true }, silentContext);
    process.stdout.write('\n== pgipam pool add cloud --prefix 10.30.0.0/16 --dns 10.30.0.2 --vlan 130 --default\n');
    await reserve(db, '10.30.0.2', 'DNS server', 'default', silentContext);
    process.stdout.write('== pgipam reserve 10.30.0.2 --reason "DNS server"\n');
    const carved = await step(
      'register_address_range with SIZE only (carved from the default pool)',
      'register_address_range',
      actionData(arXmlFormA({ TYPE: 'IP4', SIZE: '100', IPAM_MAD: 'pgipam' }), EMPTY_ADDRESS),
      env,
    );
    const arPool = storedAr(parseTemplate(carved.stdout).values, 2);
    await step(
      'get_address SIZE 1 from the carved range (skips the reserved DNS server)',
      'get_address',
      actionData(arXmlFormB(arPool), addressXml({ size: 1 })),
      env,
    );
    await step(
      'unregister_address_range (the /25 goes back to the pool)',
      'unregister_address_range',
      actionData(arXmlFormB(arPool, 1), EMPTY_ADDRESS),
      env,
    );

    process.stdout.write('\n== pgipam range list\n');
    for (const r of await listRanges(db)) {
      process.stdout.write(
        `   range ${r.range.id} ${r.range.type} ${r.first} - ${r.last}: ${r.used} of ${r.range.size} used ${JSON.stringify(r.byKind)}\n`,
      );
    }

    // 7. onevnet delete: unregister both (form (a) of the stored AR, as oned sends it then)
    await step(
      'unregister_address_range IPv4 AR (onevnet delete)',
      'unregister_address_range',
      actionData(arXmlFormA({ ...ar, ALLOCATED: '' }), EMPTY_ADDRESS),
      env,
    );
    await step(
      'unregister_address_range IPv6 AR (onevnet rmar)',
      'unregister_address_range',
      actionData(arXmlFormB(ar6), EMPTY_ADDRESS),
      env,
    );
    await step(
      'unregister_address_range again (already gone: succeeds)',
      'unregister_address_range',
      actionData(arXmlFormB(ar6), EMPTY_ADDRESS),
      env,
    );
    const { rows } = await db.query<{ event: string; n: string }>(
      'select event, count(*)::text as n from pgipam.history group by event order by event',
    );
    process.stdout.write(`\nhistory: ${rows.map((r) => `${r.event} ${r.n}`).join(', ')}\n`);
    await db.end();
    process.stdout.write('\ndemo finished: every step behaved as OpenNebula expects\n');
  } finally {
    await server.stop();
    process.stdout.write('embedded PostgreSQL stopped and removed\n');
  }
}

main().catch((e) => {
  process.stderr.write(`demo failed: ${(e as Error).message}\n`);
  process.exitCode = 1;
});
