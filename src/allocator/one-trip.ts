// get_address, allocate_address and free_address in one round trip each: a call of the action's
// function of migration 11, outside any transaction (it commits by itself). The function does
// the common, successful case with the transactional path's locks and writes, and declines
// (SQLSTATE PI100, its work rolled back) whatever needs a decision: no range, an AR that does not
// describe it, a full range, an address taken or on hold, a reservation, a MAC to record. Then,
// and when the request does not parse, these return null and the caller runs the transactional
// path (get-address.ts and its siblings), which words every refusal. So this file only decides
// what to send; it never refuses anything itself.
//
// An action process saves four round trips and the schema check's (the function compares the
// schema version itself), about half of its work after connecting (npm run bench).
import { escapeLiteral } from 'pg';
import { type Db, pooledSettings, queryRetryingOnLoss } from '../db/client';
import { SCHEMA_VERSION } from '../db/schema';
import { PGIPAM_VERSION } from '../version';
import type { IpamRequest } from '../ipam-request';
import type { ActionContext } from './context';
import { type ArReference, type AddressAsk, parseRequest } from './parsed-request';
import { lockTimeout } from './locks';
import { rangeLookup } from './range-resolution';
import { hasSlaac } from './range-spec';

type Json = Record<string, string | number | boolean>;

// What the function needs to know of the AR, parsed; null when the transactional path is needed
// (a field that does not parse gets its refusal there).
function arJson(ar: ArReference): Json | null {
  const j: Json = {};
  const key = rangeLookup(ar);
  if ('rangeId' in key) j.range_id = key.rangeId;
  else {
    j.space = key.space;
    if (key.ip4 !== undefined) j.find_ip4 = key.ip4;
    else if (key.ip6 !== undefined) j.find_ip6 = key.ip6.toString();
    else j.find_mac = key.mac!;
  }
  if (ar.type) {
    // SLAAC prefixes are compared by the transactional path only
    if (hasSlaac(ar.type.value())) return null;
    j.type = ar.type.value();
  }
  if (ar.ip4) j.ip4 = ar.ip4.value();
  if (ar.ip6) j.ip6 = ar.ip6.value().toString();
  if (ar.mac) j.mac = ar.mac.value();
  if (ar.spaceGiven) {
    j.space_given = true;
    j.space = ar.space.value();
  }
  if (ar.size !== null) j.size = ar.size;
  return j;
}

function addressJson(address: AddressAsk): Json {
  const j: Json = {};
  if (address.ip4) j.ip4 = address.ip4.value();
  // oned 7.5.80 sends IP6 = "0": not an address, so it names nothing (requested-address.ts)
  const ip6 = address.ip6?.valueOrNull();
  if (ip6 !== undefined && ip6 !== null) j.ip6 = ip6.toString();
  if (address.mac) j.mac = address.mac.value();
  return j;
}

// A token per action: written into the history rows the call writes, so that a call asked again
// after a lost reply finds out whether the first committed. Unique, not secret: Math.random
// spares the process node:crypto's load, and 62 bits make two actions sharing one unlikely beyond
// concern (they would only wait for each other, and a retry could see the other's history rows).
function actionToken(): string {
  return (BigInt(Math.floor(Math.random() * 2 ** 31)) * 2n ** 31n + BigInt(Math.floor(Math.random() * 2 ** 31))).toString();
}

interface Prepared {
  ar: Json;
  address: Json;
  count: number;
}

// needsIp: allocate and free name their address by IP here (oned always sends it for the
// IPv4-bearing ranges this path serves), so that the log names it as the transactional path does
function prepare(req: IpamRequest, needsIp = false): Prepared | null {
  try {
    const { ar, address } = parseRequest(req);
    if (needsIp && !address.ip4) return null;
    const arj = arJson(ar);
    return arj ? { ar: arj, address: addressJson(address), count: address.count.value() } : null;
  } catch {
    return null;
  }
}

// Runs the function; null when it declines, or a deadlock broke it (the transactional path
// retries). Behind a transaction pooler (PgBouncer), which keeps no session settings, the call
// goes as one simple query that sets its own timeouts first: statements of one query message are
// one transaction, rolled back whole when the call fails, so the pooled connection is left clean.
async function call<R extends Record<string, unknown>>(
  db: Db,
  fn: 'get_address' | 'allocate_address' | 'free_address',
  ctx: ActionContext,
  p: Prepared,
): Promise<R[] | null> {
  const token = actionToken();
  const withAddress = fn !== 'get_address';
  const args = (retry: boolean): unknown[] => [
    SCHEMA_VERSION,
    ctx.platform,
    ctx.requestId,
    token,
    retry,
    PGIPAM_VERSION,
    JSON.stringify(p.ar),
    ...(withAddress ? [JSON.stringify(p.address)] : []),
    p.count,
  ];
  const casts = ['', '', '', '::int8', '', '', '::jsonb', ...(withAddress ? ['::jsonb'] : []), '::int8'];
  const statement = (retry: boolean) => {
    const values = args(retry);
    if (!db.pgipamPooled || !db.pgipamConfig)
      return { text: `select * from pgipam.one_trip_${fn}(${values.map((_, i) => `$${i + 1}${casts[i]}`).join(', ')})`, values };
    const literals = values.map((v, i) => (typeof v === 'string' ? escapeLiteral(v) : String(v)) + casts[i]);
    return { text: `${pooledSettings(db.pgipamConfig)}select * from pgipam.one_trip_${fn}(${literals.join(', ')})` };
  };
  try {
    const { rows } = await queryRetryingOnLoss<R>(db, statement);
    return rows;
  } catch (e) {
    const code = (e as { code?: string }).code;
    // PI100: declined; 40P01: deadlock; 42883/42P01/3F000: no such function (a schema of another
    // version, or none: the transactional path's schema check says which)
    if (code === 'PI100' || code === '40P01' || code === '42883' || code === '42P01' || code === '3F000') return null;
    // the range's lock (the only lock these calls wait for) stayed held for lock_timeout_ms
    throw lockTimeout(e, db, p.ar.range_id !== undefined ? `range ${p.ar.range_id}` : 'the range the AR names');
  }
}

interface IndexRow extends Record<string, unknown> {
  range_id: string;
  first_idx: string | null;
  address: string;
}

export async function getAddressOneTrip(
  db: Db,
  req: IpamRequest,
  ctx: ActionContext,
): Promise<{ rangeId: number; index: number; size: number; ip: string } | null> {
  const p = prepare(req);
  const rows = p && (await call<IndexRow>(db, 'get_address', ctx, p));
  const r = rows?.[0];
  if (!p || !r) return null;
  ctx.log(`leased ${r.address}${p.count > 1 ? ` + ${p.count - 1}` : ''} from range ${r.range_id}`);
  return { rangeId: Number(r.range_id), index: Number(r.first_idx), size: p.count, ip: r.address };
}

export async function allocateAddressOneTrip(
  db: Db,
  req: IpamRequest,
  ctx: ActionContext,
): Promise<{ rangeId: number; index: number; size: number; ip: string; wasHeld: boolean } | null> {
  const p = prepare(req, true);
  const rows = p && (await call<IndexRow>(db, 'allocate_address', ctx, p));
  const r = rows?.[0];
  if (!p || !r) return null;
  ctx.log(`allocated ${r.address}${p.count > 1 ? ` + ${p.count - 1}` : ''} in range ${r.range_id}`);
  return { rangeId: Number(r.range_id), index: Number(r.first_idx), size: p.count, ip: r.address, wasHeld: false };
}

interface FreeRow extends Record<string, unknown> {
  range_id: string;
  hold_seconds: number;
  first_idx: string | null;
  last_idx: string | null;
  first_address: string | null;
  last_address: string | null;
}

export async function freeAddressOneTrip(db: Db, req: IpamRequest, ctx: ActionContext): Promise<{ rangeId: number; freed: number } | null> {
  const p = prepare(req, true);
  const rows = p && (await call<FreeRow>(db, 'free_address', ctx, p));
  if (!p || !rows?.length) return null;
  const rangeId = Number(rows[0]!.range_id);
  const text = req.address.IP!;
  const parts = rows.filter((r) => r.first_idx !== null).sort((a, b) => Number(a.first_idx) - Number(b.first_idx));
  if (!parts.length) {
    ctx.log(`${text} was already free in range ${rangeId}`);
    return { rangeId, freed: 0 };
  }
  const freed = parts.reduce((n, r) => n + Number(r.last_idx) - Number(r.first_idx) + 1, 0);
  const spans = parts.map((r) => (r.first_address === r.last_address ? r.first_address : `${r.first_address} - ${r.last_address}`));
  const hold = rows[0]!.hold_seconds;
  ctx.log(
    `freed ${p.count === 1 ? text : `${spans.join(', ')} (${freed} of the ${p.count} addresses from ${text})`} in range ${rangeId}${hold > 0 ? ` (on hold for ${hold}s)` : ''}`,
  );
  return { rangeId, freed };
}
