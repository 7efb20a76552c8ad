// Injects drift between oned and pgipam into the state of a real oned's session (issue 11's
// proof): the database replayed to request 11 and oned's snapshot-1, which agree. Every kind of
// drift reconcile knows is made the way it happens in a cloud -- a lease oned never recorded, a
// lease pgipam lost or put on hold, a range lost with a restored backup, a registration oned
// refused, an AR grown by `onevnet updatear` -- at positions chosen by a seeded generator, and
// the generator says exactly what reconcile must find and what --fix must repair.
import fs from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import type { Db } from '../../src/db/client';
import { cutLeases, giveFree, insertLease, leasesOverlapping, takeFree } from '../../src/allocator/lease-queries';
import { registerAddressRange } from '../../src/allocator/register';
import { removeRange } from '../../src/admin/range-admin';
import { ONED_FIXTURES } from './oned-requests';
import { type Rng } from './random';

export interface ExpectedDrift {
  kind: 'leaked' | 'unknown' | 'missing-range' | 'orphan-range' | 'resized';
  rangeId: number;
  position: number; // index or first index; -1 for whole ranges
  // what --fix must do: repair it, or leave it (too young, or not --fix's to repair)
  repaired: boolean;
}

const ctx = { requestId: 'drift', platform: 'default', log: () => {} };
const HOUR_AGO = `now() - interval '1 hour'`;

// oned's leases in snapshot-1, per pgipam range: index -> owner
const ONED_LEASES: Record<number, number[]> = { 50: [0, 1, 2, 3, 4, 5, 6, 7, 30, 35], 53: [0] };
const RANGE_SIZES: Record<number, number> = { 50: 50, 51: 32, 52: 20, 53: 30 };

// Injects drift into the database `c` and writes oned's view to `dir`; returns what was injected.
export async function injectDrift(c: pg.Client, rng: Rng, dir: string): Promise<ExpectedDrift[]> {
  const db = c as unknown as Db;
  const expected: ExpectedDrift[] = [];
  const touched = new Set<string>();
  // a range lost with a restored backup: oned's AR still names it
  const missing = rng.pick([null, 52, 53]);
  if (missing !== null) {
    await removeRange(db, missing, true, ctx);
    expected.push({ kind: 'missing-range', rangeId: missing, position: -1, repaired: true });
  }
  const live = [50, 51, 52, 53].filter((r) => r !== missing);
  // leases oned lists that pgipam lost (free) or freed (on hold): the dangerous ones
  for (const rangeId of live.filter((r) => ONED_LEASES[r])) {
    for (const index of ONED_LEASES[rangeId]!) {
      const roll = rng.next();
      if (roll > 0.3) continue;
      const hold = roll < 0.12;
      const [l] = await leasesOverlapping(db, rangeId, index, index);
      await cutLeases(db, rangeId, [l!], index, index);
      if (hold) await insertLease(db, rangeId, [index, index], 'hold', ctx, { holdSeconds: 3600 });
      else await giveFree(db, rangeId, index, index);
      touched.add(`${rangeId}:${index}`);
      expected.push({ kind: 'unknown', rangeId, position: index, repaired: true });
    }
  }
  // leases oned never recorded (a get_address it gave up on), old enough to free or too young
  for (let n = rng.int(0, 4); n > 0; n--) {
    const rangeId = rng.pick(live);
    const index = rng.int(0, RANGE_SIZES[rangeId]! - 1);
    if ((ONED_LEASES[rangeId] ?? []).includes(index) || touched.has(`${rangeId}:${index}`)) continue;
    if (!(await takeFree(db, rangeId, index, index))) continue; // a reserved address, or taken
    touched.add(`${rangeId}:${index}`);
    const old = rng.next() < 0.7;
    await insertLease(db, rangeId, [index, index], 'lease', ctx);
    if (old) await c.query(`update pgipam.lease set created_at = ${HOUR_AGO} where range_id = $1 and first_idx = $2`, [rangeId, index]);
    expected.push({ kind: 'leaked', rangeId, position: index, repaired: old });
  }
  // registrations oned refused or timed out: ranges no AR points at
  for (let n = rng.int(0, 2); n > 0; n--) {
    const { rangeId } = await registerAddressRange(
      db,
      { ar: { TYPE: 'IP4', IP: `10.99.${n}.10`, SIZE: String(rng.int(1, 64)), IPAM_MAD: 'pgipam' }, address: {} },
      ctx,
    );
    const old = rng.next() < 0.7;
    if (old) await c.query(`update pgipam.address_range set created_at = ${HOUR_AGO} where id = $1`, [rangeId]);
    expected.push({ kind: 'orphan-range', rangeId, position: -1, repaired: old });
  }
  // oned's view, with an AR grown by `onevnet updatear` now and then
  const grown = rng.pick([null, 51, 52].filter((r) => r !== missing));
  fs.mkdirSync(dir, { recursive: true });
  const from = path.join(ONED_FIXTURES, 'snapshot-1');
  for (const f of fs.readdirSync(from).filter((x) => x.startsWith('onevnet-'))) {
    let xml = fs.readFileSync(path.join(from, f), 'utf8');
    if (grown !== null && f === 'onevnet-show-34.xml') {
      const arId = grown - 50;
      xml = xml.replace(
        new RegExp(`(<AR_ID><!\\[CDATA\\[${arId}\\]\\]></AR_ID>[\\s\\S]*?<SIZE><!\\[CDATA\\[)(\\d+)(\\]\\]></SIZE>)`),
        (_m, a: string, size: string, b: string) => `${a}${Number(size) + 8}${b}`,
      );
    }
    fs.writeFileSync(path.join(dir, f), xml);
  }
  if (grown !== null) expected.push({ kind: 'resized', rangeId: grown, position: -1, repaired: false });
  const order = (d: ExpectedDrift) => `${String(d.rangeId).padStart(6, '0')}:${String(d.position + 1).padStart(6, '0')}:${d.kind}`;
  return expected.sort((a, b) => (order(a) < order(b) ? -1 : 1));
}
