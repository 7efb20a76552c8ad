// Runs the black-box action tests and the race tests through a PgBouncer in transaction pooling
// mode that the test setup starts (test/support/pgbouncer.ts): npm run test:pgbouncer.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';

if (!fs.existsSync('/usr/sbin/pgbouncer')) {
  process.stdout.write('PgBouncer tests skipped: apt-get install pgbouncer\n');
  process.exit(process.env.CI ? 1 : 0);
}
const r = spawnSync(process.execPath, ['node_modules/vitest/vitest.mjs', 'run', 'test/exe/actions.test.ts', 'test/exe/race.test.ts', ...process.argv.slice(2)], {
  stdio: 'inherit',
  env: { ...process.env, PGIPAM_TEST_VIA_PGBOUNCER: '1' },
});
process.exit(r.status ?? 1);
