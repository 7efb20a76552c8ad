// Issue 10: connections as libpq makes them. Several hosts and target_session_attrs against real
// servers this test starts (a read-only one beside the test server), TLS against a server with a
// throw-away CA made with openssl, and the lines an operator gets when any of it is wrong.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseConnectionUrl } from '../../src/connection-target';
import { parseTemplate } from '../../src/driver/template';
import { type TestDb, createTestDatabase } from '../support/db';
import { type EmbeddedServer, freePort, startEmbeddedPostgres } from '../support/embedded';
import { EMPTY_ADDRESS, actionData, addressXml, arXmlFormA, arXmlFormB, storedAr, toBase64 } from '../support/oned-sim';
import { runActionProcess, runCliProcess } from '../support/processes';

describe('database URLs as libpq reads them', () => {
  it('takes several hosts, IPv6 in brackets, target_session_attrs and sslmode', () => {
    expect(
      parseConnectionUrl(
        'postgres://u:p%40ss@h1:5433,[::1]:5434,h3/db?target_session_attrs=read-write&sslmode=verify-full&sslrootcert=/ca.crt',
        'X',
      ),
    ).toEqual({
      hosts: [
        { host: 'h1', port: 5433 },
        { host: '::1', port: 5434 },
        { host: 'h3', port: 5432 },
      ],
      user: 'u',
      password: 'p@ss',
      database: 'db',
      sessionAttrs: 'read-write',
      sslMode: 'verify-full',
      sslRootCert: '/ca.crt',
      sslCert: undefined,
      sslKey: undefined,
    });
    expect(parseConnectionUrl('postgresql:///pgipam?host=/var/run/postgresql', 'X').hosts).toEqual([
      { host: '/var/run/postgresql', port: 5432 },
    ]);
  });

  it.each([
    ['postgres://u@h1:x/db', /^the database URL from PGIPAM_DATABASE_URL has a port that is not a number from 1 to 65535: "h1:x"$/],
    ['postgres://u@[::1/db', /^the database URL from PGIPAM_DATABASE_URL has a host that is not host\[:port\] or \[IPv6\]:port: "\[::1"$/],
    [
      'postgres://u@h1/db?sslmode=strict',
      /^the database URL from PGIPAM_DATABASE_URL has sslmode=strict: expected one of disable, allow, prefer, require, verify-ca, verify-full$/,
    ],
    ['postgres://u@h1/db?target_session_attrs=master', /has target_session_attrs=master: expected one of any, read-write/],
  ])('refuses %s with a line that names the setting', async (url, re) => {
    const r = await runCliProcess(['status'], { PGIPAM_DATABASE_URL: url });
    expect(r.code).toBe(1);
    expect(r.stderr.replace(/^pgipam: /, '').trim()).toMatch(re);
  });
});

describe('several hosts', () => {
  let readOnly: EmbeddedServer;
  let t: TestDb;
  let admin: URL;
  let ar: Record<string, string>;
  beforeAll(async () => {
    admin = new URL(inject('pgAdminUrl'));
    t = await createTestDatabase('hosts');
    // a second server with the same password and database that accepts connections but no writes
    readOnly = await startEmbeddedPostgres({ label: 'readonly', password: decodeURIComponent(admin.password) });
    const c = new pg.Client({ connectionString: readOnly.url });
    await c.connect();
    await c.query(`create database ${t.name}`);
    await c.query('alter system set default_transaction_read_only = on');
    await c.query('select pg_reload_conf()');
    await c.end();
    const reg = await runActionProcess(
      'register_address_range',
      toBase64(actionData(arXmlFormA({ IPAM_MAD: 'pgipam', TYPE: 'IP4', IP: '10.170.0.0', SIZE: '64' }), EMPTY_ADDRESS)),
      { PGIPAM_DATABASE_URL: t.url },
    );
    ar = storedAr(parseTemplate(reg.stdout).values, 0);
  });
  afterAll(async () => {
    await readOnly?.stop();
    await t?.drop();
  });

  const url = (ports: number[], attrs?: string) =>
    `postgres://postgres:${admin.password}@${ports.map((p) => `127.0.0.1:${p}`).join(',')}/${t.name}${attrs ? `?target_session_attrs=${attrs}` : ''}`;
  const lease = (databaseUrl: string) =>
    runActionProcess('get_address', toBase64(actionData(arXmlFormB(ar), addressXml({ size: 1 }))), {
      PGIPAM_DATABASE_URL: databaseUrl,
      PGIPAM_CONNECT_TIMEOUT_MS: '3000',
    });

  it('skips a dead host and a read-only one for target_session_attrs=read-write, and leases from the next', async () => {
    const dead = await freePort();
    const r = await lease(url([dead, readOnly.port, Number(admin.port)], 'read-write'));
    expect([r.exitCode, r.reason]).toEqual([0, '']);
    expect(parseTemplate(r.stdout).values.IP).toMatch(/^10\.170\.0\./);
  });

  it('names every host tried and why it was skipped, never the password', async () => {
    const dead = await freePort();
    const r = await lease(url([dead, readOnly.port], 'read-write'));
    expect(r.exitCode).toBe(255);
    expect(r.reason).toMatch(
      new RegExp(
        `^no usable PostgreSQL \\(target_session_attrs=read-write, from PGIPAM_DATABASE_URL\\): 127\\.0\\.0\\.1:${dead}: cannot reach PostgreSQL: connection refused; 127\\.0\\.0\\.1:${readOnly.port}: skipped, read-only \\(default_transaction_read_only = on\\)$`,
      ),
    );
    expect(r.stderr).not.toContain(decodeURIComponent(admin.password));
  });

  it('with target_session_attrs=any takes the first host that answers', async () => {
    const r = await lease(url([await freePort(), Number(admin.port)]));
    expect([r.exitCode, r.reason]).toEqual([0, '']);
  });

  it('an action that meets a read-only server (a demoted primary) says so in one line, changing nothing', async () => {
    const d = await createTestDatabase('demoted');
    try {
      const reg = await runActionProcess(
        'register_address_range',
        toBase64(actionData(arXmlFormA({ IPAM_MAD: 'pgipam', TYPE: 'IP4', IP: '10.171.0.0', SIZE: '8' }), EMPTY_ADDRESS)),
        { PGIPAM_DATABASE_URL: d.url },
      );
      const a = storedAr(parseTemplate(reg.stdout).values, 0);
      await d.db.query(`alter database ${d.name} set default_transaction_read_only = on`);
      const r = await runActionProcess('allocate_address', toBase64(actionData(arXmlFormB(a), addressXml({ ip: '10.171.0.3', size: 1 }))), {
        PGIPAM_DATABASE_URL: d.url,
      });
      expect(r.exitCode).toBe(255);
      expect(r.reason).toMatch(
        /^PostgreSQL at 127\.0\.0\.1:\d+\/\S+ \(from PGIPAM_DATABASE_URL\) is read-only \(a standby, or a primary demoted under this action\); nothing was changed: list every server in the database URL with target_session_attrs=read-write so that pgipam finds the primary$/,
      );
      const { rows } = await d.db.query(`select count(*)::int as n from pgipam.lease where kind = 'allocation'`);
      expect(rows[0].n).toBe(0);
    } finally {
      await d.drop();
    }
  });
});

// A CA, and a server certificate it signs for localhost and 127.0.0.1 (not 127.0.0.2).
function makeCertificates(dir: string): { ca: string; otherCa: string; cert: string; key: string } {
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-subj',
    '/CN=pgipam test CA',
    '-days',
    '2',
  ]);
  run([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'other.key',
    '-out',
    'other.crt',
    '-subj',
    '/CN=another CA',
    '-days',
    '2',
  ]);
  run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost']);
  fs.writeFileSync(path.join(dir, 'san.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  run([
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.crt',
    '-days',
    '2',
    '-extfile',
    'san.ext',
  ]);
  return {
    ca: path.join(dir, 'ca.crt'),
    otherCa: path.join(dir, 'other.crt'),
    cert: path.join(dir, 'server.crt'),
    key: path.join(dir, 'server.key'),
  };
}

describe('TLS as libpq means it', () => {
  let server: EmbeddedServer;
  let certs: ReturnType<typeof makeCertificates>;
  let dir: string;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgipam-tls-'));
    certs = makeCertificates(dir);
    server = await startEmbeddedPostgres({
      label: 'tls',
      flags: [
        '-c',
        'ssl=on',
        '-c',
        'ssl_cert_file=server.crt',
        '-c',
        'ssl_key_file=server.key',
        '-c',
        'listen_addresses=127.0.0.1,127.0.0.2',
      ],
      // the server reads its key as the user it runs as, and only when nobody else may
      prepare: (dataDir) => {
        const owner = fs.statSync(dataDir);
        for (const f of ['server.crt', 'server.key']) {
          fs.copyFileSync(path.join(dir, f), path.join(dataDir, f));
          fs.chmodSync(path.join(dataDir, f), 0o600);
          fs.chownSync(path.join(dataDir, f), owner.uid, owner.gid);
        }
      },
    });
    const m = await runCliProcess(['migrate'], { PGIPAM_DATABASE_URL: server.url });
    expect(m.code).toBe(0);
  });
  afterAll(async () => {
    await server?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const withParams = (host: string, params: string) => {
    const u = new URL(server.url);
    u.hostname = host;
    return `${u.toString()}?${params}`;
  };
  // the CLI reports the connection's encryption through doctor's tls check; status proves it connected
  const tryUrl = async (url: string) => {
    const status = await runCliProcess(['status'], { PGIPAM_DATABASE_URL: url });
    const doctor = await runCliProcess(['doctor', '--json', '--remotes', dir], { PGIPAM_DATABASE_URL: url });
    const tls =
      doctor.code === 0 || doctor.stdout.startsWith('[')
        ? (JSON.parse(doctor.stdout) as Array<{ check: string; detail: string }>).find((c) => c.check === 'tls')
        : undefined;
    return { status, tls: tls?.detail };
  };

  it('sslmode=require encrypts without a CA, with no warning on stderr', async () => {
    const r = await tryUrl(withParams('127.0.0.1', 'sslmode=require'));
    expect([r.status.code, r.status.stderr]).toEqual([0, '']);
    expect(r.tls).toBe('the connection is encrypted');
  });

  it('sslmode=verify-full with the CA works for a name the certificate holds', async () => {
    for (const host of ['localhost', '127.0.0.1']) {
      const r = await tryUrl(withParams(host, `sslmode=verify-full&sslrootcert=${certs.ca}`));
      expect([host, r.status.code, r.status.stderr]).toEqual([host, 0, '']);
      expect(r.tls).toBe('the connection is encrypted');
    }
  });

  it('sslmode=verify-full with another CA, or a host name the certificate does not hold, is refused with one line', async () => {
    const other = await runCliProcess(['status'], {
      PGIPAM_DATABASE_URL: withParams('127.0.0.1', `sslmode=verify-full&sslrootcert=${certs.otherCa}`),
    });
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(
      /^pgipam: the TLS certificate of PostgreSQL at 127\.0\.0\.1:\d+\/pgipam \(from PGIPAM_DATABASE_URL\) is not trusted \([A-Z_]+\): sslrootcert must be the CA that signed it\n$/,
    );
    const name = await runCliProcess(['status'], {
      PGIPAM_DATABASE_URL: withParams('127.0.0.2', `sslmode=verify-full&sslrootcert=${certs.ca}`),
    });
    expect(name.code).toBe(1);
    expect(name.stderr).toMatch(
      /^pgipam: the TLS certificate of PostgreSQL at 127\.0\.0\.2:\d+\/pgipam \(from PGIPAM_DATABASE_URL\) is not trusted \(ERR_TLS_CERT_ALTNAME_INVALID\): sslrootcert must be the CA that signed it; the host name in the URL must be one the certificate names \(sslmode=verify-full checks it\)\n$/,
    );
    // verify-ca checks the CA only
    const ca = await runCliProcess(['status'], {
      PGIPAM_DATABASE_URL: withParams('127.0.0.2', `sslmode=verify-ca&sslrootcert=${certs.ca}`),
    });
    expect([ca.code, ca.stderr]).toEqual([0, '']);
    const noCa = await runCliProcess(['status'], { PGIPAM_DATABASE_URL: withParams('127.0.0.1', 'sslmode=verify-full'), HOME: dir });
    expect(noCa.stderr).toMatch(/^pgipam: sslmode=verify-full needs the CA that signed the server's certificate: add sslrootcert=/);
  });

  it('against a server without TLS: require is refused saying what to change, prefer falls back; an action prints one line and no Node warning', async () => {
    const plain = new URL(inject('pgAdminUrl'));
    plain.search = 'sslmode=require';
    const t = await createTestDatabase('plain_tls');
    try {
      plain.pathname = `/${t.name}`;
      const r = await runActionProcess(
        'register_address_range',
        toBase64(actionData(arXmlFormA({ IPAM_MAD: 'pgipam', TYPE: 'IP4', IP: '10.172.0.0', SIZE: '8' }), EMPTY_ADDRESS)),
        { PGIPAM_DATABASE_URL: plain.toString() },
      );
      expect(r.exitCode).toBe(255);
      expect(r.stderr).toMatch(
        /^PostgreSQL at 127\.0\.0\.1:\d+\/\S+ \(from PGIPAM_DATABASE_URL\) does not accept TLS, but sslmode=require asks for it: turn ssl on in the server, or set sslmode=prefer \(or disable\) in the database URL\n$/,
      );
      plain.search = 'sslmode=prefer';
      const p = await runActionProcess(
        'register_address_range',
        toBase64(actionData(arXmlFormA({ IPAM_MAD: 'pgipam', TYPE: 'IP4', IP: '10.172.0.0', SIZE: '8' }), EMPTY_ADDRESS)),
        { PGIPAM_DATABASE_URL: plain.toString() },
      );
      expect([p.exitCode, p.reason]).toEqual([0, '']);
    } finally {
      await t.drop();
    }
  });
});
