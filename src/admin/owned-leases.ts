// Leases for what is not OpenNebula (issue 14): a bare-metal server, a load balancer's VIP, a DNS
// appliance. Each has an owner, "kind/name" (baremetal/srv-42), and lives in the same ranges,
// exclusion constraints and history as OpenNebula's leases. Each operation is idempotent for its
// owner, as a provisioning tool retrying a request needs: asked again, `get` and `take` return the
// lease the owner already holds, never a second one, and `free` of what is free succeeds.
//
// They are the driver's own operations (get_address, allocate_address and free_address's
// transactional path) with the owner in the context, under the owner's lock (locks.ts) so that
// two retries at once cannot both find no lease.
import { type Db, withTransaction } from '../db/client';
import { IpamError, badRequest } from '../errors';
import { formatIPv4, parseIPv4, parseIPv6 } from '../address';
import type { ActionContext } from '../allocator/context';
import { allocateAddressInOpenTransaction } from '../allocator/allocate-address';
import { freeLeaseParts } from '../allocator/free-address';
import { getAddressInOpenTransaction } from '../allocator/get-address';
import { type LeaseRow, leasesOverlapping } from '../allocator/lease-queries';
import { lockOwner, lockRange } from '../allocator/locks';
import { getPool } from '../allocator/pool-space';
import { type RangeRow, addressAt, spaceIdByName } from '../allocator/range-queries';
import { hasIPv4 } from '../allocator/range-spec';

export const OWNER_PATTERN = /^[a-z][a-z0-9_-]{0,31}\/[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$/;

export function checkOwner(owner: string): string {
  if (!OWNER_PATTERN.test(owner))
    throw badRequest(
      `owner "${owner.slice(0, 80)}" is not kind/name: a kind of lower-case letters, digits, _ and - (baremetal, vip, dns), a slash, and a name of letters, digits and _ . : @ - (up to 128)`,
    );
  return owner;
}

// A block's size: 1 when not given; at most 65536 (a /16), as the API's schema says.
function leaseSize(size: number | undefined): number {
  const n = size ?? 1;
  if (!Number.isInteger(n) || n < 1 || n > 65536) throw badRequest('size must be a whole number from 1 to 65536');
  return n;
}

export interface OwnedLease {
  owner: string;
  rangeId: number;
  space: string;
  pool: string | null;
  ip: string;
  size: number;
  kind: 'lease' | 'allocation';
  createdAt: Date;
  // false: the owner already held it (a retry)
  created: boolean;
}

interface Row {
  range_id: string;
  first_idx: string;
  last_idx: string;
  kind: 'lease' | 'allocation';
  created_at: Date;
  owner: string;
  space: string;
  pool: string | null;
  ip4_first: string | null;
  ip6_first: string | null;
}

const SELECT_OWNED = `select l.range_id::text, l.first_idx::text, l.last_idx::text, l.kind, l.created_at, l.owner, s.name as space, p.name as pool,
    r.ip4_first::text, r.ip6_first::text
  from pgipam.lease l join pgipam.address_range r on r.id = l.range_id join pgipam.space s on s.id = r.space_id
  left join pgipam.pool p on p.id = r.pool_id`;

function toOwned(r: Row, created: boolean): OwnedLease {
  const range = {
    ip4First: r.ip4_first === null ? null : Number(r.ip4_first),
    ip6First: r.ip6_first === null ? null : BigInt(r.ip6_first),
    macFirst: null,
  } as RangeRow;
  return {
    owner: r.owner,
    rangeId: Number(r.range_id),
    space: r.space,
    pool: r.pool,
    ip: addressAt(range, Number(r.first_idx)),
    size: Number(r.last_idx) - Number(r.first_idx) + 1,
    kind: r.kind,
    createdAt: r.created_at,
    created,
  };
}

// The owner's leases (of this platform: row-level security, and the platform column for sessions
// that are not confined by it), optionally only those in one range or pool.
export async function ownedLeases(db: Db, ctx: ActionContext, filter: { owner?: string; rangeId?: number; pool?: string } = {}) {
  const { rows } = await db.query<Row>(
    `${SELECT_OWNED} where l.owner is not null and r.platform = $1 and ($2::text is null or l.owner = $2)
       and ($3::int8 is null or r.id = $3) and ($4::text is null or p.name = $4) order by l.owner, r.id, l.first_idx`,
    [ctx.platform, filter.owner ?? null, filter.rangeId ?? null, filter.pool ?? null],
  );
  return rows.map((r) => toOwned(r, false));
}

export interface LeaseGetOptions {
  owner: string;
  rangeId?: number;
  pool?: string;
  size?: number;
}

// The lowest free block of `size` addresses in the range, or in the first range of the pool (in id
// order) that has one; the owner's lease there when it already holds one.
export async function leaseGet(db: Db, o: LeaseGetOptions, ctx: ActionContext): Promise<OwnedLease> {
  checkOwner(o.owner);
  if ((o.rangeId === undefined) === (o.pool === undefined)) throw badRequest('name a pool or a range to lease from (one of them)');
  const size = leaseSize(o.size);
  // the lease is read back after the commit, not under the range's lock (which others wait for)
  const made = await withTransaction(db, async (): Promise<OwnedLease | { rangeId: number; ip: string }> => {
    await lockOwner(db, o.owner);
    const held = await ownedLeases(db, ctx, { owner: o.owner, rangeId: o.rangeId, pool: o.pool });
    if (held.length) {
      const same = held.find((l) => l.size === size);
      if (same) return same;
      throw new IpamError(
        'CONFLICT',
        `${o.owner} already holds ${held.map((l) => `${l.ip} (${l.size})`).join(', ')} there, not a block of ${size}: free it first`,
      );
    }
    const candidates = o.rangeId !== undefined ? [o.rangeId] : await poolRangeIds(db, o.pool!, ctx);
    let last: unknown;
    for (const id of candidates) {
      try {
        const r = await getAddressInOpenTransaction(
          db,
          { ar: { PGIPAM_RANGE_ID: String(id) }, address: { SIZE: String(size) } },
          { ...ctx, owner: o.owner },
        );
        return { rangeId: r.rangeId, ip: r.ip };
      } catch (e) {
        // a full range of the pool: try the next
        if (o.pool === undefined || (e as { code?: string }).code !== 'NO_FREE_ADDRESS') throw e;
        last = e;
      }
    }
    throw new IpamError(
      'NO_FREE_ADDRESS',
      `no ${size === 1 ? 'free address' : `block of ${size} free addresses`} in the IPv4 ranges of pool "${o.pool}"${candidates.length ? '' : ' (it has none of this platform)'}`,
      { cause: last },
    );
  });
  if ('owner' in made) return made;
  return { ...(await readBack(db, ctx, o.owner, made.rangeId, made.ip, size)), created: true };
}

// The lease just made, as ownedLeases says it (its space, pool and time); what was made when it was
// freed again in the meantime.
async function readBack(db: Db, ctx: ActionContext, owner: string, rangeId: number, ip: string, size: number): Promise<OwnedLease> {
  const found = (await ownedLeases(db, ctx, { owner, rangeId })).find((l) => l.ip === ip);
  return found ?? { owner, rangeId, space: '', pool: null, ip, size, kind: 'lease', createdAt: new Date(), created: true };
}

async function poolRangeIds(db: Db, poolName: string, ctx: ActionContext): Promise<number[]> {
  const pool = await getPool(db, poolName);
  if (!pool) throw new IpamError('NOT_FOUND', `no pool "${poolName}"`);
  const { rows } = await db.query<{ id: string; ar_type: string }>(
    `select r.id::text, r.ar_type from pgipam.address_range r where r.pool_id = $1 and r.platform = $2 and not r.observed order by r.id`,
    [pool.id, ctx.platform],
  );
  return rows.filter((r) => hasIPv4(r.ar_type as never)).map((r) => Number(r.id));
}

// The range of the space that holds the address, and the address's index in it.
async function rangeOf(db: Db, ip: string, space: string): Promise<{ id: number; index: number; ipText: string }> {
  const spaceId = await spaceIdByName(db, space);
  const v6 = ip.includes(':');
  const value = v6 ? parseIPv6(ip, 'address') : BigInt(parseIPv4(ip, 'address'));
  const { rows } = await db.query<{ id: string; first: string }>(
    v6
      ? `select id::text, ip6_first::text as first from pgipam.address_range where space_id = $1 and ip6_span @> $2::numeric`
      : `select id::text, ip4_first::text as first from pgipam.address_range where space_id = $1 and ip4_span @> $2::int8`,
    [spaceId, value.toString()],
  );
  if (!rows[0]) throw new IpamError('NOT_FOUND', `${ip} is in no range of space "${space}" that this platform can see`);
  const index = Number(value - BigInt(rows[0].first));
  return { id: Number(rows[0].id), index, ipText: v6 ? ip : formatIPv4(Number(value)) };
}

export interface LeaseTakeOptions {
  owner: string;
  ip: string;
  space?: string;
  size?: number;
}

// The address (and the size - 1 after it) for the owner; refused, naming the holder, when taken.
export async function leaseTake(db: Db, o: LeaseTakeOptions, ctx: ActionContext): Promise<OwnedLease> {
  checkOwner(o.owner);
  const size = leaseSize(o.size);
  const made = await withTransaction(db, async (): Promise<OwnedLease | { rangeId: number; ip: string }> => {
    await lockOwner(db, o.owner);
    const at = await rangeOf(db, o.ip, o.space ?? 'default');
    const mine = (await ownedLeases(db, ctx, { owner: o.owner, rangeId: at.id })).find((l) => l.ip === at.ipText && l.size === size);
    if (mine) return mine;
    const range = await lockRange(db, at.id);
    if (!range || range.platform !== ctx.platform) throw new IpamError('NOT_FOUND', `${o.ip} is in no range of this platform`);
    const ar: Record<string, string> = { PGIPAM_RANGE_ID: String(at.id) };
    const address: Record<string, string> = { SIZE: String(size), ...(range.ip4First !== null ? { IP: at.ipText } : { IP6: at.ipText }) };
    await allocateAddressInOpenTransaction(db, { ar, address }, { ...ctx, owner: o.owner });
    return { rangeId: at.id, ip: addressAt(range, at.index) };
  });
  if ('owner' in made) return made;
  return { ...(await readBack(db, ctx, o.owner, made.rangeId, made.ip, size)), kind: 'allocation', created: true };
}

export interface LeaseFreeOptions {
  ip: string;
  // only this owner's lease (the API always names it; the CLI may free any owner's)
  owner?: string;
  space?: string;
}

// Frees the owned lease that holds the address, whole. Free already: nothing to do. OpenNebula's
// leases and operators' reservations are refused: they are freed where they were made.
export async function leaseFree(db: Db, o: LeaseFreeOptions, ctx: ActionContext): Promise<{ freed: OwnedLease | null }> {
  if (o.owner !== undefined) checkOwner(o.owner);
  return withTransaction(db, async () => {
    if (o.owner !== undefined) await lockOwner(db, o.owner);
    const at = await rangeOf(db, o.ip, o.space ?? 'default');
    const range = await lockRange(db, at.id);
    if (!range || range.platform !== ctx.platform) throw new IpamError('NOT_FOUND', `${o.ip} is in no range of this platform`);
    const holder: LeaseRow | undefined = (await leasesOverlapping(db, range.id, at.index, at.index))[0];
    if (!holder || holder.kind === 'hold') return { freed: null };
    if (holder.owner === null) {
      throw new IpamError(
        'CONFLICT',
        holder.kind === 'reservation'
          ? `${o.ip} is reserved by an operator${holder.note ? ` (${holder.note})` : ''}: "pgipam unreserve" frees it`
          : `${o.ip} is OpenNebula's (${holder.kind === 'lease' ? 'leased by get_address' : 'allocated by allocate_address'}, request ${holder.requestId ?? '-'}): it is freed by OpenNebula`,
      );
    }
    if (o.owner !== undefined && holder.owner !== o.owner)
      throw new IpamError('CONFLICT', `${o.ip} is leased to ${holder.owner}, not to ${o.owner}`);
    const [row] = (await ownedLeases(db, ctx, { owner: holder.owner, rangeId: range.id })).filter(
      (l) => l.ip === addressAt(range, holder.firstIdx),
    );
    await freeLeaseParts(db, range, [holder], [holder.firstIdx, holder.lastIdx], ctx, {
      note: () => `freed from ${holder.owner}`,
      event: 'address_freed',
      detail: () => ({ was: holder.kind, owner: holder.owner, hold_seconds: range.holdSeconds }),
    });
    ctx.log(`freed ${row!.ip}${row!.size > 1 ? ` + ${row!.size - 1}` : ''} of ${holder.owner} in range ${range.id}`);
    return { freed: row ?? null };
  });
}
