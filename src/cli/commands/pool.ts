// pgipam pool list|show|add|set|rm.
import type { Argv } from 'yargs';
import { IpamError } from '../../errors';
import { printTable } from '../render';
import { type PoolOptions, addPool, listPools, poolInfo, removePool, setPool } from '../../admin/pool-admin';
import { getPool } from '../../allocator/pool-space';
import { out, parseAttrs, withDb, write, poolOptions } from '../common';
import { printPool, poolJson, pct } from '../render';

const poolList = <T>(y: Argv<T>) =>
  y.command('list', 'list pools and their use', {}, async (args) => {
    const list = await withDb(listPools);
    out(args, list.map(poolJson), () =>
      printTable(
        ['NAME', 'SPACE', 'PREFIXES', 'RANGES', 'USED', 'FLAGS'],
        list.map((p) => {
          const size = p.prefixes.reduce((a, x) => a + x.size, 0n);
          const used = p.prefixes.reduce((a, x) => a + x.carved + x.reserved, 0n);
          return [
            p.pool.name,
            p.pool.spaceName,
            p.prefixes.map((x) => x.prefix).join(' '),
            String(p.ranges),
            `${pct(used, size)}%`,
            [p.pool.isDefault ? 'default' : '', p.pool.restricted ? 'restricted' : ''].filter(Boolean).join(','),
          ];
        }),
      ),
    );
  });

const poolShow = <T>(y: Argv<T>) =>
  y.command(
    'show <name>',
    'show a pool with a map of its prefixes',
    (y2) => y2.positional('name', { type: 'string', demandOption: true }),
    async (args) => {
      const info = await withDb(async (db) => {
        const p = await getPool(db, args.name);
        if (!p) throw new IpamError('NOT_FOUND', `no pool "${args.name}"`);
        return poolInfo(db, p);
      });
      out(args, poolJson(info), () => printPool(info));
    },
  );

const poolAdd = <T>(y: Argv<T>) =>
  y.command(
    'add <name>',
    'define a pool',
    (y2) =>
      poolOptions(
        y2
          .positional('name', { type: 'string', demandOption: true })
          .option('prefix', {
            type: 'string',
            array: true,
            demandOption: true,
            describe: 'IPv4 or IPv6 prefix (repeatable), e.g. 10.20.0.0/16',
          })
          .option('space', { type: 'string', default: 'default' }),
      ),
    async (args) => {
      const pool = await withDb((db, ctx) =>
        addPool(
          db,
          String(args.name),
          {
            space: args.space,
            prefixes: args.prefix,
            ...poolSettings(args),
          },
          ctx,
        ),
      );
      out(args, pool, () => write(`created pool ${pool.name} in space ${pool.spaceName}\n`));
    },
  );

// What --gateway, --dns and the other options of poolOptions say, for pool add and pool set.
function poolSettings(args: PoolArgs): PoolOptions {
  return {
    gateway: args.gateway,
    dns: args.dns,
    searchDomain: args.searchDomain,
    mtu: args.mtu,
    vlanId: args.vlan,
    vlanPool: args.vlanPool,
    holdSeconds: args.holdSeconds,
    isDefault: args.default,
    restricted: args.restricted,
    extra: parseAttrs(args.attr),
    description: args.description,
  };
}

type PoolArgs = {
  gateway?: string;
  dns?: string;
  searchDomain?: string;
  mtu?: number;
  vlan?: number;
  vlanPool?: string;
  holdSeconds?: number;
  default?: boolean;
  restricted?: boolean;
  attr?: string[];
  description?: string;
};

const poolSet = <T>(y: Argv<T>) =>
  y.command(
    'set <name>',
    'change a pool',
    (y2) =>
      poolOptions(
        y2
          .positional('name', { type: 'string', demandOption: true })
          .option('add-prefix', { type: 'string', array: true })
          .option('remove-prefix', { type: 'string', array: true }),
      ),
    async (args) => {
      const pool = await withDb((db, ctx) =>
        setPool(
          db,
          String(args.name),
          {
            addPrefixes: args.addPrefix,
            removePrefixes: args.removePrefix,
            ...poolSettings(args),
          },
          ctx,
        ),
      );
      out(args, pool, () => write(`changed pool ${pool.name}\n`));
    },
  );

const poolRm = <T>(y: Argv<T>) =>
  y.command(
    'rm <name>',
    'remove a pool; refused while ranges use it unless --force',
    (y2) => y2.positional('name', { type: 'string', demandOption: true }).option('force', { type: 'boolean', default: false }),
    async (args) => {
      const r = await withDb((db, ctx) => removePool(db, args.name, args.force, ctx));
      out(args, r, () => write(`removed pool ${args.name}${r.detached ? ` (${r.detached} ranges now outside any pool)` : ''}\n`));
    },
  );

export function poolCommands<T>(y: Argv<T>): Argv<T> {
  return y.command('pool <command>', 'pools that ranges are carved from', (g) =>
    [poolList, poolShow, poolAdd, poolSet, poolRm].reduce((acc, add) => add(acc), g).demandCommand(1, 'name a pool command'),
  );
}
