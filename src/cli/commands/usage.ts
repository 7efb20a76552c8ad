// pgipam usage: address-hours and peak use per period, from the history.
import type { Argv } from 'yargs';
import { type UsageReport, usage } from '../../admin/usage';
import { out, parseAgeOrDate, withDb, write } from '../common';
import { printTable } from '../render';

export function usageCommands<T>(y: Argv<T>): Argv<T> {
  return y.command(
    'usage',
    'address-hours and peak use per period, by platform, pool, range or space, from the history (--csv for a spreadsheet)',
    (y2) =>
      y2
        .option('since', { type: 'string', default: '30d', describe: 'an ISO date or an age such as 7d' })
        .option('until', { type: 'string', describe: 'an ISO date or an age (default: now)' })
        .option('by', { type: 'string', choices: ['platform', 'pool', 'range', 'space'] as const, default: 'platform' as const })
        .option('period', { type: 'string', choices: ['hour', 'day', 'month', 'all'] as const, default: 'day' as const })
        .option('csv', { type: 'boolean', default: false, describe: 'print CSV' }),
    async (args) => {
      const since = parseAgeOrDate(args.since, '--since');
      const until = args.until === undefined ? new Date() : parseAgeOrDate(args.until, '--until');
      const report = await withDb((db) => usage(db, { since, until, by: args.by, period: args.period }));
      if (args.csv) return printCsv(report);
      out(args, report, () => {
        printTable(
          ['PERIOD', args.by.toUpperCase(), 'ADDRESS_HOURS', 'PEAK', 'STARTED'],
          report.rows.map((r) => [r.periodStart.toISOString(), r.group, r.addressHours.toFixed(2), String(r.peak), String(r.started)]),
        );
        if (report.historyFrom && report.historyFrom > since)
          write(`history starts at ${report.historyFrom.toISOString()} (pruned before): use before it is not counted\n`);
      });
    },
  );
}

function printCsv(r: UsageReport): void {
  const cell = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
  write(`period_start,${r.by},address_hours,peak,started\n`);
  for (const row of r.rows)
    write(`${row.periodStart.toISOString()},${cell(row.group)},${row.addressHours.toFixed(4)},${row.peak},${row.started}\n`);
}
