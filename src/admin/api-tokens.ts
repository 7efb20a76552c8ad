// The HTTP API's bearer tokens (pgipam token add|list|revoke): each maps to a platform that has a
// database role of its own, and `pgipam serve` runs a request under that role, so row-level
// security decides what it may see and change, as for the platform's front-ends. A token is 256
// random bits shown once; only its SHA-256 is kept (nobody can guess 256 random bits, so no key
// stretching is needed, and a lookup per request stays one index probe).
import crypto from 'node:crypto';
import { escapeIdentifier } from 'pg';
import { type Db, withTransaction } from '../db/client';
import { IpamError } from '../errors';
import { checkName } from '../names';

const TOKEN_PREFIX = 'pgipam_';

export const tokenHash = (token: string): Buffer => crypto.createHash('sha256').update(token, 'utf8').digest();

export interface TokenInfo {
  name: string;
  platform: string;
  createdAt: Date;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
}

// Creates a token for a platform; returns it (the only time it can be read). The role that runs
// this (the one `pgipam serve` connects as) is made a member of the platform's role, so that the
// server may SET ROLE to it; a superuser needs no membership.
export async function addToken(db: Db, name: string, platform: string): Promise<{ token: string; info: TokenInfo }> {
  checkName('token name', name);
  return withTransaction(db, async () => {
    const { rows } = await db.query<{ role_name: string | null }>('select role_name from pgipam.platform where name = $1', [platform]);
    if (!rows[0]) throw new IpamError('NOT_FOUND', `no platform "${platform}": add it with "pgipam platform add ${platform}"`);
    const role = rows[0].role_name;
    if (!role)
      throw new IpamError(
        'BAD_REQUEST',
        `platform "${platform}" has no database role of its own, so row-level security cannot confine its API requests: add a platform with a role ("pgipam platform add NAME")`,
      );
    const token = TOKEN_PREFIX + crypto.randomBytes(32).toString('base64url');
    const { rows: made } = await db
      .query<{ created_at: Date }>('insert into pgipam.api_token (name, platform, token_sha256) values ($1, $2, $3) returning created_at', [
        name,
        platform,
        tokenHash(token),
      ])
      .catch((e: { constraint?: string }) => {
        if (e.constraint === 'api_token_name_unique') throw new IpamError('CONFLICT', `a token named "${name}" exists already`);
        throw e;
      });
    const { rows: su } = await db.query<{ rolsuper: boolean }>('select rolsuper from pg_catalog.pg_roles where rolname = current_user');
    if (!su[0]?.rolsuper) await db.query(`grant ${escapeIdentifier(role)} to current_user`);
    return { token, info: { name, platform, createdAt: made[0]!.created_at, revokedAt: null, lastUsedAt: null } };
  });
}

export async function listTokens(db: Db): Promise<TokenInfo[]> {
  const { rows } = await db.query<{ name: string; platform: string; created_at: Date; revoked_at: Date | null; last_used_at: Date | null }>(
    'select name, platform, created_at, revoked_at, last_used_at from pgipam.api_token order by name',
  );
  return rows.map((r) => ({
    name: r.name,
    platform: r.platform,
    createdAt: r.created_at,
    revokedAt: r.revoked_at,
    lastUsedAt: r.last_used_at,
  }));
}

export async function revokeToken(db: Db, name: string): Promise<void> {
  const { rowCount } = await db.query('update pgipam.api_token set revoked_at = now() where name = $1 and revoked_at is null', [name]);
  if (!rowCount) throw new IpamError('NOT_FOUND', `no live token named "${name}"`);
}

export interface TokenGrant {
  name: string;
  platform: string;
  role: string;
}

// The platform a bearer token acts for, or null (unknown, revoked, or its platform lost its role).
export async function resolveToken(db: Db, token: string): Promise<TokenGrant | null> {
  if (!token.startsWith(TOKEN_PREFIX) || token.length > 100) return null;
  // last_used_at is written at most once a minute per token: a busy client costs no write per request
  const { rows } = await db.query<{ name: string; platform: string; role_name: string | null }>(
    `with t as (
       select t.id, t.name, t.platform, p.role_name, t.last_used_at from pgipam.api_token t join pgipam.platform p on p.name = t.platform
        where t.token_sha256 = $1 and t.revoked_at is null),
     touched as (
       update pgipam.api_token a set last_used_at = now() from t
        where a.id = t.id and (t.last_used_at is null or t.last_used_at < now() - interval '1 minute'))
     select name, platform, role_name from t`,
    [tokenHash(token)],
  );
  const r = rows[0];
  return r && r.role_name ? { name: r.name, platform: r.platform, role: r.role_name } : null;
}
