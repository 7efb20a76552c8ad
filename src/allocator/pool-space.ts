// Pool space: named address space that ranges are carved from. A pool's free space is a buddy list of
// aligned CIDR blocks (pool_free_block). Carving takes the smallest free block that holds the
// request and splits it; returning a subnet merges it with its free buddy, level by level. Both
// cost O(prefix length) index operations and never read the pool's existing subnets.
import type { Db } from '../db/client';
import { IpamError } from '../errors';
import { formatIPv4, formatIPv6, parseIPv4 } from '../address';

export type Family = 4 | 6;
export const familyBits = (f: Family) => (f === 4 ? 32 : 128);
export const blockSize = (f: Family, prefixLength: number) => 1n << BigInt(familyBits(f) - prefixLength);
export const formatAddress = (f: Family, n: bigint) => (f === 4 ? formatIPv4(Number(n)) : formatIPv6(n));
export const formatCidr = (f: Family, n: bigint, p: number) => `${formatAddress(f, n)}/${p}`;

export interface PoolRow {
  id: number;
  name: string;
  spaceId: number;
  spaceName: string;
  isDefault: boolean;
  gateway: string;
  dns: string;
  searchDomain: string;
  mtu: number | null;
  vlanId: number | null;
  // the VLAN pool carved networks take their VLAN_ID from (migration 9); null: vlanId or none
  vlanPoolId: number | null;
  vlanPoolName: string | null;
  holdSeconds: number;
  restricted: boolean;
  extra: Record<string, string>;
  description: string;
  createdAt: Date;
}

interface RawPool {
  id: string;
  name: string;
  space_id: string;
  space_name: string;
  is_default: boolean;
  gateway: string;
  dns: string;
  search_domain: string;
  mtu: number | null;
  vlan_id: number | null;
  vlan_pool_id: string | null;
  vlan_pool_name: string | null;
  hold_seconds: number;
  restricted: boolean;
  extra: Record<string, string>;
  description: string;
  created_at: Date;
}

const POOL_COLUMNS = `p.id::text, p.name, p.space_id::text, s.name as space_name, p.is_default, p.gateway, p.dns, p.search_domain,
  p.mtu, p.vlan_id, p.vlan_pool_id::text, (select v.name from pgipam.vlan_pool v where v.id = p.vlan_pool_id) as vlan_pool_name,
  p.hold_seconds, p.restricted, p.extra, p.description, p.created_at`;

const toPool = (r: RawPool): PoolRow => ({
  id: Number(r.id),
  name: r.name,
  spaceId: Number(r.space_id),
  spaceName: r.space_name,
  isDefault: r.is_default,
  gateway: r.gateway,
  dns: r.dns,
  searchDomain: r.search_domain,
  mtu: r.mtu,
  vlanId: r.vlan_id,
  vlanPoolId: r.vlan_pool_id === null ? null : Number(r.vlan_pool_id),
  vlanPoolName: r.vlan_pool_name,
  holdSeconds: r.hold_seconds,
  restricted: r.restricted,
  extra: r.extra,
  description: r.description,
  createdAt: r.created_at,
});

export async function getPool(db: Db, name: string | null): Promise<PoolRow | null> {
  const { rows } = await db.query<RawPool>(
    `select ${POOL_COLUMNS} from pgipam.pool p join pgipam.space s on s.id = p.space_id
      where ($1::text is null and p.is_default) or p.name = $1`,
    [name],
  );
  return rows[0] ? toPool(rows[0]) : null;
}

export async function getPoolById(db: Db, id: number): Promise<PoolRow | null> {
  const { rows } = await db.query<RawPool>(
    `select ${POOL_COLUMNS} from pgipam.pool p join pgipam.space s on s.id = p.space_id where p.id = $1`,
    [id],
  );
  return rows[0] ? toPool(rows[0]) : null;
}

export async function listPoolRows(db: Db): Promise<PoolRow[]> {
  const { rows } = await db.query<RawPool>(
    `select ${POOL_COLUMNS} from pgipam.pool p join pgipam.space s on s.id = p.space_id order by p.name`,
  );
  return rows.map(toPool);
}

// Whether the platform holds a grant for the pool.
export async function hasPoolGrant(db: Db, poolId: number, platform: string): Promise<boolean> {
  const { rowCount } = await db.query('select 1 from pgipam.pool_grant where pool_id = $1 and platform = $2', [poolId, platform]);
  return (rowCount ?? 0) > 0;
}

// The pools a range holds subnets of (to lock them, in id order, before the range).
export async function rangePoolIds(db: Db, rangeId: number): Promise<number[]> {
  const { rows } = await db.query<{ pool_id: string }>('select distinct pool_id::text from pgipam.pool_allocation where range_id = $1', [
    rangeId,
  ]);
  return rows.map((r) => Number(r.pool_id));
}

// Refuses a platform the pool is not granted to. Row-level security refuses it again in the
// database for platforms with their own role; this check gives everyone the same clear line.
export async function checkPoolAccess(db: Db, pool: PoolRow, platform: string): Promise<void> {
  if (!pool.restricted) return;
  if (!(await hasPoolGrant(db, pool.id, platform)))
    throw new IpamError(
      'PERMISSION_DENIED',
      `platform "${platform}" may not use pool "${pool.name}": grant it with "pgipam platform grant ${platform} ${pool.name}"`,
    );
}

export interface Block {
  family: Family;
  network: bigint;
  prefixLength: number;
}

// A pool's free space and subnets change only through the database's own functions (migration
// 4), which check that the session may use the pool: platform roles cannot touch them otherwise.
// A subnet taken here is pending until assignSubnets gives it to a range in the same transaction.

// Takes the smallest free block of the pool that holds a /prefixLength, lowest address first,
// splits it, and returns the /prefixLength at its start; null when the pool has no room.
export async function carveBlock(db: Db, poolId: number, family: Family, prefixLength: number): Promise<Block | null> {
  const { rows } = await db.query<{ network: string | null }>(
    'select pgipam.pool_take_block($1::int8, $2::int4, $3::int4)::text as network',
    [poolId, family, prefixLength],
  );
  const network = rows[0]?.network;
  return network == null ? null : { family, network: BigInt(network), prefixLength };
}

// Aligned CIDR blocks that exactly cover [first, last].
export function cidrCover(family: Family, first: bigint, last: bigint): Block[] {
  const bits = familyBits(family);
  const out: Block[] = [];
  let cur = first;
  while (cur <= last) {
    let len = bits;
    while (len > 0) {
      const size = blockSize(family, len - 1);
      if (cur % size !== 0n || cur + size - 1n > last) break;
      len--;
    }
    out.push({ family, network: cur, prefixLength: len });
    cur += blockSize(family, len);
  }
  return out;
}

// Takes exactly [first, last] out of the pool's free blocks, or throws naming what holds it.
// pending: false (operators only) takes the space without giving it to a range.
export async function takeSpan(
  db: Db,
  pool: PoolRow,
  family: Family,
  first: bigint,
  last: bigint,
  o: { pending?: boolean } = {},
): Promise<Block[]> {
  try {
    const { rows } = await db.query<{ network: string; prefix_length: number }>(
      'select network::text, prefix_length from pgipam.pool_take_span($1::int8, $2::int4, $3::numeric, $4::numeric, $5::boolean)',
      [pool.id, family, first.toString(), last.toString(), o.pending ?? true],
    );
    return rows.map((r) => ({ family, network: BigInt(r.network), prefixLength: r.prefix_length }));
  } catch (e) {
    const err = e as { code?: string; detail?: string };
    if (err.code !== 'PI001') throw e;
    const [net, len, holder] = (err.detail ?? '').split('/');
    const who = holder ? `range ${holder}` : 'a reservation or another subnet';
    throw new IpamError(
      'ADDRESS_IN_USE',
      `${formatCidr(family, BigInt(net!), Number(len))} of pool "${pool.name}" is already taken by ${who}`,
      { cause: e },
    );
  }
}

// Operators only: puts a block that belongs to no range into the pool's free space.
export async function returnBlock(db: Db, poolId: number, block: Block): Promise<void> {
  await db.query('select pgipam.pool_give_back($1::int8, $2::int4, $3::numeric, $4::int4)', [
    poolId,
    block.family,
    block.network.toString(),
    block.prefixLength,
  ]);
}

// Gives the subnets this transaction took from pools to the range.
export async function assignSubnets(db: Db, rangeId: number): Promise<void> {
  await db.query('select pgipam.pool_assign($1::int8)', [rangeId]);
}

// Gives a range's subnets back to their pools (before the range is deleted); works for the
// range's platform even after its grant was revoked.
export async function releaseRangeBlocks(db: Db, rangeId: number): Promise<Block[]> {
  const { rows } = await db.query<{ family: number; network: string; prefix_length: number }>(
    'select family, network::text, prefix_length from pgipam.pool_release_range($1::int8)',
    [rangeId],
  );
  return rows.map((r) => ({ family: r.family as Family, network: BigInt(r.network), prefixLength: r.prefix_length }));
}

// The pool whose prefixes contain [first, last] in a space; throws when the span straddles a
// pool boundary, or lies in a pool the session may not use (seen past row-level security, which
// would otherwise make such a span look as if it were outside every pool); null when it lies
// outside every pool.
export async function poolContaining(
  db: Db,
  spaceId: number,
  family: Family,
  first: bigint,
  last: bigint,
  platform: string,
): Promise<PoolRow | null> {
  const { rows } = await db.query<{ pool_id: string; pool_name: string; allowed: boolean; inside: boolean }>(
    'select pool_id::text, pool_name, allowed, inside from pgipam.pool_covering($1::int8, $2::int4, $3::numeric, $4::numeric)',
    [spaceId, family, first.toString(), last.toString()],
  );
  if (!rows.length) return null;
  if (rows.length > 1 || !rows[0]!.inside) {
    throw new IpamError(
      'BAD_REQUEST',
      `${formatAddress(family, first)} - ${formatAddress(family, last)} straddles the edge of a pool prefix; register ranges inside one pool prefix or outside every pool`,
    );
  }
  const pool = rows[0]!.allowed ? await getPoolById(db, Number(rows[0]!.pool_id)) : null;
  if (!pool)
    throw new IpamError(
      'PERMISSION_DENIED',
      `platform "${platform}" may not use pool "${rows[0]!.pool_name}": ${formatAddress(family, first)} - ${formatAddress(family, last)} lies in it; ask an operator for a grant ("pgipam platform grant ${platform} ${rows[0]!.pool_name}")`,
    );
  return pool;
}

export interface Reservation {
  id: number;
  family: Family;
  first: bigint;
  last: bigint;
  reason: string;
}

export async function poolReservationsOverlapping(
  db: Db,
  spaceId: number,
  family: Family,
  first: bigint,
  last: bigint,
): Promise<Reservation[]> {
  const { rows } = await db.query<{ id: string; first: string; last: string; reason: string }>(
    `select r.id::text as id, r.first::text as first, r.last::text as last, r.reason from pgipam.pool_reservation r
      where r.space_id = $1 and r.family = $2 and r.span && numrange($3::numeric, $4::numeric, '[]') order by r.first`,
    [spaceId, family, first.toString(), last.toString()],
  );
  return rows.map((r) => ({ id: Number(r.id), family, first: BigInt(r.first), last: BigInt(r.last), reason: r.reason }));
}

// The IPv4 addresses among a pool's DNS servers ("10.0.0.2 10.0.0.3"): never handed to a VM
// when they fall inside a range (carving places the AR around them, an explicit AR over them is
// refused: issue 12).
export function poolDnsIPv4(dns: string): number[] {
  return dns
    .split(/[\s,]+/)
    .filter((d) => /^\d+\.\d+\.\d+\.\d+$/.test(d))
    .map((d) => parseIPv4(d));
}

// Unique local addresses, fc00::/7: the AR gets ULA_PREFIX instead of GLOBAL_PREFIX.
export function isUla(block: Block): boolean {
  return block.family === 6 && block.network >> 121n === 0x7en;
}

export function describeBlock(b: Block): string {
  return formatCidr(b.family, b.network, b.prefixLength);
}
