// pgipam history and history prune.
import type { Argv } from 'yargs';
import { printTable } from '../render';
import { history, pruneHistory } from '../../admin/lookups';
import { out, parseSince, MIN_PRUNE_AGE_DAYS, pruneCutoff, wholeNumber, withDb, write } from '../common';

export function historyCommands<T>(y: Argv<T>): Argv<T> {
  return y.command(
    'history',
    'the append-only history of changes (history prune --before 90d deletes old rows; schema owner only)',
    (y) =>
      y
        .option('since', { type: 'string', describe: 'ISO date or age (30m, 2h, 7d)' })
        .option('range', { type: 'number' })
        .option('platform', { type: 'string' })
        .option('event', { type: 'string' })
        .option('limit', { type: 'number', default: 100 })
        .command(
          'prune',
          `delete history older than --before (an ISO date or an age such as 365d; younger than ${MIN_PRUNE_AGE_DAYS}d only with --force)`,
          (y2) =>
            y2.option('before', { type: 'string', demandOption: true }).option('force', {
              type: 'boolean',
              default: false,
              describe: `prune history younger than ${MIN_PRUNE_AGE_DAYS} days, or all of it with a cut-off in the future`,
            }),
          async (args) => {
            const before = pruneCutoff(args.before, args.force);
            const n = await withDb((db, ctx) => pruneHistory(db, before, ctx));
            out(args, { pruned: n, before }, () => write(`pruned ${n} history rows older than ${before.toISOString()}\n`));
          },
        ),
    async (args) => {
      const since = parseSince(args.since);
      const rangeId = args.range === undefined ? undefined : wholeNumber(args.range, '--range', 1);
      const limit = wholeNumber(args.limit, '--limit', 1, 1_000_000);
      const rows = await withDb((db) => history(db, { since, rangeId, platform: args.platform, event: args.event, limit }));
      out(args, rows, () =>
        printTable(
          ['AT', 'EVENT', 'RANGE', 'ADDRESS', 'SIZE', 'PLATFORM', 'REQUEST', 'ACTOR'],
          rows.map((h) => [
            h.at.toISOString(),
            h.event,
            h.rangeId === null ? '' : String(h.rangeId),
            h.address ?? '',
            h.size === null ? '' : String(h.size),
            h.platform ?? '',
            h.requestId ?? '',
            h.actor,
          ]),
        ),
      );
    },
  );
}
