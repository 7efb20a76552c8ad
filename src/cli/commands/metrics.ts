// pgipam metrics: Prometheus text format, on stdout or atomically into a file (node_exporter's
// textfile collector reads *.prom files from a directory while they are being rewritten).
import type { Argv } from 'yargs';
import { collectMetrics } from '../../admin/metrics';
import { writeFileAtomic } from '../../admin/files';
import { parseDuration, withDb, write } from '../common';

export function metricsCommands<T>(y: Argv<T>): Argv<T> {
  return y.command(
    'metrics',
    'print the address space in Prometheus text format (for node_exporter textfile collector: --output /var/lib/prometheus/node-exporter/pgipam.prom)',
    (y2) =>
      y2
        .option('output', { type: 'string', describe: 'write to this file (temporary file + rename) instead of stdout' })
        .option('interval', { type: 'string', default: '5m', describe: 'window of the action and refusal counts (30s, 5m, 1h)' }),
    async (args) => {
      const intervalSeconds = parseDuration(args.interval, '--interval') / 1000;
      const text = await withDb((db) => collectMetrics(db, { intervalSeconds }));
      if (args.output) writeFileAtomic(args.output, text, 0o644);
      else write(text);
    },
  );
}
