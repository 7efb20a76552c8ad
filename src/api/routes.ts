// The JSON routes of pgipam serve, under /api/v1. Each declares its schema (fastify validates
// requests against it, and the OpenAPI document is generated from it) and runs as the token's
// platform (server.ts): what row-level security hides from the platform is "not found" here.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Db } from '../db/client';
import { IpamError } from '../errors';
import type { ActionContext } from '../allocator/context';
import { getPool, listPoolRows } from '../allocator/pool-space';
import { getRange } from '../allocator/range-queries';
import { type OwnedLease, leaseFree, leaseGet, leaseTake, ownedLeases } from '../admin/owned-leases';
import { poolInfo } from '../admin/pool-admin';
import { listLeases, listRanges, rangeInfo } from '../admin/range-admin';
import { listSpaces } from '../admin/spaces';
import { events, find, history } from '../admin/lookups';
import { poolJson, rangeJson } from './json';

const OWNER = {
  type: 'string',
  pattern: '^[a-z][a-z0-9_-]{0,31}/[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$',
  description: 'kind/name, e.g. baremetal/srv-42',
};
const ADDRESS = { type: 'string', minLength: 2, maxLength: 45, pattern: '^[0-9A-Fa-f:.]+$', description: 'an IPv4 or IPv6 address' };
const NAME = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,62}$' };
const problem = {
  type: 'object',
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    code: { type: 'string' },
  },
};
const errors = { 400: problem, 401: problem, 404: problem, 409: problem, 503: problem };
const lease = {
  type: 'object',
  properties: {
    owner: { type: 'string' },
    ip: { type: 'string' },
    size: { type: 'integer' },
    rangeId: { type: 'integer' },
    space: { type: 'string' },
    pool: { type: 'string', nullable: true },
    kind: { type: 'string' },
    createdAt: { type: 'string', format: 'date-time' },
  },
};
const anyObject = { type: 'object', additionalProperties: true };
const list = (items: object) => ({ type: 'array', items });

const run = <T>(req: FastifyRequest, fn: (db: Db, ctx: ActionContext) => Promise<T>): Promise<T> => req.platform!.asPlatform(fn);

const leaseOut = (l: OwnedLease) => ({ ...l, createdAt: l.createdAt.toISOString(), created: undefined });

export async function apiRoutes(app: FastifyInstance): Promise<void> {
  for (const route of [
    getSpaces,
    getPools,
    getPoolsName,
    getRanges,
    getRangesId,
    getRangesIdLeases,
    getFindAddress,
    getHistory,
    getEvents,
    getLeases,
    postLeases,
    putLeasesIp,
    deleteLeasesIp,
  ])
    route(app);
}

function getSpaces(app: FastifyInstance): void {
  app.get(
    '/spaces',
    { schema: { summary: 'address spaces', tags: ['address space'], response: { 200: list(anyObject), ...errors } } },
    (req) => run(req, (db) => listSpaces(db)),
  );
}

function getPools(app: FastifyInstance): void {
  app.get(
    '/pools',
    {
      schema: {
        summary: 'pools this platform may use, with their utilisation',
        tags: ['address space'],
        response: { 200: list(anyObject), ...errors },
      },
    },
    (req) =>
      run(req, async (db) => {
        const out = [];
        for (const p of await listPoolRows(db)) out.push(poolJson(await poolInfo(db, p)));
        return out;
      }),
  );
}

function getPoolsName(app: FastifyInstance): void {
  app.get<{ Params: { name: string } }>(
    '/pools/:name',
    {
      schema: {
        summary: 'a pool, its utilisation and its ranges of this platform',
        tags: ['address space'],
        params: { type: 'object', properties: { name: NAME }, required: ['name'] },
        response: { 200: anyObject, ...errors },
      },
    },
    (req) =>
      run(req, async (db) => {
        const pool = await getPool(db, req.params.name);
        if (!pool) throw new IpamError('NOT_FOUND', `no pool "${req.params.name}"`);
        const ranges = (await listRanges(db)).filter((r) => r.range.poolId === pool.id).map(rangeJson);
        return { ...poolJson(await poolInfo(db, pool)), ranges };
      }),
  );
}

function getRanges(app: FastifyInstance): void {
  app.get<{ Querystring: { space?: string } }>(
    '/ranges',
    {
      schema: {
        summary: "this platform's ranges with their use",
        tags: ['address space'],
        querystring: { type: 'object', properties: { space: NAME }, additionalProperties: false },
        response: { 200: list(anyObject), ...errors },
      },
    },
    (req) => run(req, async (db) => (await listRanges(db, { space: req.query.space })).map(rangeJson)),
  );
}

function getRangesId(app: FastifyInstance): void {
  app.get<{ Params: { id: number } }>(
    '/ranges/:id',
    {
      schema: {
        summary: 'a range',
        tags: ['address space'],
        params: { type: 'object', properties: { id: { type: 'integer', minimum: 1 } }, required: ['id'] },
        response: { 200: anyObject, ...errors },
      },
    },
    (req) =>
      run(req, async (db) => {
        const range = await getRange(db, req.params.id);
        if (!range) throw new IpamError('NOT_FOUND', `no range ${req.params.id}`);
        return rangeJson(await rangeInfo(db, range));
      }),
  );
}

function getRangesIdLeases(app: FastifyInstance): void {
  app.get<{ Params: { id: number }; Querystring: { limit: number } }>(
    '/ranges/:id/leases',
    {
      schema: {
        summary: "a range's leases, allocations, reservations and holds",
        tags: ['address space'],
        params: { type: 'object', properties: { id: { type: 'integer', minimum: 1 } }, required: ['id'] },
        querystring: {
          type: 'object',
          properties: { limit: { type: 'integer', minimum: 1, maximum: 10000, default: 1000 } },
          additionalProperties: false,
        },
        response: { 200: list(anyObject), ...errors },
      },
    },
    (req) =>
      run(req, async (db) => {
        if (!(await getRange(db, req.params.id))) throw new IpamError('NOT_FOUND', `no range ${req.params.id}`);
        return listLeases(db, { rangeId: req.params.id, limit: req.query.limit });
      }),
  );
}

function getFindAddress(app: FastifyInstance): void {
  app.get<{ Params: { address: string } }>(
    '/find/:address',
    {
      schema: {
        summary: 'where an IP address or MAC lives: space, pool, range, lease, history',
        tags: ['address space'],
        params: { type: 'object', properties: { address: { type: 'string', minLength: 2, maxLength: 45 } }, required: ['address'] },
        response: { 200: anyObject, ...errors },
      },
    },
    (req) => run(req, (db) => find(db, req.params.address)),
  );
}

function getHistory(app: FastifyInstance): void {
  app.get<{ Querystring: { range?: number; address?: string; event?: string; limit: number } }>(
    '/history',
    {
      schema: {
        summary: 'the history of changes, newest first',
        tags: ['history'],
        querystring: {
          type: 'object',
          properties: {
            range: { type: 'integer', minimum: 1 },
            address: ADDRESS,
            event: { type: 'string', pattern: '^[a-z_]{1,40}$' },
            limit: { type: 'integer', minimum: 1, maximum: 10000, default: 100 },
          },
          additionalProperties: false,
        },
        response: { 200: list(anyObject), ...errors },
      },
    },
    (req) =>
      run(req, (db) =>
        history(db, { rangeId: req.query.range, addressText: req.query.address, event: req.query.event, limit: req.query.limit }),
      ),
  );
}

function getEvents(app: FastifyInstance): void {
  app.get<{ Querystring: { after: number; limit: number } }>(
    '/events',
    {
      schema: {
        summary: 'every history row of this platform after an id, oldest first: page with after = the last id seen',
        tags: ['history'],
        querystring: {
          type: 'object',
          properties: {
            after: { type: 'integer', minimum: 0, default: 0 },
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
          },
          additionalProperties: false,
        },
        response: { 200: list(anyObject), ...errors },
      },
    },
    (req) => run(req, (db) => events(db, req.query.after, req.query.limit)),
  );
}

function getLeases(app: FastifyInstance): void {
  app.get<{ Querystring: { owner?: string } }>(
    '/leases',
    {
      schema: {
        summary: 'leases of owners that are not OpenNebula',
        tags: ['leases'],
        querystring: { type: 'object', properties: { owner: OWNER }, additionalProperties: false },
        response: { 200: list(lease), ...errors },
      },
    },
    (req) => run(req, async (db, ctx) => (await ownedLeases(db, ctx, { owner: req.query.owner })).map(leaseOut)),
  );
}

function postLeases(app: FastifyInstance): void {
  app.post<{ Body: { owner: string; pool?: string; range?: number; size: number } }>(
    '/leases',
    {
      schema: {
        summary: 'lease the lowest free address (or block) of a pool or range to an owner; again for the same owner: the same lease (200)',
        tags: ['leases'],
        body: {
          type: 'object',
          properties: {
            owner: OWNER,
            pool: NAME,
            range: { type: 'integer', minimum: 1 },
            size: { type: 'integer', minimum: 1, maximum: 65536, default: 1 },
          },
          required: ['owner'],
          additionalProperties: false,
        },
        response: { 200: lease, 201: lease, ...errors },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const l = await run(req, (db, ctx) => leaseGet(db, { owner: b.owner, pool: b.pool, rangeId: b.range, size: b.size }, ctx));
      return reply.code(l.created ? 201 : 200).send(leaseOut(l));
    },
  );
}

function putLeasesIp(app: FastifyInstance): void {
  app.put<{ Params: { ip: string }; Body: { owner: string; size: number; space: string } }>(
    '/leases/:ip',
    {
      schema: {
        summary: 'lease this address (and size - 1 after it) to an owner; again for the same owner: the same lease (200)',
        tags: ['leases'],
        params: { type: 'object', properties: { ip: ADDRESS }, required: ['ip'] },
        body: {
          type: 'object',
          properties: {
            owner: OWNER,
            size: { type: 'integer', minimum: 1, maximum: 65536, default: 1 },
            space: { ...NAME, default: 'default' },
          },
          required: ['owner'],
          additionalProperties: false,
        },
        response: { 200: lease, 201: lease, ...errors },
      },
    },
    async (req, reply) => {
      const l = await run(req, (db, ctx) =>
        leaseTake(db, { owner: req.body.owner, ip: req.params.ip, size: req.body.size, space: req.body.space }, ctx),
      );
      return reply.code(l.created ? 201 : 200).send(leaseOut(l));
    },
  );
}

function deleteLeasesIp(app: FastifyInstance): void {
  app.delete<{ Params: { ip: string }; Querystring: { owner: string; space: string } }>(
    '/leases/:ip',
    {
      schema: {
        summary: "free the owner's lease that holds this address (204, also when it was free already)",
        tags: ['leases'],
        params: { type: 'object', properties: { ip: ADDRESS }, required: ['ip'] },
        querystring: {
          type: 'object',
          properties: { owner: OWNER, space: { ...NAME, default: 'default' } },
          required: ['owner'],
          additionalProperties: false,
        },
        response: { 204: { type: 'null' }, ...errors },
      },
    },
    async (req, reply) => {
      await run(req, (db, ctx) => leaseFree(db, { ip: req.params.ip, owner: req.query.owner, space: req.query.space }, ctx));
      return reply.code(204).send();
    },
  );
}
