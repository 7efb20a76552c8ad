// pgipam serve, pgipam token add|list|revoke and pgipam webhook add|list|rm: the HTTP API and web
// view (src/api), the tokens that let a platform in, and where its events are delivered.
import type { Argv } from 'yargs';
import { addToken, listTokens, revokeToken } from '../../admin/api-tokens';
import { addWebhook, listWebhooks, removeWebhook } from '../../admin/webhooks';
import { buildServer } from '../../api/server';
import { WebhookDelivery } from '../../api/webhook-delivery';
import { IpamError } from '../../errors';
import { printTable } from '../render';
import { cliConfig, out, wholeNumber, withDb, write } from '../common';

export const DEFAULT_LISTEN = '127.0.0.1:8650';

function parseListen(text: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port < 1 || port > 65535) throw new IpamError('BAD_REQUEST', `--listen "${text}" is not host:port (e.g. ${DEFAULT_LISTEN})`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

const serve = <T>(y: Argv<T>) =>
  y.command(
    'serve',
    'the HTTP API (/api/v1, OpenAPI at /api/v1/openapi.json) and the web view (/ui); webhooks delivered',
    (y2) =>
      y2
        .option('listen', { type: 'string', default: DEFAULT_LISTEN, describe: 'host:port (TLS: put a reverse proxy in front)' })
        .option('connections', { type: 'number', default: 10, describe: 'connections to PostgreSQL' })
        .option('webhooks', { type: 'boolean', default: true, describe: 'deliver webhooks (--no-webhooks: another server does)' }),
    async (args) => {
      const { host, port } = parseListen(args.listen);
      const config = cliConfig();
      const { app, pool } = await buildServer({ config, connections: wholeNumber(args.connections, '--connections', 1, 200) });
      const delivery = args.webhooks ? new WebhookDelivery(pool, config) : null;
      await app.listen({ host, port });
      await delivery?.start();
      process.stderr.write(
        `pgipam serve: listening on http://${host.includes(':') ? `[${host}]` : host}:${port} (API /api/v1, web view /ui)\n`,
      );
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      });
      await delivery?.stop();
      await app.close();
      await pool.close();
    },
  );

const token = <T>(y: Argv<T>) =>
  y.command('token <command>', "the HTTP API's bearer tokens", (y2) =>
    y2
      .command(
        'add <name>',
        "create a token for a platform (printed once; only its hash is kept); the role running this may then SET ROLE to the platform's",
        (y3) => y3.positional('name', { type: 'string', demandOption: true }).option('platform', { type: 'string', demandOption: true }),
        async (args) => {
          const r = await withDb((db) => addToken(db, args.name, args.platform));
          out(args, { token: r.token, ...r.info }, () => write(`${r.token}\n`));
        },
      )
      .command('list', 'list tokens (never the tokens themselves)', {}, async (args) => {
        const list = await withDb(listTokens);
        out(args, list, () =>
          printTable(
            ['NAME', 'PLATFORM', 'CREATED', 'LAST USED', 'REVOKED'],
            list.map((t) => [
              t.name,
              t.platform,
              t.createdAt.toISOString(),
              t.lastUsedAt?.toISOString() ?? '',
              t.revokedAt?.toISOString() ?? '',
            ]),
          ),
        );
      })
      .command(
        'revoke <name>',
        'revoke a token (at once: every request looks its token up)',
        (y3) => y3.positional('name', { type: 'string', demandOption: true }),
        async (args) => {
          await withDb((db) => revokeToken(db, args.name));
          out(args, { revoked: args.name }, () => write(`revoked ${args.name}\n`));
        },
      )
      .demandCommand(1, 'name a token command'),
  );

const webhook = <T>(y: Argv<T>) =>
  y.command('webhook <command>', "where pgipam serve delivers a platform's events", (y2) =>
    y2
      .command(
        'add <url>',
        'deliver the events of a platform from now on, signed with a secret (printed once when generated)',
        (y3) =>
          y3
            .positional('url', { type: 'string', demandOption: true })
            .option('platform', { type: 'string', demandOption: true })
            .option('secret', { type: 'string', describe: 'the HMAC secret (default: 192 random bits)' }),
        async (args) => {
          const r = await withDb((db) => addWebhook(db, args.platform, args.url, args.secret));
          out(args, { ...r.info, secret: r.secret }, () =>
            write(`webhook ${r.info.id} for ${r.info.platform}: ${r.info.url}\nsecret: ${r.secret}\n`),
          );
        },
      )
      .command('list', 'list webhooks and their delivery state', {}, async (args) => {
        const list = await withDb(listWebhooks);
        out(args, list, () =>
          printTable(
            ['ID', 'PLATFORM', 'URL', 'DELIVERED THROUGH', 'ATTEMPTS', 'NEXT ATTEMPT', 'LAST ERROR'],
            list.map((w) => [
              String(w.id),
              w.platform,
              w.url,
              String(w.deliveredId),
              String(w.attempts),
              w.nextAttemptAt.toISOString(),
              w.lastError ?? '',
            ]),
          ),
        );
      })
      .command(
        'rm <id>',
        'remove a webhook',
        (y3) => y3.positional('id', { type: 'number', demandOption: true }),
        async (args) => {
          await withDb((db) => removeWebhook(db, wholeNumber(args.id, 'id', 1)));
          out(args, { removed: args.id }, () => write(`removed webhook ${args.id}\n`));
        },
      )
      .demandCommand(1, 'name a webhook command'),
  );

export const serveCommands = <T>(y: Argv<T>): Argv<T> => webhook(token(serve(y)));
