// pgipam install: the actions into OpenNebula's remotes, the driver's config file, the oned.conf line.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Argv } from 'yargs';
import { install } from '../../admin/install';
import { out, write } from '../common';

// The built actions this CLI was packaged with: remotes/ipam/pgipam beside build/.
function packagedActions(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../remotes/ipam/pgipam');
}

// postgres://user:secret@host/db -> postgres://user:***@host/db
export function hidePassword(url: string): string {
  return url.replace(/^([a-z]+:\/\/[^/:@]*:)[^/@]*@/i, '$1***@').replace(/(password=)[^&\s]*/i, '$1***');
}

export function installCommands<T>(y: Argv<T>): Argv<T> {
  return y.command(
    'install',
    'install the five actions into OpenNebula (remotes/ipam/<mad>), write the driver config, and print the oned.conf edit; safe to run again',
    (y2) =>
      y2
        .option('mad', {
          type: 'string',
          default: 'pgipam',
          describe: 'IPAM_MAD name: the directory under remotes/ipam and the AR attribute',
        })
        .option('remotes', { type: 'string', default: '/var/lib/one/remotes', describe: "OpenNebula's remotes directory" })
        .option('config', {
          type: 'string',
          default: '/etc/one/ipam/pgipam.conf',
          describe: 'driver config file to write (0600, owner oneadmin)',
        })
        .option('database-url', { type: 'string', describe: 'database_url for the config file (the password goes only there)' })
        .option('platform', { type: 'string', describe: 'platform = ... for the config file' })
        .option('oned-conf', {
          type: 'string',
          default: '/etc/one/oned.conf',
          describe: "oned's configuration, read to say what to change",
        })
        .option('force', { type: 'boolean', default: false, describe: 'overwrite a directory that holds something other than pgipam' })
        .option('dry-run', { type: 'boolean', default: false, describe: 'say what would be done, change nothing' }),
    async (args) => {
      const r = install({
        source: packagedActions(),
        remotes: args.remotes,
        mad: args.mad,
        config: args.config,
        databaseUrl: args.databaseUrl,
        platform: args.platform,
        onedConf: args.onedConf,
        force: args.force,
        dryRun: args.dryRun,
      });
      out(args, r, () => {
        for (const s of r.steps) write(`${s.done.padEnd(12)} ${s.what}\n`);
        if (args.databaseUrl !== undefined) write(`config       database_url = ${hidePassword(args.databaseUrl)}\n`);
        const c = r.onedConf;
        if (c.alreadyThere) write(`\n${c.file}: IPAM_MAD already names "${args.mad}" (${c.current}); nothing to change\n`);
        else {
          write(`\nIn ${c.file}${c.readable ? '' : ' (not readable here)'}, IPAM_MAD must name "${args.mad}":\n`);
          if (c.current) write(`  now:     ${c.current}\n`);
          write(`  make it: ${c.wanted}\nthen restart oned (systemctl restart opennebula).\n`);
        }
      });
    },
  );
}
