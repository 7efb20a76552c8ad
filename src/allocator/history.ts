// The append-only history: one row per change. Actor and time are stamped by the database
// (migration 4); the event names are the ones below and nothing else.
import type { Db } from '../db/client';
import type { ActionContext } from './context';
import { PGIPAM_VERSION } from '../version';

export const HISTORY_EVENTS = [
  'range_registered',
  'range_unregistered',
  'range_removed',
  'range_resized',
  'address_leased',
  'address_allocated',
  'address_freed',
  'address_reserved',
  'address_unreserved',
  'space_created',
  'pool_created',
  'pool_changed',
  'pool_removed',
  'platform_added',
  'platform_removed',
  'platform_granted',
  'platform_revoked',
  'history_pruned',
  // VLAN pools (allocator/vlans.ts, admin/vlan-pools.ts)
  'vlan_taken',
  'vlan_returned',
  'vlan_reserved',
  'vlan_unreserved',
  'vlan_pool_created',
  'vlan_pool_changed',
  'vlan_pool_removed',
  // pgipam reconcile --fix (admin/reconcile.ts), each with the oned network, AR and owner
  'reconcile_adopted',
  'reconcile_freed',
  'reconcile_range_removed',
  'reconcile_range_registered',
  // pgipam import (admin/import.ts)
  'range_imported',
  'lease_imported',
  'lease_import_removed',
] as const;
export type HistoryEventName = (typeof HISTORY_EVENTS)[number];

export interface HistoryEvent {
  event: HistoryEventName;
  spaceId: number | null;
  rangeId: number | null;
  firstIdx?: number | null;
  size?: number | null;
  address?: string | null;
  detail?: Record<string, unknown>;
}

export async function recordHistory(db: Db, ctx: ActionContext, e: HistoryEvent): Promise<void> {
  await db.query(
    `insert into pgipam.history (event, space_id, range_id, first_idx, size, address, platform, request_id, detail, pgipam_version)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
    [
      e.event,
      e.spaceId,
      e.rangeId,
      e.firstIdx ?? null,
      e.size ?? null,
      e.address ?? null,
      ctx.platform,
      ctx.requestId,
      JSON.stringify(e.detail ?? {}),
      PGIPAM_VERSION,
    ],
  );
}
