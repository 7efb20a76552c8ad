// pgipam doctor: checks an install end to end, each line ok / warn / fail with what to do.
import type { Argv } from 'yargs';
import { runDoctor } from '../../admin/doctor';
import { DEFAULT_CONFIG_PATH, loadConfig } from '../../config';
import { IpamError } from '../../errors';
import { out, write } from '../common';

export function doctorCommands<T>(y: Argv<T>): Argv<T> {
  return y.command(
    'doctor',
    'check the install: config file, database, TLS, schema, driver role, replication, oned.conf, the actions and their version, node, usage above 90%, consistency; exit 1 when a check fails',
    (y2) =>
      y2
        .option('remotes', { type: 'string', default: '/var/lib/one/remotes', describe: "OpenNebula's remotes directory" })
        .option('mad', { type: 'string', default: 'pgipam', describe: 'the IPAM_MAD name (remotes/ipam/<mad>)' })
        .option('oned-conf', { type: 'string', default: '/etc/one/oned.conf' }),
    async (args) => {
      const checks = await runDoctor({
        remotes: args.remotes,
        mad: args.mad,
        onedConf: args.onedConf,
        configPath: process.env.PGIPAM_CONFIG || DEFAULT_CONFIG_PATH,
        loadConfig: () => loadConfig(process.env),
      });
      out(args, checks, () => {
        for (const c of checks) write(`${c.status.padEnd(5)} ${c.check.padEnd(12)} ${c.detail}\n`);
      });
      const failed = checks.filter((c) => c.status === 'fail').length;
      if (failed) throw new IpamError('CONFLICT', `${failed} check${failed === 1 ? '' : 's'} failed`);
    },
  );
}
