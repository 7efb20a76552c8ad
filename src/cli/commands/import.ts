// pgipam import: record an existing cloud's networks (oned's view) in pgipam.
import type { Argv } from 'yargs';
import { type ImportReport, importCloud } from '../../admin/import';
import { IpamError } from '../../errors';
import { checkName } from '../../names';
import { exitCodes, out, withDb, write } from '../common';
import { printTable } from '../render';
import { onedInputOptions, readOnedView } from './reconcile';

export function importCommands<T>(y: Argv<T>): Argv<T> {
  return y.command(
    'import [files..]',
    "record an existing cloud's networks: IPAM ARs pgipam lacks are registered again, other ARs become observed ranges (with oned's leases) that pools and ranges never overlap; conflicts write nothing",
    (y2) => {
      exitCodes.error = 2;
      return onedInputOptions(y2)
        .option('dry-run', { type: 'boolean', default: false, describe: 'print the plan and the conflicts, write nothing' })
        .option('skip-conflicts', { type: 'boolean', default: false, describe: 'import what does not conflict, leave the rest out' });
    },
    async (args) => {
      const mad = checkName('--mad', args.mad);
      const view = await readOnedView(args);
      const report = await withDb((db, ctx) =>
        importCloud(
          db,
          view,
          { mad, dryRun: args.dryRun, skipConflicts: args.skipConflicts },
          { ...ctx, platform: args.platform ?? ctx.platform },
        ),
      );
      out(args, report, () => printReport(report));
      if (report.conflicts.length && !args.skipConflicts) {
        for (const c of report.conflicts) process.stderr.write(`pgipam: conflict: ${c}\n`);
        throw new IpamError(
          'CONFLICT',
          `${report.conflicts.length} conflict${report.conflicts.length === 1 ? '' : 's'}: nothing imported (resolve them, or --skip-conflicts to import the rest)`,
        );
      }
      exitCodes.result = report.conflicts.length ? 1 : 0;
    },
  );
}

function printReport(r: ImportReport): void {
  printTable(
    ['NETWORK', 'AR', 'TYPE', 'STEP', 'RANGE', 'WHERE', 'LEASES', 'DETAIL'],
    r.items.map((i) => [
      `${i.networkId} ${i.networkName}`.trim(),
      i.arId === null ? '-' : String(i.arId),
      i.type,
      i.step,
      i.rangeId === null ? '-' : String(i.rangeId),
      i.where,
      String(i.leases),
      i.detail,
    ]),
  );
  const todo = r.items.filter((i) => ['register', 'observe', 'update'].includes(i.step)).length;
  if (r.dryRun) write(`dry run: ${todo} to import, ${r.conflicts.length} conflicts; nothing written\n`);
  else if (r.written) write(`imported ${r.written} of ${todo}${r.conflicts.length ? `, ${r.conflicts.length} conflicts left out` : ''}\n`);
  else if (!r.conflicts.length) write('nothing to import: pgipam already records every AR\n');
}
