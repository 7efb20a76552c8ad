// pgipam: the operator's command line over the pgipam database. Logic lives in src/admin and
// src/allocator; each command group in src/cli/commands parses its arguments and prints tables
// (src/cli/render.ts) or JSON (--json).
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { IpamError, coerceError, toOneLine } from '../errors';
import { PGIPAM_VERSION } from '../version';
import { routeProcessWarnings } from '../process-warnings';
import { schemaCommands } from './commands/schema';
import { spaceCommands } from './commands/space';
import { poolCommands } from './commands/pool';
import { rangeCommands } from './commands/range';
import { leaseCommands } from './commands/lease';
import { lookupCommands } from './commands/lookup';
import { reservationCommands } from './commands/reservation';
import { historyCommands } from './commands/history';
import { platformCommands } from './commands/platform';
import { installCommands } from './commands/install';
import { dbCommands } from './commands/db';
import { doctorCommands } from './commands/doctor';
import { metricsCommands } from './commands/metrics';
import { reconcileCommands } from './commands/reconcile';
import { importCommands } from './commands/import';
import { usageCommands } from './commands/usage';
import { vlanPoolCommands } from './commands/vlan-pool';
import { serveCommands } from './commands/serve';
import { exitCodes } from './common';

export function buildCli(argv: string[]): Argv {
  let y: Argv = yargs(argv)
    .scriptName('pgipam')
    .usage(
      '$0 <command>\n\nAdministers the pgipam database behind the OpenNebula IPAM driver. Reads the same configuration as the actions (PGIPAM_DATABASE_URL, /etc/one/ipam/pgipam.conf, PG*).',
    )
    .option('json', { type: 'boolean', default: false, describe: 'print JSON instead of tables' })
    .version(PGIPAM_VERSION);
  for (const group of [
    schemaCommands,
    spaceCommands,
    poolCommands,
    vlanPoolCommands,
    rangeCommands,
    leaseCommands,
    lookupCommands,
    reservationCommands,
    historyCommands,
    platformCommands,
    installCommands,
    dbCommands,
    doctorCommands,
    metricsCommands,
    reconcileCommands,
    importCommands,
    usageCommands,
    serveCommands,
  ])
    y = group(y);
  return y
    .demandCommand(1, 'name a command (see --help)')
    .strict()
    .help()
    .fail((msg, err) => {
      throw err ?? new IpamError('BAD_REQUEST', msg);
    });
}

export async function runCli(argv: string[]): Promise<number> {
  exitCodes.result = 0;
  exitCodes.error = 1;
  try {
    // yargs drops a lone "-" (stdin, for reconcile and import): it is passed on as /dev/stdin
    await buildCli(argv.map((a) => (a === '-' ? '/dev/stdin' : a))).parseAsync();
    return exitCodes.result;
  } catch (e) {
    const err = coerceError(e);
    // a script that asked for JSON gets its error as JSON too (one line on stderr)
    if (argv.includes('--json'))
      process.stderr.write(JSON.stringify({ error: { code: err.code, message: toOneLine(err.message) } }) + '\n');
    else process.stderr.write(`pgipam: ${toOneLine(err.message)}\n`);
    return exitCodes.error;
  }
}

// The process entry of build/pgipam.mjs (src/cli/bin.ts).
export function cliProcessMain(): void {
  routeProcessWarnings('pgipam');
  // `pgipam range list | head`: a reader that went away ends the command quietly, as for any
  // Unix tool, instead of an EPIPE stack trace.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
      throw e;
    });
  }
  runCli(hideBin(process.argv)).then((code) => {
    process.exitCode = code;
  });
}
