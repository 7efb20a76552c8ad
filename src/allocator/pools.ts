// Pools: named address space that ranges are carved from. A pool's free space is a buddy list of
// aligned CIDR blocks (pool_free_block). Carving takes the smallest free block that holds the
// request and splits it; returning a subnet merges it with its free buddy, level by level. Both
// cost O(prefix length) index operations and never read the pool's existing subnets.
import type { Db } from '../db/client';
import { IpamError } from '../errors';
import { formatIPv4, formatIPv6 } from '../address';

export type Family = 4 | 6;
export const familyBits = (f: Family) => (f === 4 ? 32 : 128);
export const blockSize = (f: Family, prefixLength: number) => 1n << BigInt(familyBits(f) - prefixLength);
export const formatAddress = (f: Family, n: bigint) => (f === 4 ? formatIPv4(Number(n)) : formatIPv6(n));
export const formatCidr = (f: Family, n: bigint, p: number) => `${formatAddress(f, n)}/${p}`;

// Advisory lock class for per-pool serialisation of carving (the second key is the pool id).
const POOL_LOCK_CLASS = 7_046_356;

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
  hold_seconds: number;
  restricted: boolean;
  extra: Record<string, string>;
  description: string;
  created_at: Date;
}

const POOL_COLUMNS = `p.id::text, p.name, p.space_id::text, s.name as space_name, p.is_default, p.gateway, p.dns, p.search_domain,
  p.mtu, p.vlan_id, p.hold_seconds, p.restricted, p.extra, p.description, p.created_at`;

const toPool = (r: RawPool): PoolRow => ({
  id: Number(r.id), name: r.name, spaceId: Number(r.space_id), spaceName: r.space_name, isDefault: r.is_default, gateway: r.gateway,
  dns: r.dns, searchDomain: r.search_domain, mtu: r.mtu, vlanId: r.vlan_id, holdSeconds: r.hold_seconds, restricted: r.restricted,
  extra: r.extra, description: r.description, createdAt: r.created_at,
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
  const { rows } = await db.query<RawPool>(`select ${POOL_COLUMNS} from pgipam.pool p join pgipam.space s on s.id = p.space_id where p.id = $1`, [id]);
  return rows[0] ? toPool(rows[0]) : null;
}

export async function listPoolRows(db: Db): Promise<PoolRow[]> {
  const { rows } = await db.query<RawPool>(`select ${POOL_COLUMNS} from pgipam.pool p join pgipam.space s on s.id = p.space_id order by p.name`);
  return rows.map(toPool);
}

// Refuses a platform the pool is not granted to. Row-level security refuses it again in the
// database for platforms with their own role; this check gives everyone the same clear line.
export async function checkPoolAccess(db: Db, pool: PoolRow, platform: string): Promise<void> {
  if (!pool.restricted) return;
  const { rows } = await db.query('select 1 from pgipam.pool_grant where pool_id = $1 and platform = $2', [pool.id, platform]);
  if (!rows.length) throw new IpamError('PERMISSION_DENIED', `platform "${platform}" may not use pool "${pool.name}": grant it with "pgipam platform grant ${platform} ${pool.name}"`);
}

export async function lockPool(db: Db, poolId: number): Promise<void> {
  await db.query('select pg_advisory_xact_lock($1, $2)', [POOL_LOCK_CLASS, poolId]);
}

export interface Block {
  family: Family;
  network: bigint;
  prefixLength: number;
}

// Takes the smallest free block of the pool that holds a /prefixLength, lowest address first,
// splits it, and returns the /prefixLength at its start; null when the pool has no room.
export async function carveBlock(db: Db, poolId: number, family: Family, prefixLength: number): Promise<Block | null> {
  const { rows } = await db.query<{ network: string; prefix_length: number }>(
    `delete from pgipam.pool_free_block f using (
        select network from pgipam.pool_free_block where pool_id = $1 and family = $2 and prefix_length <= $3
         order by prefix_length desc, network limit 1) b
      where f.pool_id = $1 and f.family = $2 and f.network = b.network
      returning f.network::text, f.prefix_length`,
    [poolId, family, prefixLength],
  );
  const found = rows[0];
  if (!found) return null;
  const network = BigInt(found.network);
  await splitInto(db, poolId, family, network, found.prefix_length, network, prefixLength);
  return { family, network, prefixLength };
}

// The free block [blockNet/blockLen] was removed; put back every part of it except target/targetLen.
async function splitInto(db: Db, poolId: number, family: Family, blockNet: bigint, blockLen: number, target: bigint, targetLen: number): Promise<void> {
  const nets: string[] = [];
  const lens: number[] = [];
  let net = blockNet;
  for (let len = blockLen + 1; len <= targetLen; len++) {
    const half = blockSize(family, len);
    if (target >= net + half) {
      nets.push(net.toString());
      net += half;
    } else {
      nets.push((net + half).toString());
    }
    lens.push(len);
  }
  if (nets.length) {
    await db.query(
      `insert into pgipam.pool_free_block (pool_id, family, network, prefix_length)
       select $1, $2, n, l from unnest($3::numeric[], $4::int[]) as x(n, l)`,
      [poolId, family, nets, lens],
    );
  }
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
export async function takeSpan(db: Db, pool: PoolRow, family: Family, first: bigint, last: bigint): Promise<Block[]> {
  const taken = cidrCover(family, first, last);
  for (const b of taken) {
    const { rows } = await db.query<{ network: string; prefix_length: number }>(
      `delete from pgipam.pool_free_block f using (
          select network, prefix_length from pgipam.pool_free_block
           where pool_id = $1 and family = $2 and network <= $3::numeric order by network desc limit 1) c
        where f.pool_id = $1 and f.family = $2 and f.network = c.network
          and c.network + power(2::numeric, $5::int - c.prefix_length) >= $3::numeric + power(2::numeric, $5::int - $4::int)
        returning f.network::text, f.prefix_length`,
      [pool.id, family, b.network.toString(), b.prefixLength, familyBits(family)],
    );
    const found = rows[0];
    if (!found) {
      const holder = await db.query<{ range_id: string }>(
        `select range_id::text from pgipam.pool_allocation where space_id = $1 and family = $2 and span && numrange($3::numeric, $4::numeric, '[]') limit 1`,
        [pool.spaceId, family, b.network.toString(), (b.network + blockSize(family, b.prefixLength) - 1n).toString()],
      );
      const who = holder.rows[0] ? `range ${holder.rows[0].range_id}` : 'a reservation or another subnet';
      throw new IpamError('ADDRESS_IN_USE', `${formatCidr(family, b.network, b.prefixLength)} of pool "${pool.name}" is already taken by ${who}`);
    }
    await splitInto(db, pool.id, family, BigInt(found.network), found.prefix_length, b.network, b.prefixLength);
  }
  return taken;
}

// Puts a block back and merges it with its free buddy as far as possible.
export async function returnBlock(db: Db, poolId: number, block: Block): Promise<void> {
  let { network, prefixLength } = block;
  const { family } = block;
  while (prefixLength > 0) {
    const size = blockSize(family, prefixLength);
    const buddy = (network / size) % 2n === 0n ? network + size : network - size;
    const { rowCount } = await db.query(
      'delete from pgipam.pool_free_block where pool_id = $1 and family = $2 and network = $3::numeric and prefix_length = $4',
      [poolId, family, buddy.toString(), prefixLength],
    );
    if (!rowCount) break;
    network = network < buddy ? network : buddy;
    prefixLength--;
  }
  await db.query('insert into pgipam.pool_free_block (pool_id, family, network, prefix_length) values ($1, $2, $3::numeric, $4)', [poolId, family, network.toString(), prefixLength]);
}

export async function recordAllocations(db: Db, rangeId: number, pool: PoolRow, blocks: Block[]): Promise<void> {
  for (const b of blocks) {
    await db.query(
      `insert into pgipam.pool_allocation (range_id, pool_id, space_id, family, network, prefix_length, last)
       values ($1, $2, $3, $4, $5::numeric, $6, $7::numeric)`,
      [rangeId, pool.id, pool.spaceId, b.family, b.network.toString(), b.prefixLength, (b.network + blockSize(b.family, b.prefixLength) - 1n).toString()],
    );
  }
}

// Gives a range's blocks back to their pool (before the range is deleted).
export async function releaseRangeBlocks(db: Db, rangeId: number): Promise<Block[]> {
  const { rows } = await db.query<{ pool_id: string; family: Family; network: string; prefix_length: number }>(
    'delete from pgipam.pool_allocation where range_id = $1 returning pool_id::text, family, network::text, prefix_length',
    [rangeId],
  );
  const blocks: Block[] = [];
  const pools = [...new Set(rows.map((r) => Number(r.pool_id)))].sort((a, b) => a - b);
  for (const p of pools) await lockPool(db, p);
  for (const r of rows) {
    const b = { family: Number(r.family) as Family, network: BigInt(r.network), prefixLength: r.prefix_length };
    await returnBlock(db, Number(r.pool_id), b);
    blocks.push(b);
  }
  return blocks;
}

// The pool whose prefixes contain [first, last] in a space; throws when the span straddles a
// pool boundary; null when it lies outside every pool.
export async function poolContaining(db: Db, spaceId: number, family: Family, first: bigint, last: bigint): Promise<PoolRow | null> {
  const { rows } = await db.query<{ pool_id: string; inside: boolean; prefix: string }>(
    `select pool_id::text, span @> numrange($3::numeric, $4::numeric, '[]') as inside, network::text || '/' || prefix_length as prefix
       from pgipam.pool_prefix where space_id = $1 and family = $2 and span && numrange($3::numeric, $4::numeric, '[]') limit 2`,
    [spaceId, family, first.toString(), last.toString()],
  );
  if (!rows.length) return null;
  if (rows.length > 1 || !rows[0]!.inside) {
    throw new IpamError('BAD_REQUEST', `${formatAddress(family, first)} - ${formatAddress(family, last)} straddles the edge of a pool prefix; register ranges inside one pool prefix or outside every pool`);
  }
  const pool = await getPoolById(db, Number(rows[0]!.pool_id));
  if (!pool) throw new IpamError('PERMISSION_DENIED', `${formatAddress(family, first)} lies in a pool this platform may not use`);
  return pool;
}

export interface Reservation {
  id: number;
  family: Family;
  first: bigint;
  last: bigint;
  reason: string;
}

export async function poolReservationsOverlapping(db: Db, spaceId: number, family: Family, first: bigint, last: bigint): Promise<Reservation[]> {
  const { rows } = await db.query<{ id: string; first: string; last: string; reason: string }>(
    `select id::text, first::text, last::text, reason from pgipam.pool_reservation
      where space_id = $1 and family = $2 and span && numrange($3::numeric, $4::numeric, '[]') order by first`,
    [spaceId, family, first.toString(), last.toString()],
  );
  return rows.map((r) => ({ id: Number(r.id), family, first: BigInt(r.first), last: BigInt(r.last), reason: r.reason }));
}

// Unique local addresses, fc00::/7: the AR gets ULA_PREFIX instead of GLOBAL_PREFIX.
export function isUla(block: Block): boolean {
  return block.family === 6 && block.network >> 121n === 0x7en;
}

export function describeBlock(b: Block): string {
  return formatCidr(b.family, b.network, b.prefixLength);
}

