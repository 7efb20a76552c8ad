// pgipam db setup: the database, its owner, the schema and a driver role, from an admin connection.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Argv } from 'yargs';
import { dbSetup } from '../../admin/db-setup';
import { lookupUser, writeFileAtomic } from '../../admin/files';
import { parseConfigText } from '../../config';
import { PGIPAM_VERSION } from '../../version';
import { cliContext, out, write } from '../common';

// The host's short name as a platform name: one front-end, one platform.
const defaultPlatform = () =>
  os
    .hostname()
    .split('.')[0]!
    .replace(/[^A-Za-z0-9_.-]/g, '-')
    .slice(0, 63) || 'front-end';

function configUser(file: string): string | null {
  try {
    const url = parseConfigText(fs.readFileSync(file, 'utf8'), file).database_url;
    return url ? decodeURIComponent(new URL(url).username) : null;
  } catch {
    return null;
  }
}

export function dbCommands<T>(y: Argv<T>): Argv<T> {
  return y.command('db <command>', 'the PostgreSQL side of an install', (g) =>
    g
      .command(
        'setup',
        'create the database, its owner role, btree_gist, the schema and a driver login role for the platform (safe to run twice)',
        (y2) =>
          y2
            .option('admin-url', {
              type: 'string',
              describe: 'a superuser connection (default: the postgres user over /var/run/postgresql)',
            })
            .option('database', { type: 'string', default: 'pgipam' })
            .option('owner', { type: 'string', default: 'pgipam', describe: 'role that owns the schema (no login)' })
            .option('platform', {
              type: 'string',
              default: defaultPlatform(),
              describe: 'platform of this front-end (default: the host name)',
            })
            .option('config', {
              type: 'string',
              default: '/etc/one/ipam/pgipam.conf',
              describe: 'driver config file to write the password into',
            })
            .option('db-host', { type: 'string', describe: 'host[:port] front-ends connect to (default: the admin URL host)' })
            .option('front-end', {
              type: 'string',
              array: true,
              default: [],
              describe: 'HOST/CIDR of a front-end, for the pg_hba.conf lines (repeatable)',
            })
            .option('print-password', {
              type: 'boolean',
              default: false,
              describe: 'print the database_url once instead of writing the config file',
            })
            .option('reset-password', { type: 'boolean', default: false, describe: 'give an existing platform role a new password' }),
        async (args) => {
          const r = await dbSetup(
            {
              adminUrl: args.adminUrl,
              database: args.database,
              owner: args.owner,
              platform: args.platform,
              dbHost: args.dbHost,
              frontEnds: args.frontEnd,
              resetPassword: args.resetPassword,
              configHasRole: (role) => configUser(args.config) === role,
            },
            cliContext(),
          );
          let configLine: string | null = null;
          if (r.databaseUrl && !args.printPassword) {
            const owner = lookupUser('oneadmin') ?? undefined;
            const text = `# pgipam driver configuration (written by pgipam db setup ${PGIPAM_VERSION})\ndatabase_url = ${r.databaseUrl}\nplatform = ${args.platform}\n`;
            if (!fs.existsSync(path.dirname(args.config))) fs.mkdirSync(path.dirname(args.config), { recursive: true, mode: 0o750 });
            writeFileAtomic(args.config, text, 0o600, owner);
            configLine = `wrote ${args.config} (mode 0600${owner ? ', owner oneadmin' : ''}) with the password of ${r.role}`;
          }
          const { databaseUrl, ...shown } = r;
          out(args, { ...shown, config: configLine, database_url: args.printPassword ? databaseUrl : undefined }, () => {
            for (const s of r.steps) write(`${s.done.padEnd(8)} ${s.what}\n`);
            if (configLine) write(`${configLine}\n`);
            if (args.printPassword && databaseUrl)
              write(`database_url = ${databaseUrl}\n(shown once: put it into the front-end's ${args.config})\n`);
            write(
              `${r.changed ? '' : 'nothing changed: everything was already there\n'}\npg_hba.conf (before the lines that would match first), then reload PostgreSQL:\n`,
            );
            for (const l of r.hba) write(`  ${l}\n`);
            write('pg_ident.conf (for the local peer line):\n');
            for (const l of r.ident) write(`  ${l}\n`);
            for (const a of r.advice) write(`\nchange: ${a}\n`);
          });
        },
      )
      .demandCommand(1, 'name a db command'),
  );
}
