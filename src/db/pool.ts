// Connections for a long-running process (pgipam serve): db/client.ts's connect (every host of the
// URL, TLS, target_session_attrs, timeouts, the schema check), kept open and shared. pg.Pool
// cannot make its connections that way, so this is a small pool of its own: at most `max`
// connections, callers queue for one beyond that, and a connection that failed is closed rather
// than handed out again.
import type { Config } from '../config';
import { type Db, connect } from './client';

// Whether an error may have left the connection broken or in a state nobody should inherit (an
// error without a code, a lost connection, a server going away): such a connection is closed.
export function leavesConnectionUnusable(e: unknown): boolean {
  const code = (e as { code?: string }).code;
  return !code || code === 'DB_UNAVAILABLE' || /^(08|57P|E[A-Z])/.test(code);
}

export class DbPool {
  private readonly idle: Db[] = [];
  private readonly waiting: Array<(db: Db | Error) => void> = [];
  private open = 0;
  private closed = false;

  constructor(
    private readonly config: Config,
    private readonly applicationName: string,
    private readonly max = 10,
  ) {}

  async acquire(): Promise<Db> {
    if (this.closed) throw new Error('the connection pool is closed');
    const idle = this.idle.pop();
    if (idle) return idle;
    if (this.open >= this.max) {
      const got = await new Promise<Db | Error>((resolve) => this.waiting.push(resolve));
      if (got instanceof Error) throw got;
      return got;
    }
    this.open++;
    try {
      const db = await connect(this.config, { applicationName: this.applicationName });
      db.on('error', () => {});
      return db;
    } catch (e) {
      this.open--;
      throw e;
    }
  }

  // broken: the connection failed or is in a state nobody should inherit; it is closed
  release(db: Db, broken = false): void {
    if (broken || this.closed) {
      this.open--;
      void db.end().catch(() => {});
      // someone waiting gets a fresh connection instead
      const next = this.waiting.shift();
      if (next && !this.closed) this.acquire().then(next, next);
      return;
    }
    const next = this.waiting.shift();
    if (next) next(db);
    else this.idle.push(db);
  }

  async use<T>(fn: (db: Db) => Promise<T>): Promise<T> {
    const db = await this.acquire();
    let broken = false;
    try {
      return await fn(db);
    } catch (e) {
      broken = leavesConnectionUnusable(e);
      throw e;
    } finally {
      this.release(db, broken);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.waiting.splice(0)) w(new Error('the connection pool is closed'));
    await Promise.all(this.idle.splice(0).map((db) => db.end().catch(() => {})));
  }
}
