// A request of pgipam serve as the platform its token names: the token from the Authorization
// header (the API) or the web view's cookie, and a connection that has taken the platform's role
// for as long as the request runs (row-level security then confines it).
import type { FastifyRequest } from 'fastify';
import { escapeIdentifier } from 'pg';
import type { Db } from '../db/client';
import { type DbPool, leavesConnectionUnusable } from '../db/pool';
import type { ActionContext } from '../allocator/context';
import { type TokenGrant, resolveToken } from '../admin/api-tokens';
import { IpamError } from '../errors';

export interface PlatformRequest {
  // runs fn on a connection that has taken the token's platform's role, and gives it back
  asPlatform<T>(fn: (db: Db, ctx: ActionContext) => Promise<T>): Promise<T>;
  grant: TokenGrant;
}

export function bearerToken(req: FastifyRequest): string | null {
  const h = req.headers.authorization;
  if (h) return /^Bearer\s+(\S+)$/i.exec(h)?.[1] ?? null;
  const cookie = req.headers.cookie ?? '';
  const m = /(?:^|;\s*)pgipam_token=([^;]+)/.exec(cookie);
  return m ? decodeURIComponent(m[1]!) : null;
}

// The platform the request's token names, or null (no token, or an unknown or revoked one).
export async function platformOf(pool: DbPool, req: FastifyRequest): Promise<PlatformRequest | null> {
  const token = bearerToken(req);
  const grant = token ? await pool.use((db) => resolveToken(db, token)) : null;
  return grant ? platformRequest(pool, grant, req.id) : null;
}

export function platformRequest(pool: DbPool, grant: TokenGrant, requestId: string): PlatformRequest {
  return {
    grant,
    asPlatform: async (fn) => {
      const db = await pool.acquire();
      let broken = false;
      try {
        if (db.pgipamPooled)
          throw new IpamError(
            'BAD_CONFIG',
            'pgipam serve needs sessions of its own (a direct connection, or PgBouncer in session mode): a transaction pooler cannot keep the role a request runs as',
          );
        await db.query(`set role ${escapeIdentifier(grant.role)}`);
        return await fn(db, { requestId: `api:${requestId}`.slice(0, 40), platform: grant.platform, log: () => {} });
      } catch (e) {
        broken = leavesConnectionUnusable(e);
        throw e;
      } finally {
        // the role goes with the request: a connection is never handed on in another's role
        if (!broken) await db.query('reset role').catch(() => (broken = true));
        pool.release(db, broken);
      }
    },
  };
}
