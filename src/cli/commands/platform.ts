// pgipam platform list|add|rm|grant|revoke.
import type { Argv } from 'yargs';
import { addPlatform, grantPool, revokePool, listPlatforms, removePlatform } from '../../admin/platforms';
import { printTable } from '../render';
import { out, readPassword, withDb, write } from '../common';

const platformList = <T>(y: Argv<T>) =>
  y.command('list', 'list platforms', {}, async (args) => {
    const list = await withDb(listPlatforms);
    out(args, list, () =>
      printTable(
        ['NAME', 'ROLE', 'RANGES', 'GRANTED POOLS', 'DESCRIPTION'],
        list.map((p) => [p.name, p.role ?? '(schema owner)', String(p.ranges), p.pools.join(' '), p.description]),
      ),
    );
  });

const platformAdd = <T>(y: Argv<T>) =>
  y.command(
    'add <name>',
    'add a platform with its own database login role (member of pgipam_driver: DML only, row-level security)',
    (y2) =>
      y2
        .positional('name', { type: 'string', demandOption: true })
        .option('role', { type: 'string', describe: 'login role name (default pgipam_<name>)' })
        .option('password-stdin', { type: 'boolean', describe: 'read the role password from stdin' })
        .option('password-env', { type: 'string', describe: 'read the role password from this environment variable' })
        .option('description', { type: 'string' }),
    async (args) => {
      const password = readPassword(args);
      const p = await withDb((db, ctx) => addPlatform(db, args.name, { role: args.role, password, description: args.description }, ctx));
      out(args, p, () => write(`added platform ${p.name} with login role ${p.role}\n`));
    },
  );

const platformRm = <T>(y: Argv<T>) =>
  y.command(
    'rm <name>',
    'remove a platform that holds no ranges (its grants go; its role leaves pgipam_driver and is kept)',
    (y2) => y2.positional('name', { type: 'string', demandOption: true }),
    async (args) => {
      const r = await withDb((db, ctx) => removePlatform(db, args.name, ctx));
      out(args, { removed: args.name, role: r.role }, () =>
        write(
          `removed platform ${args.name}${r.role ? `; role ${r.role} is no longer a member of pgipam_driver (DROP ROLE it when nothing else uses it)` : ''}\n`,
        ),
      );
    },
  );

const platformGrant = <T>(y: Argv<T>) =>
  y.command(
    'grant <platform> <pool>',
    'let a platform use a restricted pool',
    (y2) => y2.positional('platform', { type: 'string', demandOption: true }).positional('pool', { type: 'string', demandOption: true }),
    async (args) => {
      await withDb((db, ctx) => grantPool(db, args.platform, args.pool, ctx));
      out(args, { granted: true }, () => write(`platform ${args.platform} may use pool ${args.pool}\n`));
    },
  );

const platformRevoke = <T>(y: Argv<T>) =>
  y.command(
    'revoke <platform> <pool>',
    'take a pool away from a platform',
    (y2) => y2.positional('platform', { type: 'string', demandOption: true }).positional('pool', { type: 'string', demandOption: true }),
    async (args) => {
      await withDb((db, ctx) => revokePool(db, args.platform, args.pool, ctx));
      out(args, { granted: false }, () => write(`platform ${args.platform} may no longer use pool ${args.pool}\n`));
    },
  );

export function platformCommands<T>(y: Argv<T>): Argv<T> {
  return y.command('platform <command>', 'OpenNebula front-ends and the pools they may use', (g) =>
    [platformList, platformAdd, platformRm, platformGrant, platformRevoke]
      .reduce((acc, add) => add(acc), g)
      .demandCommand(1, 'name a platform command'),
  );
}
