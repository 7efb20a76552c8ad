// The read-only web view of pgipam serve, for people: pools and ranges with their utilisation and
// address maps, search by IP, MAC or owner, a range's leases, the history with filters. Pages are
// rendered on the server and work without JavaScript; they fit a phone. A person signs in with an
// API token (kept in an HttpOnly, SameSite=Strict cookie) and sees what its platform may see.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Db } from '../db/client';
import type { DbPool } from '../db/pool';
import { IpamError, isIpamError } from '../errors';
import type { ActionContext } from '../allocator/context';
import { getPool, listPoolRows } from '../allocator/pool-space';
import { getRange } from '../allocator/range-queries';
import { resolveToken } from '../admin/api-tokens';
import { ownedLeases } from '../admin/owned-leases';
import { poolInfo } from '../admin/pool-admin';
import { listLeases, listRanges, rangeCells, rangeInfo } from '../admin/range-admin';
import { find, history } from '../admin/lookups';
import { PGIPAM_VERSION } from '../version';
import { poolJson, rangeJson } from './json';
import { platformOf } from './platform-request';

const esc = (s: unknown) =>
  String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const pct = (x: number) => `${(x * 100).toFixed(x > 0 && x < 0.01 ? 2 : 1)}%`;
const bar = (x: number, label = pct(x)) =>
  `<span class="bar" role="img" aria-label="${esc(label)} used"><span style="width:${Math.min(100, x * 100).toFixed(1)}%"></span></span> ${esc(label)}`;
const when = (d: Date | string) => esc(new Date(d).toISOString().replace('T', ' ').slice(0, 19));

const CSS = `
*{box-sizing:border-box}body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d2430;background:#f4f6f8}
header{background:#1d2b3a;color:#fff;padding:.6rem 1rem;display:flex;flex-wrap:wrap;gap:.5rem 1.2rem;align-items:center}
header a{color:#cfe3ff;text-decoration:none}header strong{font-size:1.1rem}header form{margin-left:auto;display:flex;gap:.3rem}
main{padding:1rem;max-width:1100px;margin:auto}h1{font-size:1.3rem;margin:.2rem 0 1rem}h2{font-size:1.05rem;margin:1.4rem 0 .5rem}
.card{background:#fff;border:1px solid #dde3ea;border-radius:6px;padding:.8rem 1rem;margin-bottom:1rem}
.scroll{overflow-x:auto}table{border-collapse:collapse;width:100%;background:#fff}th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #e6ebf0;white-space:nowrap}
th{font-weight:600;color:#4a5868;font-size:.85rem}td.num{text-align:right;font-variant-numeric:tabular-nums}
.bar{display:inline-block;width:8rem;height:.7rem;background:#e3e9ef;border-radius:3px;vertical-align:middle;overflow:hidden}.bar span{display:block;height:100%;background:#2f7de1}
.map{display:grid;grid-template-columns:repeat(auto-fill,minmax(14px,1fr));gap:2px;margin:.4rem 0}.map i{height:14px;border-radius:2px;background:#dfe7ee}
.map i.u{background:#2f7de1}.map i.r{background:#e0a030}.map i.h{background:#9aa7b4}.map i.p{background:linear-gradient(#2f7de1 50%,#dfe7ee 50%)}
.legend i{display:inline-block;width:.8rem;height:.8rem;border-radius:2px;margin:0 .2rem 0 .6rem;vertical-align:middle}
input,button,select{font:inherit;padding:.3rem .5rem;border:1px solid #b9c4cf;border-radius:4px}button{background:#2f7de1;color:#fff;border-color:#2f7de1;cursor:pointer}
.muted{color:#6a7887}.err{background:#fdecea;border-color:#f5c2bd}a{color:#1f62c4}
@media (max-width:600px){main{padding:.5rem}th,td{padding:.3rem}.bar{width:4.5rem}header form{margin-left:0;width:100%}header form input{flex:1}}`;

function page(title: string, body: string, platform?: string): string {
  const nav = platform
    ? `<a href="/ui">Pools</a><a href="/ui/ranges">Ranges</a><a href="/ui/history">History</a>
       <form action="/ui/search" method="get" role="search"><input name="q" placeholder="IP, MAC or kind/name" aria-label="search"><button>Search</button></form>
       <span class="muted">${esc(platform)}</span>`
    : '';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(title)} · pgipam</title><style>${CSS}</style></head><body><header><strong>pgipam</strong>${nav}</header><main>${body}
<p class="muted">pgipam ${esc(PGIPAM_VERSION)}</p></main></body></html>`;
}

const table = (head: string[], rows: string[][], nums: number[] = []) =>
  `<div class="scroll"><table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${
    rows.length
      ? rows.map((r) => `<tr>${r.map((c, i) => `<td${nums.includes(i) ? ' class="num"' : ''}>${c}</td>`).join('')}</tr>`).join('')
      : `<tr><td colspan="${head.length}" class="muted">nothing</td></tr>`
  }</tbody></table></div>`;

type Handler = (db: Db, ctx: ActionContext, req: FastifyRequest) => Promise<string>;
type View = (title: string, fn: Handler) => (req: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply>;
type Hide = { schema: { hide: boolean } };

export async function webRoutes(app: FastifyInstance, opts: { pool: DbPool }): Promise<void> {
  const { pool } = opts;
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 4096 }, (_req, body, done) =>
    done(null, Object.fromEntries(new URLSearchParams(String(body)))),
  );
  const view = (title: string, fn: Handler) => async (req: FastifyRequest, reply: FastifyReply) => {
    const platform = await platformOf(pool, req);
    if (!platform) return reply.redirect('/ui/login');
    const grant = platform.grant;
    try {
      const body = await platform.asPlatform((db, ctx) => fn(db, ctx, req));
      return reply.type('text/html; charset=utf-8').send(page(title, body, grant.platform));
    } catch (e) {
      if (!isIpamError(e) || !['NOT_FOUND', 'RANGE_NOT_FOUND', 'BAD_REQUEST', 'PERMISSION_DENIED'].includes(e.code)) throw e;
      const status = e.code === 'BAD_REQUEST' ? 400 : 404;
      return reply
        .code(status)
        .type('text/html; charset=utf-8')
        .send(page(title, `<div class="card err">${esc(status === 404 ? 'Not found: ' : '')}${esc(e.message)}</div>`, grant.platform));
    }
  };
  const hide = { schema: { hide: true } };
  for (const route of [
    pageRoot,
    pageGetUiLogin,
    pagePostUiLogin,
    pagePostUiLogout,
    pageGetUi,
    pageGetUiPoolsName,
    pageGetUiRanges,
    pageGetUiRangesId,
    pageGetUiSearch,
    pageGetUiHistory,
  ])
    route(app, view, hide, pool);
}

function pageRoot(app: FastifyInstance, _view: View, hide: Hide, _pool: DbPool): void {
  app.get('/', hide, (_req, reply) => reply.redirect('/ui'));
}

function pageGetUiLogin(app: FastifyInstance, _view: View, hide: Hide, _pool: DbPool): void {
  app.get('/ui/login', hide, (_req, reply) =>
    reply.type('text/html; charset=utf-8').send(
      page(
        'Sign in',
        `<h1>Sign in</h1><form class="card" method="post" action="/ui/login"><p>An API token of your platform (<code>pgipam token add</code>):</p>
         <p><input name="token" type="password" autocomplete="current-password" required style="width:100%" aria-label="token"></p><button>Sign in</button></form>`,
      ),
    ),
  );
}

function pagePostUiLogin(app: FastifyInstance, _view: View, hide: Hide, pool: DbPool): void {
  app.post<{ Body: { token?: string } }>('/ui/login', hide, async (req, reply) => {
    const token = String(req.body?.token ?? '').trim();
    const grant = token ? await pool.use((db) => resolveToken(db, token)) : null;
    if (!grant)
      return reply
        .code(401)
        .type('text/html; charset=utf-8')
        .send(page('Sign in', `<div class="card err">That token is unknown or revoked.</div><p><a href="/ui/login">Try again</a></p>`));
    return reply
      .header('set-cookie', `pgipam_token=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/; Max-Age=43200`)
      .redirect('/ui', 303);
  });
}

function pagePostUiLogout(app: FastifyInstance, _view: View, hide: Hide, _pool: DbPool): void {
  app.post('/ui/logout', hide, (_req, reply) =>
    reply.header('set-cookie', 'pgipam_token=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0').redirect('/ui/login', 303),
  );
}

function pageGetUi(app: FastifyInstance, view: View, hide: Hide, _pool: DbPool): void {
  app.get(
    '/ui',
    hide,
    view('Pools', async (db) => {
      const rows: string[][] = [];
      for (const p of await listPoolRows(db)) {
        const j = poolJson(await poolInfo(db, p));
        for (const x of j.prefixes)
          rows.push([
            `<a href="/ui/pools/${encodeURIComponent(j.name)}">${esc(j.name)}</a>`,
            esc(j.space),
            esc(x.prefix),
            bar(x.utilisation),
            esc(x.free),
            String(j.ranges),
            j.restricted ? 'restricted' : '',
          ]);
      }
      return `<h1>Pools</h1>${table(['Pool', 'Space', 'Prefix', 'Carved', 'Free addresses', 'Ranges', ''], rows, [4, 5])}`;
    }),
  );
}

function pageGetUiPoolsName(app: FastifyInstance, view: View, hide: Hide, _pool: DbPool): void {
  app.get<{ Params: { name: string } }>(
    '/ui/pools/:name',
    hide,
    view('Pool', async (db, _ctx, req) => {
      const name = (req.params as { name: string }).name;
      const p = await getPool(db, name);
      if (!p) throw notFound(`no pool "${name}"`);
      const j = poolJson(await poolInfo(db, p));
      const prefixes = j.prefixes
        .map(
          (x) =>
            `<div class="card"><strong>${esc(x.prefix)}</strong> ${bar(x.utilisation)} · ${esc(x.free)} of ${esc(x.size)} free
             <div class="map" aria-label="address map of ${esc(x.prefix)}">${x.cells.map((c) => `<i class="${c >= 1 ? 'u' : c > 0 ? 'p' : ''}" title="${pct(c)}"></i>`).join('')}</div></div>`,
        )
        .join('');
      const ranges = (await listRanges(db)).filter((r) => r.range.poolId === p.id).map(rangeJson);
      return `<h1>Pool ${esc(j.name)}</h1><p class="muted">space ${esc(j.space)}${j.description ? ` · ${esc(j.description)}` : ''}${j.vlan ? ` · VLAN pool ${esc((j.vlan as { pool?: string }).pool ?? '')}` : ''}</p>
        ${prefixes}<h2>Ranges</h2>${rangeTable(ranges)}`;
    }),
  );
}

function pageGetUiRanges(app: FastifyInstance, view: View, hide: Hide, _pool: DbPool): void {
  app.get(
    '/ui/ranges',
    hide,
    view('Ranges', async (db) => `<h1>Ranges</h1>${rangeTable((await listRanges(db)).map(rangeJson))}`),
  );
}

function pageGetUiRangesId(app: FastifyInstance, view: View, hide: Hide, _pool: DbPool): void {
  app.get<{ Params: { id: string } }>(
    '/ui/ranges/:id',
    hide,
    view('Range', async (db, _ctx, req) => {
      const id = Number((req.params as { id: string }).id);
      const range = Number.isSafeInteger(id) && id > 0 ? await getRange(db, id) : null;
      if (!range) throw notFound(`no range ${esc((req.params as { id: string }).id)}`);
      const info = rangeJson(await rangeInfo(db, range));
      const cells = await rangeCells(db, range, 128);
      const leases = await listLeases(db, { rangeId: id, limit: 500 });
      const events = await history(db, { rangeId: id, limit: 20 });
      const map = cells
        .map((c) => {
          const cls = c.reservation > 0 && c.used === 0 ? 'r' : c.used >= c.width ? 'u' : c.used > 0 ? 'p' : c.hold > 0 ? 'h' : '';
          return `<i class="${cls}" title="${c.used} of ${c.width} used${c.reservation ? `, ${c.reservation} reserved` : ''}${c.hold ? `, ${c.hold} on hold` : ''}"></i>`;
        })
        .join('');
      return `<h1>Range ${id}: ${esc(info.first)} – ${esc(info.last)}</h1>
        <div class="card">${esc(info.type)} · space ${esc(info.space)}${info.pool ? ` · pool <a href="/ui/pools/${encodeURIComponent(info.pool)}">${esc(info.pool)}</a>` : ''} · ${bar(info.utilisation, `${info.used} of ${info.size}`)}
        <div class="map" aria-label="address map">${map}</div><span class="legend muted"><i style="background:#2f7de1"></i>used<i style="background:#e0a030"></i>reserved<i style="background:#9aa7b4"></i>on hold<i style="background:#dfe7ee"></i>free</span></div>
        <h2>Leases</h2>${table(
          ['First', 'Last', 'Size', 'Kind', 'Owner', 'Since', 'Request', 'Note'],
          leases.map((l) => [
            `<a href="/ui/search?q=${encodeURIComponent(l.first)}">${esc(l.first)}</a>`,
            esc(l.last),
            String(l.size),
            esc(l.kind),
            l.owner ? `<a href="/ui/search?q=${encodeURIComponent(l.owner)}">${esc(l.owner)}</a>` : '<span class="muted">OpenNebula</span>',
            when(l.since),
            esc(l.requestId),
            esc(l.note),
          ]),
          [2],
        )}<h2>Latest changes</h2>${historyTable(events)}<p><a href="/ui/history?range=${id}">All of this range's history</a></p>`;
    }),
  );
}

function pageGetUiSearch(app: FastifyInstance, view: View, hide: Hide, _pool: DbPool): void {
  app.get<{ Querystring: { q?: string } }>(
    '/ui/search',
    hide,
    view('Search', async (db, ctx, req) => {
      const q = String((req.query as { q?: string }).q ?? '').trim();
      if (!q) return `<h1>Search</h1><p>An IP address, a MAC or an owner (kind/name).</p>`;
      if (q.includes('/')) {
        const leases = await ownedLeases(db, ctx, { owner: q });
        return `<h1>${esc(q)}</h1>${table(
          ['Address', 'Size', 'Range', 'Pool', 'Since'],
          leases.map((l) => [
            `<a href="/ui/search?q=${encodeURIComponent(l.ip)}">${esc(l.ip)}</a>`,
            String(l.size),
            `<a href="/ui/ranges/${l.rangeId}">${l.rangeId}</a>`,
            esc(l.pool),
            when(l.createdAt),
          ]),
        )}`;
      }
      const r = await find(db, q);
      if (!r.matches.length) return `<h1>${esc(q)}</h1><div class="card">In no range this platform can see.</div>`;
      return `<h1>${esc(q)}</h1>${r.matches
        .map(
          (
            m,
          ) => `<div class="card">space ${esc(m.space)}${m.pool ? ` · pool <a href="/ui/pools/${encodeURIComponent(m.pool)}">${esc(m.pool)}</a>` : ''}${
            m.range ? ` · <a href="/ui/ranges/${m.range.id}">range ${m.range.id}</a> (${esc(m.range.first)} – ${esc(m.range.last)})` : ''
          }<br>${m.lease ? `<strong>${esc(m.lease.kind)}</strong> since ${when(m.lease.since)}${m.lease.note ? ` · ${esc(m.lease.note)}` : ''}` : m.poolReservation ? `reserved in the pool: ${esc(m.poolReservation)}` : '<strong>free</strong>'}</div>
          <h2>History</h2>${historyTable(m.history)}`,
        )
        .join('')}`;
    }),
  );
}

function pageGetUiHistory(app: FastifyInstance, view: View, hide: Hide, _pool: DbPool): void {
  app.get<{ Querystring: { range?: string; event?: string; address?: string } }>(
    '/ui/history',
    hide,
    view('History', async (db, _ctx, req) => {
      const q = req.query as { range?: string; event?: string; address?: string };
      const rangeId = q.range && /^\d{1,15}$/.test(q.range) ? Number(q.range) : undefined;
      const event = q.event && /^[a-z_]{1,40}$/.test(q.event) ? q.event : undefined;
      const address = q.address && /^[0-9A-Fa-f:.]{2,45}$/.test(q.address) ? q.address : undefined;
      const rows = await history(db, { rangeId, event, addressText: address, limit: 200 });
      return `<h1>History</h1><form class="card" method="get" action="/ui/history">
          <input name="range" placeholder="range id" value="${esc(q.range ?? '')}" aria-label="range id" size="8">
          <input name="event" placeholder="event (address_leased)" value="${esc(q.event ?? '')}" aria-label="event">
          <input name="address" placeholder="address" value="${esc(q.address ?? '')}" aria-label="address"> <button>Filter</button></form>
          ${historyTable(rows)}`;
    }),
  );
}

const notFound = (message: string) => new IpamError('NOT_FOUND', message);

function rangeTable(ranges: ReturnType<typeof rangeJson>[]): string {
  return table(
    ['Range', 'Type', 'First', 'Last', 'Used', 'Pool'],
    ranges.map((r) => [
      `<a href="/ui/ranges/${r.id}">${r.id}</a>`,
      esc(r.type),
      esc(r.first),
      esc(r.last),
      bar(r.utilisation, `${r.used} of ${r.size}`),
      r.pool ? `<a href="/ui/pools/${encodeURIComponent(r.pool)}">${esc(r.pool)}</a>` : '',
    ]),
  );
}

function historyTable(rows: Awaited<ReturnType<typeof history>>): string {
  return table(
    ['When', 'Event', 'Address', 'Size', 'Range', 'Who', 'Request'],
    rows.map((h) => [
      when(h.at),
      esc(h.event),
      h.address ? `<a href="/ui/search?q=${encodeURIComponent(h.address)}">${esc(h.address)}</a>` : '',
      esc(h.size),
      h.rangeId ? `<a href="/ui/ranges/${h.rangeId}">${h.rangeId}</a>` : '',
      esc((h.detail as { owner?: string }).owner ?? h.actor),
      esc(h.requestId),
    ]),
    [3],
  );
}
