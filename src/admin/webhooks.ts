// Where `pgipam serve` delivers a platform's events (pgipam webhook add|list|rm): each history row
// of the platform, in order of id, at least once, signed with the webhook's secret. What was
// delivered and when to try again are kept in pgipam.webhook, so a restart loses nothing.
import crypto from 'node:crypto';
import type { Db } from '../db/client';
import { IpamError, badRequest } from '../errors';

export interface WebhookInfo {
  id: number;
  platform: string;
  url: string;
  deliveredId: number;
  attempts: number;
  nextAttemptAt: Date;
  lastError: string | null;
}

export async function addWebhook(db: Db, platform: string, url: string, secret?: string): Promise<{ info: WebhookInfo; secret: string }> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw badRequest(`"${url}" is not a URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw badRequest('a webhook URL is http:// or https://');
  const s = secret ?? crypto.randomBytes(24).toString('base64url');
  const { rows: p } = await db.query('select 1 from pgipam.platform where name = $1', [platform]);
  if (!p.length) throw new IpamError('NOT_FOUND', `no platform "${platform}"`);
  // a new webhook starts at the newest event: it receives what happens from now on
  const { rows } = await db
    .query<{ id: string; delivered_id: string; next_attempt_at: Date }>(
      `insert into pgipam.webhook (platform, url, secret, delivered_id)
       values ($1, $2, $3, coalesce((select max(id) from pgipam.history), 0)) returning id::text, delivered_id::text, next_attempt_at`,
      [platform, url, s],
    )
    .catch((e: { constraint?: string }) => {
      if (e.constraint === 'webhook_unique') throw new IpamError('CONFLICT', `platform "${platform}" has that webhook already`);
      throw e;
    });
  const r = rows[0]!;
  return {
    secret: s,
    info: {
      id: Number(r.id),
      platform,
      url,
      deliveredId: Number(r.delivered_id),
      attempts: 0,
      nextAttemptAt: r.next_attempt_at,
      lastError: null,
    },
  };
}

export async function listWebhooks(db: Db): Promise<WebhookInfo[]> {
  const { rows } = await db.query<{
    id: string;
    platform: string;
    url: string;
    delivered_id: string;
    attempts: number;
    next_attempt_at: Date;
    last_error: string | null;
  }>(
    'select w.id::text, w.platform, w.url, w.delivered_id::text, w.attempts, w.next_attempt_at, w.last_error from pgipam.webhook w order by w.id',
  );
  return rows.map((r) => ({
    id: Number(r.id),
    platform: r.platform,
    url: r.url,
    deliveredId: Number(r.delivered_id),
    attempts: r.attempts,
    nextAttemptAt: r.next_attempt_at,
    lastError: r.last_error,
  }));
}

export async function removeWebhook(db: Db, id: number): Promise<void> {
  const { rowCount } = await db.query('delete from pgipam.webhook where id = $1', [id]);
  if (!rowCount) throw new IpamError('NOT_FOUND', `no webhook ${id}`);
}
