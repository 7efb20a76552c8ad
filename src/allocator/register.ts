// register_address_range: validates the AR as oned does, carves what it leaves open from a pool
// (or takes an explicit range's span out of the pool it lies in), records the range and its free
// space, keeps its network, broadcast, gateway and pool-reserved addresses out of allocation, and
// returns the AR that oned stores in place of the one it sent. One transaction.
import { type Db, withTransaction } from '../db/client';
import { IpamError, badRequest } from '../errors';
import type { IpamRequest } from '../ipam-request';
import type { ActionContext } from './context';
import { MAX_AR_SIZE, parseCount } from '../address';
import { ONED_COMPUTED_ATTRIBUTES } from '../ar-attributes';
import { checkName } from '../names';
import { checkTemplateValue } from '../template-value';
import { type CarvePlan, carveForAr, carvePlan, explicitSpans, poolAttributes, resolvePool } from './carving';
import { spaceName } from './range-resolution';
import { recordHistory } from './history';
import { keptInsideSpan, reserveKeptAddresses } from './kept-addresses';
import { insertLease, takeFree } from './lease-queries';
import { takeVlan } from './vlans';
import { lockPools, lockRange } from './locks';
import {
  type Block,
  type PoolRow,
  assignSubnets,
  checkPoolAccess,
  describeBlock,
  formatAddress,
  poolContaining,
  takeSpan,
} from './pool-space';
import { type ArType, type RangeSpec, parseArType, rangeSpecFromAr, registerReply } from './range-spec';
import {
  addressAt,
  describeRange,
  initFreeSpace,
  insertRange,
  overlappingRanges,
  rangeUsage,
  setRangeAttrs,
  spaceIdByName,
} from './range-queries';

export interface RegisterResult {
  rangeId: number;
  reply: Record<string, string>;
}

// How reconcile --fix and import register a range the driver did not: under the id oned already
// stores in the AR, as an observed range (oned's own addresses), and with their history event.
export interface RegisterOptions {
  rangeId?: number;
  observed?: boolean;
  event?: 'range_registered' | 'reconcile_range_registered' | 'range_imported';
  detail?: Record<string, unknown>;
  // recorded with the range beside the reply (the oned network and AR it was found in)
  attrs?: Record<string, string>;
  // oned's leases of the AR, recorded in the same transaction (before the kept addresses, which
  // then keep only what oned has not leased), one history row each
  leases?: ReadonlyArray<{ index: number; kind: 'lease' | 'allocation'; note: string; detail: Record<string, unknown> }>;
  leaseEvent?: 'reconcile_adopted' | 'lease_imported';
}

export async function registerAddressRange(
  db: Db,
  req: IpamRequest,
  ctx: ActionContext,
  options: RegisterOptions = {},
): Promise<RegisterResult> {
  const { ar } = req;
  const type = parseArType(ar.TYPE);
  const plan = carvePlan(ar, type);
  if (options.observed && plan.any) throw badRequest('an observed range must name its addresses (IP, IP6 or MAC and SIZE)');
  const hold = validateBeforeTheDatabase(ar, plan);
  return withTransaction(db, async () => {
    const placed = plan.any ? await carveFromPool(db, ar, type, plan, ctx) : await takeExplicitSpans(db, ar, ctx);
    const { pool, space, spaceId } = placed;
    // an explicit AR whose span holds what pgipam keeps out would give oned a SIZE that
    // get_address cannot fill: kept addresses at its ends are trimmed off (the reply may change
    // IP and SIZE: oned stores it), any left inside refuse it; ranges oned already has
    // (reconcile, import) are taken as they are
    const spec = !plan.any && !options.observed && options.rangeId === undefined ? await usableSpan(db, placed, ctx) : placed.spec;
    const attrs = pool ? { ...poolAttributes(pool), ...placed.attrs } : placed.attrs;
    const extraReply: Record<string, string> = {};
    if (placed.subnets.length) extraReply.PGIPAM_SUBNET = placed.subnets.map(describeBlock).join(' ');
    if (pool) extraReply.PGIPAM_POOL = pool.name;

    const id = await insertRangeOrExplainOverlap(db, spaceId, space, spec, {
      holdSeconds: hold ?? pool?.holdSeconds ?? 0,
      requestId: ctx.requestId,
      poolId: pool?.id ?? null,
      platform: ctx.platform,
      ...(options.rangeId !== undefined && { id: options.rangeId }),
      observed: options.observed ?? false,
    });
    if (placed.subnets.length) await assignSubnets(db, id);
    // a network carved from a pool with a VLAN pool gets its own VLAN in the same transaction
    if (plan.any && pool?.vlanPoolId != null) Object.assign(extraReply, await takeVlan(db, pool.vlanPoolId, ar, { id, spaceId }, ctx));
    const reply = { ...registerReply(attrs, spec, { ipamMad: ar.IPAM_MAD ?? 'pgipam', rangeId: String(id), space }), ...extraReply };
    reply.PGIPAM_RANGE_ID = String(id);
    // oned's internal IPAM stores no IPAM_MAD: an observed range says what it is instead
    if (options.observed) delete reply.IPAM_MAD;
    Object.assign(reply, options.attrs);
    for (const [k, v] of Object.entries(reply)) checkTemplateValue(k, v);
    await setRangeAttrs(db, id, reply);
    await initFreeSpace(db, id, spec.size);
    const range = (await lockRange(db, id))!;
    for (const l of options.leases ?? []) {
      if (l.index >= spec.size || !(await takeFree(db, id, l.index, l.index)))
        throw badRequest(`lease at index ${l.index} of ${describeRange(range)} is outside the range or listed twice`);
      await insertLease(db, id, [l.index, l.index], l.kind, ctx, { note: l.note });
    }
    // oned decides what an observed range's gateway and network addresses are for
    if (!options.observed) await reserveKeptAddresses(db, range, spec, 0, spec.size - 1, ctx);
    await recordHistory(db, ctx, {
      event: options.event ?? 'range_registered',
      spaceId,
      rangeId: id,
      firstIdx: 0,
      size: spec.size,
      address: addressAt(range, 0),
      detail: { type: spec.type, pool: pool?.name ?? null, subnets: extraReply.PGIPAM_SUBNET ?? null, attrs: reply, ...options.detail },
    });
    for (const l of options.leases ?? []) {
      await recordHistory(db, ctx, {
        event: options.leaseEvent ?? 'lease_imported',
        spaceId,
        rangeId: id,
        firstIdx: l.index,
        size: 1,
        address: addressAt(range, l.index),
        detail: { kind: l.kind, ...l.detail },
      });
    }
    ctx.log(`registered ${describeRange(range)}${extraReply.PGIPAM_SUBNET ? ` on ${extraReply.PGIPAM_SUBNET} of pool ${pool!.name}` : ''}`);
    return { rangeId: id, reply };
  });
}

// The part of an explicit AR that holds no kept address (see above), or a refusal naming them.
async function usableSpan(db: Db, placed: Placement, ctx: ActionContext): Promise<RangeSpec> {
  const spec = placed.spec;
  const kept = await keptInsideSpan(db, spec, placed.spaceId, placed.pool?.dns ?? '');
  if (!kept.count) return spec;
  const runs = [...kept.runs];
  const head = runs[0]![0] === 0 ? runs.shift()![1] + 1 : 0;
  const tail = runs.length && runs[runs.length - 1]![1] === spec.size - 1 ? spec.size - runs.pop()![0] : 0;
  const size = spec.size - head - tail;
  if (runs.length || size < 1)
    throw badRequest(
      `the AR's ${spec.size} addresses ${describeSpan(spec)} include ${kept.count} that pgipam keeps out of allocation (${kept.named.join(', ')}${kept.named.length < kept.count ? ', ...' : ''}): only ${spec.size - kept.count} could be leased while oned counts ${spec.size}; start the AR after them or end it before`,
    );
  const trimmed: RangeSpec = {
    ...spec,
    size,
    ip4First: spec.ip4First === null ? null : spec.ip4First + head,
    ip6First: spec.ip6First === null ? null : spec.ip6First + BigInt(head),
    macFirst: spec.macFirst === null ? null : spec.macFirst + head,
  };
  ctx.log(
    `the AR ${describeSpan(spec)} starts or ends with addresses pgipam keeps out (${kept.named.join(', ')}): registered as ${describeSpan(trimmed)}, SIZE ${size}`,
  );
  placed.attrs = { ...placed.attrs, SIZE: String(size) };
  return trimmed;
}

function describeSpan(spec: RangeSpec): string {
  return spec.ip4First !== null || spec.ip6First !== null ? `${addressAt(spec, 0)} - ${addressAt(spec, spec.size - 1)}` : '';
}

// Everything that can be checked before the database is touched; returns the AR's hold time.
function validateBeforeTheDatabase(ar: Record<string, string>, plan: CarvePlan): number | null {
  if (!plan.any) rangeSpecFromAr(ar);
  if (ar.PGIPAM_POOL !== undefined) checkName('AR PGIPAM_POOL', ar.PGIPAM_POOL);
  if (ar.SIZE !== undefined) parseCount(ar.SIZE, 'AR SIZE', 1, MAX_AR_SIZE);
  for (const [k, v] of Object.entries(ar)) if (!ONED_COMPUTED_ATTRIBUTES.has(k)) checkTemplateValue(k, v);
  return ar.PGIPAM_HOLD_SECONDS === undefined ? null : parseCount(ar.PGIPAM_HOLD_SECONDS, 'AR PGIPAM_HOLD_SECONDS', 0, 366 * 86400);
}

// Where the new range lies: its spec, the pool it belongs to, and the pool subnets it takes.
interface Placement {
  spec: RangeSpec;
  attrs: Record<string, string>;
  pool: PoolRow | null;
  subnets: Block[];
  space: string;
  spaceId: number;
}

// An AR that leaves its addresses to pgipam: carve them from the named (or default) pool.
async function carveFromPool(db: Db, ar: Record<string, string>, type: ArType, plan: CarvePlan, ctx: ActionContext): Promise<Placement> {
  const pool = await resolvePool(db, ar.PGIPAM_POOL ?? null, plan);
  if (ar.PGIPAM_SPACE !== undefined && ar.PGIPAM_SPACE !== pool.spaceName)
    throw badRequest(`AR PGIPAM_SPACE ${ar.PGIPAM_SPACE} differs from the space ${pool.spaceName} of pool ${pool.name}`);
  await checkPoolAccess(db, pool, ctx.platform);
  const carved = await carveForAr(db, pool, ar, type, plan);
  const attrs = { ...ar, ...carved.attrs };
  return { spec: rangeSpecFromAr(attrs), attrs, pool, subnets: carved.blocks, space: pool.spaceName, spaceId: pool.spaceId };
}

// An explicit AR: inside a pool it takes its span out of the pool (refused when taken, or when the
// platform may not use that pool); outside every pool it takes nothing.
async function takeExplicitSpans(db: Db, ar: Record<string, string>, ctx: ActionContext): Promise<Placement> {
  const spec = rangeSpecFromAr(ar);
  const space = spaceName(ar);
  const spaceId = await spaceIdByName(db, space);
  const inPools: Array<{ pool: PoolRow; span: ReturnType<typeof explicitSpans>[number] }> = [];
  for (const span of explicitSpans(spec, ar)) {
    const p = await poolContaining(db, spaceId, span.family, span.first, span.last, ctx.platform);
    if (p) inPools.push({ pool: p, span });
  }
  await lockPools(
    db,
    inPools.map((x) => x.pool.id),
  );
  const subnets: Block[] = [];
  for (const { pool: p, span } of inPools) {
    if (ar.PGIPAM_POOL !== undefined && ar.PGIPAM_POOL !== p.name)
      throw badRequest(`${formatAddress(span.family, span.first)} lies in pool ${p.name}, not in PGIPAM_POOL ${ar.PGIPAM_POOL}`);
    await checkPoolAccess(db, p, ctx.platform);
    subnets.push(...(await takeSpan(db, p, span.family, span.first, span.last)));
  }
  return { spec, attrs: { ...ar }, pool: inPools[0]?.pool ?? null, subnets, space, spaceId };
}

async function insertRangeOrExplainOverlap(
  db: Db,
  spaceId: number,
  space: string,
  spec: RangeSpec,
  o: Parameters<typeof insertRange>[3],
): Promise<number> {
  await db.query('savepoint register');
  try {
    return await insertRange(db, spaceId, spec, o);
  } catch (e) {
    if ((e as { code?: string }).code !== '23P01') throw e;
    await db.query('rollback to savepoint register');
    throw await overlapError(db, spaceId, space, spec);
  }
}

export async function overlapError(db: Db, spaceId: number, space: string, spec: RangeSpec): Promise<IpamError> {
  const spans: Parameters<typeof overlappingRanges>[2] = {};
  if (spec.ip4First !== null) spans.ip4 = [spec.ip4First, spec.ip4First + spec.size];
  if (spec.ip6First !== null) spans.ip6 = [spec.ip6First, spec.ip6First + BigInt(spec.size)];
  if (spec.macFirst !== null) spans.mac = [spec.macFirst, spec.macFirst + spec.size];
  const others = await overlappingRanges(db, spaceId, spans);
  const names = others.map(describeRange).join('; ') || 'another range';
  // A range with nothing leased may be left over from a registration oned never completed (it
  // gave up after 90 s, or refused the reply): say how to remove it.
  const idle: number[] = [];
  for (const o of others) {
    const u = await rangeUsage(db, o.id);
    if (!u.byKind.lease && !u.byKind.allocation) idle.push(o.id);
  }
  const hint =
    idle.length === 1
      ? `; if it is left over from a registration OpenNebula did not complete, remove it with "pgipam range rm ${idle[0]}"`
      : idle.length > 1
        ? `; if ranges ${idle.join(', ')} are left over from registrations OpenNebula did not complete, remove them with "pgipam range rm <id>"`
        : '';
  return new IpamError(
    'RANGE_OVERLAP',
    `the AR overlaps ${names} in address space "${space}": choose other addresses, or set PGIPAM_SPACE for a separate space${hint}`,
  );
}
