// Address spaces: ranges of one space may not overlap; separate spaces hold overlapping private networks.
import type { Db } from '../db/client';
import { withTransaction } from '../db/client';
import { IpamError } from '../errors';
import { checkName } from '../names';
import type { ActionContext } from '../allocator/context';
import { recordHistory } from '../allocator/history';

export interface SpaceInfo {
  id: number;
  name: string;
  description: string;
  ranges: number;
  createdAt: Date;
}

export async function listSpaces(db: Db): Promise<SpaceInfo[]> {
  const { rows } = await db.query<{ id: string; name: string; description: string; ranges: string; created_at: Date }>(
    `select s.id::text, s.name, s.description, count(r.id)::text as ranges, s.created_at
       from pgipam.space s left join pgipam.address_range r on r.space_id = s.id
      group by s.id order by s.name`,
  );
  return rows.map((r) => ({
    id: Number(r.id),
    name: r.name,
    description: r.description,
    ranges: Number(r.ranges),
    createdAt: r.created_at,
  }));
}

export async function addSpace(db: Db, name: string, description: string, ctx: ActionContext): Promise<number> {
  checkName('space name', name);
  return withTransaction(db, async () => {
    const { rows } = await db.query<{ id: string }>(
      'insert into pgipam.space (name, description) values ($1, $2) on conflict (name) do nothing returning id::text',
      [name, description],
    );
    if (!rows[0]) throw new IpamError('CONFLICT', `address space "${name}" already exists`);
    await recordHistory(db, ctx, { event: 'space_created', spaceId: Number(rows[0].id), rangeId: null, detail: { name, description } });
    return Number(rows[0].id);
  });
}
