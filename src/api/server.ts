// pgipam serve: the HTTP API and the web view, for what shares the address space with OpenNebula
// (bare metal, VIPs, DNS and CMDB, provisioning tools). Fastify validates every request against
// its route's JSON schema, and the OpenAPI document is generated from the same schemas.
//
// Every request runs as a platform: its bearer token (or the web view's cookie) names a platform
// with a database role of its own, and the request's connection takes that role (SET ROLE) for
// the request. Row-level security then decides what it sees and may change: one enforcement, the
// same as for the platform's front-ends. Errors are problem+json (RFC 9457) with one clear line,
// never a stack trace.
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import swagger from '@fastify/swagger';
import type { Config } from '../config';
import { DbPool } from '../db/pool';
import { type IpamErrorCode, isIpamError } from '../errors';
import { translateDbError } from '../db/client';
import { PGIPAM_VERSION } from '../version';
import { type PlatformRequest, bearerToken, platformOf } from './platform-request';
import { apiRoutes } from './routes';
import { webRoutes } from './web';

export interface ServeOptions {
  config: Config;
  // connections to PostgreSQL (default 10)
  connections?: number;
  // largest request body (default 16 KiB: every request of this API is small)
  bodyLimit?: number;
}

declare module 'fastify' {
  interface FastifyRequest {
    platform?: PlatformRequest;
  }
}

const STATUS: Record<IpamErrorCode, number> = {
  BAD_REQUEST: 400,
  BAD_CONFIG: 500,
  RANGE_NOT_FOUND: 404,
  SPACE_NOT_FOUND: 404,
  NOT_FOUND: 404,
  RANGE_OVERLAP: 409,
  RANGE_MISMATCH: 409,
  NO_FREE_ADDRESS: 409,
  ADDRESS_IN_USE: 409,
  CONFLICT: 409,
  // a platform may not see what it may not use: the same answer as for what does not exist
  PERMISSION_DENIED: 404,
  DB_UNAVAILABLE: 503,
  DB_TIMEOUT: 503,
  DB_SCHEMA: 503,
  INTERNAL: 500,
};

const TITLES: Record<number, string> = {
  400: 'Bad request',
  401: 'Unauthorized',
  404: 'Not found',
  405: 'Method not allowed',
  409: 'Conflict',
  413: 'Request too large',
  415: 'Unsupported media type',
  429: 'Too many requests',
  500: 'Internal error',
  503: 'Database unavailable',
};

export function sendProblem(reply: FastifyReply, status: number, detail: string, code?: string): FastifyReply {
  return reply
    .code(status)
    .type('application/problem+json')
    .send({ type: 'about:blank', title: TITLES[status] ?? 'Error', status, detail, ...(code ? { code } : {}) });
}

export async function buildServer(o: ServeOptions): Promise<{ app: FastifyInstance; pool: DbPool }> {
  const pool = new DbPool(o.config, 'pgipam/serve', o.connections ?? 10);
  const app = Fastify({
    logger: false,
    bodyLimit: o.bodyLimit ?? 16 * 1024,
    // a slow or stuck client does not hold a connection for long
    connectionTimeout: 30_000,
    requestTimeout: 30_000,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false } },
  });
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'pgipam',
        version: PGIPAM_VERSION,
        description: "The address space of pgipam's PostgreSQL database, as one platform (the bearer token's) may see and change it.",
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });

  app.setErrorHandler((error, req, reply) => {
    const e = error as { validation?: unknown; statusCode?: number; message: string; code?: string };
    if (e.validation) return sendProblem(reply, 400, e.message);
    if (isIpamError(error)) return sendProblem(reply, STATUS[error.code], error.message, error.code);
    if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) return sendProblem(reply, e.statusCode, e.message);
    const err = translateDbError(error, o.config);
    req.log.error(err);
    return sendProblem(
      reply,
      STATUS[err.code] ?? 500,
      err.code === 'INTERNAL' ? 'the server could not do this (see its log)' : err.message,
      err.code,
    );
  });
  app.setNotFoundHandler((req, reply) => sendProblem(reply, 404, `no ${req.method} ${req.url.split('?')[0]} here`));

  // the platform a request acts for: every /api route but the document and health check needs it
  app.decorateRequest('platform', undefined);
  app.addHook('onRequest', async (req, reply) => {
    const path = req.url.split('?')[0]!;
    if (!path.startsWith('/api/') || path === '/api/v1/openapi.json' || path === '/api/v1/health') return;
    if (!bearerToken(req)) return sendProblem(reply, 401, 'a bearer token is needed: Authorization: Bearer <token> (pgipam token add)');
    const platform = await platformOf(pool, req);
    if (!platform) return sendProblem(reply, 401, 'the token is unknown or revoked');
    req.platform = platform;
  });

  app.get('/api/v1/health', { schema: { hide: true } }, async () => ({ status: 'ok', version: PGIPAM_VERSION }));
  app.get('/api/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  await app.register(apiRoutes, { prefix: '/api/v1' });
  await app.register(webRoutes, { pool });
  return { app, pool };
}
