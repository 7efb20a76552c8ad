// pgipam reconcile: where oned's lease map and pgipam's disagree, and --fix.
import type { Argv } from 'yargs';
import { DEFAULT_GRACE_SECONDS, type Finding, type ReconcileReport, reconcile } from '../../admin/reconcile';
import { onedViewFrom, readOnedFiles, readOnevnet } from '../../admin/oned-input';
import { badRequest } from '../../errors';
import { checkName } from '../../names';
import { exitCodes, out, parseDuration, wholeNumber, withDb, write } from '../common';
import { printTable } from '../render';

// oned input options shared with pgipam import
export const onedInputOptions = <T>(y: Argv<T>) =>
  y
    .positional('files', {
      type: 'string',
      array: true,
      describe: 'files with the output of onevnet list -x and onevnet show -x <id> (several shows may follow each other); - for stdin',
    })
    .option('onevnet', {
      type: 'boolean',
      default: false,
      describe: 'run onevnet list -x and onevnet show -x <id> itself (on the front-end, as oneadmin)',
    })
    .option('onevnet-command', { type: 'string', default: 'onevnet', describe: 'the onevnet executable' })
    .option('onevnet-timeout', { type: 'string', default: '2m', describe: 'how long one onevnet call may take' })
    .option('mad', { type: 'string', default: 'pgipam', describe: 'the IPAM_MAD name pgipam is installed under' })
    .option('platform', { type: 'string', describe: 'the platform this oned is (default: the configured one)' });

export async function readOnedView(args: {
  files?: string[];
  onevnet: boolean;
  onevnetCommand: string;
  onevnetTimeout: string;
}): Promise<ReturnType<typeof onedViewFrom>> {
  if (args.onevnet && args.files?.length) throw badRequest('give either files or --onevnet, not both');
  const docs = args.onevnet
    ? await readOnevnet({
        command: args.onevnetCommand,
        concurrency: 8,
        timeoutMs: parseDuration(args.onevnetTimeout, '--onevnet-timeout'),
      })
    : readOnedFiles(args.files ?? []);
  return onedViewFrom(docs);
}

export function reconcileCommands<T>(y: Argv<T>): Argv<T> {
  return y.command(
    'reconcile [files..]',
    "compare oned's leases with pgipam's: leaked, unknown, mismatched, resized, orphan and missing ranges; exit 0 in agreement, 1 on drift, 2 on an error",
    (y2) => {
      exitCodes.error = 2;
      return onedInputOptions(y2)
        .option('fix', {
          type: 'boolean',
          default: false,
          describe: 'adopt unknown leases, register missing ranges again, free leaks and remove orphan ranges older than --grace',
        })
        .option('grace', {
          type: 'string',
          default: `${DEFAULT_GRACE_SECONDS / 60}m`,
          describe: "leases and ranges younger than this before oned's view was read are never freed or removed",
        });
    },
    async (args) => {
      const graceSeconds = args.grace === '0' ? 0 : parseDuration(args.grace, '--grace') / 1000;
      wholeNumber(graceSeconds, '--grace in seconds', 0, 366 * 86400);
      const mad = checkName('--mad', args.mad);
      const view = await readOnedView(args);
      const report = await withDb((db, ctx) =>
        reconcile(db, view, { mad, fix: args.fix, graceSeconds }, { ...ctx, platform: args.platform ?? ctx.platform }),
      );
      out(args, report, () => printReport(report));
      exitCodes.result = report.findings.length ? 1 : 0;
    },
  );
}

function printReport(r: ReconcileReport): void {
  write(
    `oned: ${r.networks} networks, ${r.onedLeases} leases, read ${r.onedReadAt.toISOString()}${r.complete ? '' : ' (no onevnet list -x: orphan ranges not judged)'}\n`,
  );
  write(`pgipam: ${r.ranges} ranges of platform "${r.platform}" (IPAM_MAD ${r.mad})\n`);
  for (const m of r.matchedByAddress)
    write(
      `AR ${m.arId} of network ${m.networkId} has no PGIPAM_RANGE_ID ("onevnet updatear" can drop it): matched to range ${m.rangeId} by its first address\n`,
    );
  if (!r.findings.length) {
    write('in agreement\n');
    return;
  }
  printTable(
    ['KIND', 'NETWORK', 'AR', 'RANGE', 'WHERE', r.fix ? 'DONE' : 'WITH --fix'],
    r.findings.map((f) => [f.drift.kind, network(f), ar(f), String(f.drift.rangeId), f.where, f.action]),
  );
  const kinds = Object.entries(r.found)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${n}${r.fix ? ` (repaired ${r.repaired[k as keyof typeof r.repaired]})` : ''}`);
  write(`drift: ${r.findings.length}: ${kinds.join(', ')}\n`);
}

const network = (f: Finding) => ('networkId' in f.drift ? String(f.drift.networkId) : '-');
const ar = (f: Finding) => ('arId' in f.drift ? String(f.drift.arId) : '-');
