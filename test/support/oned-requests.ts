// The requests a real oned sent (test/fixtures/oned/requests), replayed through the executables:
// the tests of issue 11 start from the pgipam database that oned's session left, and compare it
// with what oned printed at the same moment (snapshot-1 after request 11, snapshot-2 at the end).
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, runActionProcess, runCliProcess } from './processes';
import { toBase64 } from './oned-sim';

export const ONED_FIXTURES = path.join(ROOT, 'test/fixtures/oned');
const REQUESTS = path.join(ONED_FIXTURES, 'requests');

export interface OnedRequest {
  id: string;
  action: string;
  xml: string;
  rc: number;
}

export const onedRequests: OnedRequest[] = fs
  .readdirSync(REQUESTS)
  .filter((f) => f.endsWith('.xml'))
  .sort()
  .map((f) => {
    const [, id, action] = /^(\d+)-(\w+)\.xml$/.exec(f)!;
    const rc = Number(/exit (\d+)/.exec(fs.readFileSync(path.join(REQUESTS, f.replace(/\.xml$/, '.rc')), 'utf8'))![1]);
    return { id: id!, action: action!, xml: fs.readFileSync(path.join(REQUESTS, f), 'utf8'), rc };
  });

// Replays requests 00..`last` on a database whose ranges start at 50, as in oned's session, with
// the pool of step 4. Request 18 (refused then: IP6 = 0) is left out: oned created no VM.
// `run` executes a query on the database (the caller's client).
export async function replayOnedSession(env: Record<string, string>, run: (sql: string) => Promise<unknown>, last = '21'): Promise<void> {
  await run('alter table pgipam.address_range alter column id restart with 50');
  for (const r of onedRequests) {
    if (r.id > last) break;
    if (r.id === '18') continue;
    if (r.id === '10') {
      const pool = await runCliProcess(['pool', 'add', 'samples', '--prefix', '10.80.0.0/16', '--vlan', '80'], env);
      if (pool.code !== 0) throw new Error(`pool add: ${pool.stderr}`);
    }
    const a = await runActionProcess(r.action, toBase64(r.xml), env, [r.id]);
    if (a.exitCode !== r.rc) throw new Error(`request ${r.id} ${r.action} exited ${a.exitCode}, oned saw ${r.rc}: ${a.stderr}`);
  }
}

// The files of a snapshot, copied so that their modification time (when oned's view was read,
// for reconcile) is now and not when the checkout was made.
export function snapshotFiles(dir: string, snapshot: 'snapshot-1' | 'snapshot-2', only?: (f: string) => boolean): string[] {
  const from = path.join(ONED_FIXTURES, snapshot);
  fs.mkdirSync(dir, { recursive: true });
  return fs
    .readdirSync(from)
    .filter((f) => f.startsWith('onevnet-') && (only ? only(f) : true))
    .sort()
    .map((f) => {
      fs.copyFileSync(path.join(from, f), path.join(dir, f));
      return path.join(dir, f);
    });
}
