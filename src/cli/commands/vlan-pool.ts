// pgipam vlan-pool add|list|show|set|rm|reserve|unreserve|grant|revoke.
import type { Argv } from 'yargs';
import {
  addVlanPool,
  grantVlanPool,
  listVlanPools,
  removeVlanPool,
  reserveVlans,
  setVlanPool,
  showVlanPool,
  unreserveVlans,
} from '../../admin/vlan-pools';
import { out, withDb, write } from '../common';
import { printTable } from '../render';
import { vlanHolderText } from './lookup';

const templates = <T>(y: Argv<T>) =>
  y
    .option('bridge', { type: 'string', describe: 'BRIDGE of carved networks, {vlan} is the ID (e.g. "br{vlan}")' })
    .option('phydev', { type: 'string', describe: 'PHYDEV of carved networks (e.g. bond0)' })
    .option('vn-mad', { type: 'string', describe: 'VN_MAD of carved networks (e.g. 802.1Q)' })
    .option('restricted', { type: 'boolean', describe: 'only granted platforms may take IDs from it' })
    .option('description', { type: 'string' });

const vlanAdd = <T>(y: Argv<T>) =>
  y.command(
    'add <name>',
    'define a VLAN pool',
    (y2) =>
      templates(
        y2
          .positional('name', { type: 'string', demandOption: true })
          .option('ids', { type: 'string', demandOption: true, describe: 'VLAN IDs, e.g. 100-199,300,400-409' })
          .option('domain', { type: 'string', default: 'default', describe: 'the switch fabric in which an ID is unique' }),
      ),
    async (args) => {
      await withDb((db, ctx) =>
        addVlanPool(
          db,
          args.name,
          args.ids,
          {
            domain: args.domain,
            bridge: args.bridge,
            phydev: args.phydev,
            vnMad: args.vnMad,
            restricted: args.restricted,
            description: args.description,
          },
          ctx,
        ),
      );
      out(args, { created: args.name }, () => write(`created VLAN pool ${args.name} (domain ${args.domain}, IDs ${args.ids})\n`));
    },
  );

const vlanList = <T>(y: Argv<T>) =>
  y.command(
    'list',
    'list VLAN pools with their use',
    (y2) => y2,
    async (args) => {
      const list = await withDb((db) => listVlanPools(db));
      out(args, list, () =>
        printTable(
          ['NAME', 'DOMAIN', 'IDS', 'USED', 'RESERVED', 'FREE', 'BRIDGE', 'POOLS'],
          list.map((v) => [
            v.name,
            v.domain,
            v.ids,
            String(v.used),
            String(v.reserved),
            String(v.free),
            v.bridge ?? '-',
            v.addressPools.join(',') || '-',
          ]),
        ),
      );
    },
  );

const vlanShow = <T>(y: Argv<T>) =>
  y.command(
    'show <name>',
    'show a VLAN pool and who holds its IDs',
    (y2) => y2.positional('name', { type: 'string', demandOption: true }),
    async (args) => {
      const v = await withDb((db) => showVlanPool(db, args.name));
      out(args, v, () => {
        write(
          `VLAN pool ${v.name}  domain ${v.domain}  IDs ${v.ids}${v.restricted ? `  restricted to: ${v.grants.join(', ') || 'nobody'}` : ''}\n`,
        );
        write(
          `bridge ${v.bridge ?? '-'}  phydev ${v.phydev ?? '-'}  vn_mad ${v.vnMad ?? '-'}  address pools ${v.addressPools.join(', ') || '-'}\n`,
        );
        write(`${v.used} held by networks, ${v.reserved} reserved, ${v.free} free of ${v.size}\n`);
        for (const h of v.held) write(`  ${vlanHolderText(h)}\n`);
      });
    },
  );

const vlanSet = <T>(y: Argv<T>) =>
  y.command(
    'set <name>',
    "change a VLAN pool's IDs, templates or restriction",
    (y2) =>
      templates(
        y2
          .positional('name', { type: 'string', demandOption: true })
          .option('add-ids', { type: 'string' })
          .option('remove-ids', { type: 'string', describe: 'refused while an ID is held' }),
      ),
    async (args) => {
      await withDb((db, ctx) =>
        setVlanPool(
          db,
          args.name,
          {
            bridge: args.bridge,
            phydev: args.phydev,
            vnMad: args.vnMad,
            restricted: args.restricted,
            description: args.description,
            addIds: args.addIds,
            removeIds: args.removeIds,
          },
          ctx,
        ),
      );
      out(args, { changed: args.name }, () => write(`changed VLAN pool ${args.name}\n`));
    },
  );

const vlanRm = <T>(y: Argv<T>) =>
  y.command(
    'rm <name>',
    'remove a VLAN pool no address pool uses and no network holds an ID of',
    (y2) => y2.positional('name', { type: 'string', demandOption: true }),
    async (args) => {
      await withDb((db, ctx) => removeVlanPool(db, args.name, ctx));
      out(args, { removed: args.name }, () => write(`removed VLAN pool ${args.name}\n`));
    },
  );

const vlanReserve = <T>(y: Argv<T>) =>
  y.command(
    'reserve <name> <ids>',
    'keep VLAN IDs of the pool out of allocation',
    (y2) =>
      y2
        .positional('name', { type: 'string', demandOption: true })
        .positional('ids', { type: 'string', demandOption: true })
        .option('reason', { type: 'string', demandOption: true }),
    async (args) => {
      const ids = await withDb((db, ctx) => reserveVlans(db, args.name, args.ids, args.reason, ctx));
      out(args, { reserved: ids }, () => write(`reserved ${ids.length} VLAN IDs of ${args.name}\n`));
    },
  );

const vlanUnreserve = <T>(y: Argv<T>) =>
  y.command(
    'unreserve <name> <ids>',
    'give reserved VLAN IDs back to the pool',
    (y2) => y2.positional('name', { type: 'string', demandOption: true }).positional('ids', { type: 'string', demandOption: true }),
    async (args) => {
      const n = await withDb((db, ctx) => unreserveVlans(db, args.name, args.ids, ctx));
      out(args, { unreserved: n }, () => write(`unreserved ${n} VLAN IDs of ${args.name}\n`));
    },
  );

const vlanGrant = <T>(y: Argv<T>) =>
  y.command(
    'grant <name> <platform>',
    'let a platform take IDs from a restricted VLAN pool',
    (y2) => y2.positional('name', { type: 'string', demandOption: true }).positional('platform', { type: 'string', demandOption: true }),
    async (args) => {
      await withDb((db) => grantVlanPool(db, args.name, args.platform, true));
      out(args, { granted: args.platform }, () => write(`granted VLAN pool ${args.name} to ${args.platform}\n`));
    },
  );

const vlanRevoke = <T>(y: Argv<T>) =>
  y.command(
    'revoke <name> <platform>',
    'take the grant back (networks keep their IDs)',
    (y2) => y2.positional('name', { type: 'string', demandOption: true }).positional('platform', { type: 'string', demandOption: true }),
    async (args) => {
      await withDb((db) => grantVlanPool(db, args.name, args.platform, false));
      out(args, { revoked: args.platform }, () => write(`revoked VLAN pool ${args.name} from ${args.platform}\n`));
    },
  );

export function vlanPoolCommands<T>(y: Argv<T>): Argv<T> {
  return y.command('vlan-pool <command>', 'VLAN pools: the VLAN IDs carved networks get, one holder per ID in a VLAN domain', (y) =>
    [vlanAdd, vlanList, vlanShow, vlanSet, vlanRm, vlanReserve, vlanUnreserve, vlanGrant, vlanRevoke]
      .reduce((acc, c) => c(acc), y)
      .demandCommand(1, 'name a vlan-pool command'),
  );
}
