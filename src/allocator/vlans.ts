// VLAN IDs for carved networks (issue 12, migration 9): a range carved from a pool that names a
// VLAN pool takes the lowest free ID of that VLAN pool (or the VLAN_ID its AR names, when free in
// the domain) in the registration's transaction, and gives it back when it is removed. The
// database functions do the taking and returning, past row-level security, and hold the rule:
// one holder per VLAN ID per domain.
import type { Db } from '../db/client';
import { badRequest } from '../errors';
import type { ActionContext } from './context';
import { recordHistory } from './history';
import type { RangeRow } from './range-queries';

export interface VlanPoolRow {
  id: number;
  name: string;
  domain: string;
  bridge: string | null;
  phydev: string | null;
  vnMad: string | null;
  restricted: boolean;
}

export async function getVlanPool(db: Db, id: number): Promise<VlanPoolRow | null> {
  const { rows } = await db.query<{
    id: string;
    name: string;
    domain: string;
    bridge: string | null;
    phydev: string | null;
    vn_mad: string | null;
    restricted: boolean;
  }>('select id::text, name, domain, bridge, phydev, vn_mad, restricted from pgipam.vlan_pool where id = $1', [id]);
  const r = rows[0];
  return r
    ? { id: Number(r.id), name: r.name, domain: r.domain, bridge: r.bridge, phydev: r.phydev, vnMad: r.vn_mad, restricted: r.restricted }
    : null;
}

// "br{vlan}" with the ID in place.
export const renderVlanTemplate = (template: string, vlan: number) => template.replace(/\{vlan\}/g, String(vlan));

// Takes the range's VLAN ID and returns the attributes the reply carries: VLAN_ID and the VLAN
// pool's BRIDGE, PHYDEV and VN_MAD (the AR's own override them for every NIC leased from it).
export async function takeVlan(
  db: Db,
  vlanPoolId: number,
  ar: Record<string, string>,
  range: Pick<RangeRow, 'id' | 'spaceId'>,
  ctx: ActionContext,
): Promise<Record<string, string>> {
  let wanted: number | null = null;
  if (ar.VLAN_ID !== undefined) {
    if (!/^\d{1,4}$/.test(ar.VLAN_ID) || Number(ar.VLAN_ID) < 1 || Number(ar.VLAN_ID) > 4094)
      throw badRequest(`AR VLAN_ID "${ar.VLAN_ID.slice(0, 20)}" is not a VLAN ID from 1 to 4094`);
    wanted = Number(ar.VLAN_ID);
  }
  const { rows } = await db.query<{ id: number }>('select pgipam.vlan_take($1::int8, $2::int4, $3::int8) as id', [
    vlanPoolId,
    wanted,
    range.id,
  ]);
  const id = rows[0]!.id;
  const pool = (await getVlanPool(db, vlanPoolId))!;
  const attrs: Record<string, string> = { VLAN_ID: String(id) };
  if (pool.bridge) attrs.BRIDGE = renderVlanTemplate(pool.bridge, id);
  if (pool.phydev) attrs.PHYDEV = renderVlanTemplate(pool.phydev, id);
  if (pool.vnMad) attrs.VN_MAD = renderVlanTemplate(pool.vnMad, id);
  await recordHistory(db, ctx, {
    event: 'vlan_taken',
    spaceId: range.spaceId,
    rangeId: range.id,
    detail: { vlan_id: id, domain: pool.domain, vlan_pool: pool.name, asked: wanted },
  });
  return attrs;
}

// Gives the range's VLAN IDs back (before the range row goes: the foreign key insists).
export async function releaseRangeVlans(db: Db, range: Pick<RangeRow, 'id' | 'spaceId'>, ctx: ActionContext): Promise<number[]> {
  const { rows } = await db.query<{ domain: string; vlan_id: number }>('select domain, vlan_id from pgipam.vlan_release_range($1::int8)', [
    range.id,
  ]);
  for (const r of rows)
    await recordHistory(db, ctx, {
      event: 'vlan_returned',
      spaceId: range.spaceId,
      rangeId: range.id,
      detail: { vlan_id: r.vlan_id, domain: r.domain },
    });
  return rows.map((r) => r.vlan_id);
}
