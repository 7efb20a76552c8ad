// pgipam serve delivers each platform's events to its webhooks (admin/webhooks.ts): every history
// row of the platform, one POST each, in order of id, at least once. A 2xx moves the webhook's
// delivered_id past the event; anything else (or no answer in time) is tried again later, with
// the wait doubling from retryBaseMs up to five minutes, and nothing after it is sent before it
// (the order holds). All of that state is in pgipam.webhook, so a restart loses nothing, and a
// receiver that was down gets everything it missed. NOTIFY pgipam_history (migration 12) wakes
// the loop at once; a timer catches retries that fall due and notifications that never came.
//
// Each POST carries the event as JSON, X-Pgipam-Event-Id, and X-Pgipam-Signature:
// sha256=<hex HMAC-SHA256 of the body with the webhook's secret>, so a receiver can check it came
// from pgipam. The receiver should treat a repeated id as a duplicate (at least once).
import crypto from 'node:crypto';
import type { Config } from '../config';
import { type Db, connect } from '../db/client';
import type { DbPool } from '../db/pool';
import { type HistoryRow, events } from '../admin/lookups';
import { platformRequest } from './platform-request';

export interface DeliveryOptions {
  // first retry after this, doubling per failure (default 1000 ms), at most 300 s
  retryBaseMs?: number;
  // how long a receiver has to answer (default 10 s)
  timeoutMs?: number;
  // the timer's period, for retries that fall due (default 1000 ms)
  pollMs?: number;
  // events per webhook per round
  batch?: number;
}

interface DueWebhook {
  id: string;
  platform: string;
  url: string;
  secret: string;
  delivered_id: string;
  role_name: string | null;
}

export const signature = (secret: string, body: string) => `sha256=${crypto.createHmac('sha256', secret).update(body).digest('hex')}`;

export class WebhookDelivery {
  private timer: NodeJS.Timeout | undefined;
  private listener: Db | undefined;
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = false;
  private readonly o: Required<DeliveryOptions>;

  constructor(
    private readonly pool: DbPool,
    private readonly config: Config,
    options: DeliveryOptions = {},
  ) {
    this.o = { retryBaseMs: 1000, timeoutMs: 10_000, pollMs: 1000, batch: 50, ...options };
  }

  async start(): Promise<void> {
    this.timer = setInterval(() => this.kick(), this.o.pollMs);
    this.timer.unref();
    await this.listen();
    this.kick();
  }

  private async listen(): Promise<void> {
    if (this.stopped) return;
    try {
      const db = await connect(this.config, { applicationName: 'pgipam/serve-listen' });
      db.on('error', () => {});
      db.on('notification', () => this.kick());
      // a lost listener is made again; the timer delivers meanwhile
      db.on('end', () => {
        if (this.listener === db) this.listener = undefined;
        setTimeout(() => void this.listen(), 1000).unref();
      });
      await db.query('listen pgipam_history');
      this.listener = db;
    } catch {
      setTimeout(() => void this.listen(), 1000).unref();
    }
  }

  // Runs a round now, or right after the one under way.
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.round()
      .catch(() => {})
      .finally(() => {
        this.running = null;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    const l = this.listener;
    this.listener = undefined;
    await l?.end().catch(() => {});
    await this.running;
  }

  private async round(): Promise<void> {
    const due = await this.pool.use(async (db) => {
      const { rows } = await db.query<DueWebhook>(
        `select w.id::text, w.platform, w.url, w.secret, w.delivered_id::text, p.role_name
           from pgipam.webhook w join pgipam.platform p on p.name = w.platform
          where w.next_attempt_at <= now() order by w.id`,
      );
      return rows;
    });
    await Promise.all(due.map((w) => this.deliver(w)));
  }

  // The platform's events after what the webhook has, read as the platform's role (row-level
  // security, as for its API requests) or, for a platform without one, by its name.
  private pending(w: DueWebhook): Promise<HistoryRow[]> {
    const after = Number(w.delivered_id);
    if (!w.role_name) return this.pool.use((db) => events(db, after, this.o.batch, w.platform));
    const grant = { name: `webhook ${w.id}`, platform: w.platform, role: w.role_name };
    return platformRequest(this.pool, grant, `webhook-${w.id}`).asPlatform((db) => events(db, after, this.o.batch));
  }

  private async deliver(w: DueWebhook): Promise<void> {
    for (const e of await this.pending(w)) {
      if (this.stopped) return;
      const body = JSON.stringify(e);
      let failure: string | null = null;
      try {
        const res = await fetch(w.url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'user-agent': 'pgipam-webhook',
            'x-pgipam-event-id': String(e.id),
            'x-pgipam-signature': signature(w.secret, body),
          },
          body,
          signal: AbortSignal.timeout(this.o.timeoutMs),
        });
        await res.arrayBuffer().catch(() => {});
        if (res.status < 200 || res.status > 299) failure = `HTTP ${res.status}`;
      } catch (err) {
        failure = String((err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message).slice(0, 200);
      }
      if (failure !== null) {
        await this.pool.use((db) =>
          db.query(
            `update pgipam.webhook set attempts = attempts + 1, last_error = $2,
               next_attempt_at = now() + least(300000, $3::float8 * 2 ^ least(attempts, 16)) * interval '1 millisecond'
             where id = $1`,
            [w.id, `event ${e.id}: ${failure}`, this.o.retryBaseMs],
          ),
        );
        return;
      }
      await this.pool.use((db) =>
        db.query(
          'update pgipam.webhook set delivered_id = greatest(delivered_id, $2), attempts = 0, last_error = null, next_attempt_at = now() where id = $1',
          [w.id, e.id],
        ),
      );
    }
  }
}
