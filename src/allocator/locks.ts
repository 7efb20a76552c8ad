// Every lock pgipam takes, in one place, and why these and no others.
//
// Which locks
//   * A range's row, FOR NO KEY UPDATE (get, allocate, free, reserve) or FOR UPDATE (unregister,
//     resize, removal). Every change to a range's leases and free extents happens under it, so the
//     work on one range is serialised while ranges are independent of each other. NO KEY UPDATE
//     does not block the foreign-key checks of lease inserts.
//   * A pool's transaction-scoped advisory lock (class POOL_LOCK_CLASS, key the pool id), around
//     anything that carves from or returns to the pool's free space. An advisory lock and not the
//     pool's row: carving never updates the pool row, and a row lock would block `pgipam pool set`
//     readers for nothing. The pool functions of migration 4 take the same lock themselves, so a
//     caller that forgot cannot corrupt the buddy list; the database stays right either way.
//   * An owner's transaction-scoped advisory lock (class OWNER_LOCK_CLASS, key a hash of the
//     owner), around `pgipam lease` and the API's lease operations, so that two retries of one
//     provisioning request cannot both find no lease and both make one.
//   * `pgipam migrate` takes a session advisory lock of its own (db/migrate.ts).
//
// In which order
//   An owner's lock first, then pools before ranges, each kind in ascending id order. register locks its pools and then
//   creates its range; unregister, `range rm` and `range resize` find the range's pools first,
//   lock them, then lock the range; reserve and unreserve lock every pool and then every range
//   they touch. Two transactions therefore never wait for each other in a cycle, and PostgreSQL
//   never has to break a deadlock between pgipam's own work (test/db/locks.test.ts runs them
//   against each other and reads pg_stat_database.deadlocks).
//
// Why not something else
//   * SKIP LOCKED (a queue of free addresses that workers claim) would need one row per free
//     address: a /8 or an IPv6 range of 2^32 - 1 addresses cannot be materialised. The free-extent
//     index gives first fit in one probe, and one row lock per range makes it exact.
//   * SERIALIZABLE would make every allocation on a busy range a candidate for a serialization
//     failure and a retry; the row lock makes them wait their turn instead, which is what oned's
//     serial queue expects anyway.
//   * The exclusion constraints (no two ranges of a space overlap, no two leases of a range
//     overlap) hold whatever the locks do: the locks make the code right, the constraints make a
//     bug in it harmless.
//
// What is retried
//   Only a deadlock (40P01), which the order above rules out between pgipam's transactions but a
//   person's psql session holding rows in another order can still cause; db/client.ts retries the
//   whole transaction up to MAX_ATTEMPTS times. At READ COMMITTED a serialization failure (40001)
//   cannot occur. A lock wait longer than lock_timeout_ms fails the action with a line that says
//   so (55P03).
import type { Db } from '../db/client';
import { IpamError } from '../errors';
import { type RangeRow, RANGE_COLUMNS, RANGE_JOINS, type RawRange, toRange } from './range-queries';

// Advisory lock class for per-pool serialisation of carving (the second key is the pool id).
export const POOL_LOCK_CLASS = 7_046_356;

export async function lockPools(db: Db, poolIds: Iterable<number>): Promise<void> {
  for (const id of [...new Set(poolIds)].sort((a, b) => a - b)) {
    await db.query('select pg_catalog.pg_advisory_xact_lock($1::int4, $2::int4)', [POOL_LOCK_CLASS, id]).catch((e) => {
      throw lockTimeout(e, db, `pool #${id}`);
    });
  }
}

export const OWNER_LOCK_CLASS = 7_046_357;

export async function lockOwner(db: Db, owner: string): Promise<void> {
  await db.query('select pg_catalog.pg_advisory_xact_lock($1::int4, pg_catalog.hashtext($2))', [OWNER_LOCK_CLASS, owner]).catch((e) => {
    throw lockTimeout(e, db, `the leases of ${owner}`);
  });
}

// A lock wait that ran out (55P03) says how long it waited, for what, and which setting decides:
// the holder may be another action, a CLI command or a person's psql session (pg_locks says who).
export function lockTimeout(e: unknown, db: Db, what: string): unknown {
  if ((e as { code?: string }).code !== '55P03') return e;
  const ms = db.pgipamConfig?.lockTimeoutMs;
  return new IpamError(
    'DB_TIMEOUT',
    `waited ${ms ?? 'lock_timeout'} ms for ${what}, which another session holds (an action, a pgipam command or a psql session: see pg_locks); the wait is lock_timeout_ms (PGIPAM_LOCK_TIMEOUT_MS; pgipam commands wait at least 30000 ms)`,
    { cause: e },
  );
}

// Locks the range row for the rest of the transaction and returns it (null: no such range, or
// row-level security hides it).
export async function lockRange(db: Db, id: number, mode: 'no key update' | 'update' = 'no key update'): Promise<RangeRow | null> {
  const { rows } = await db
    .query<RawRange>(`select ${RANGE_COLUMNS} from ${RANGE_JOINS} where r.id = $1 for ${mode} of r`, [id])
    .catch((e) => {
      throw lockTimeout(e, db, `range ${id}`);
    });
  return rows[0] ? toRange(rows[0]) : null;
}
