// pgipam space list|add.
import type { Argv } from 'yargs';
import { printTable } from '../render';
import { addSpace, listSpaces } from '../../admin/spaces';
import { out, withDb, write } from '../common';

export function spaceCommands<T>(y: Argv<T>): Argv<T> {
  return y.command('space <command>', 'address spaces (ranges of one space may not overlap)', (y) =>
    y
      .command('list', 'list address spaces', {}, async (args) => {
        const list = await withDb(listSpaces);
        out(args, list, () =>
          printTable(
            ['NAME', 'RANGES', 'DESCRIPTION'],
            list.map((s) => [s.name, String(s.ranges), s.description]),
          ),
        );
      })
      .command(
        'add <name>',
        'create an address space (for overlapping private networks, e.g. one per VLAN)',
        (y2) => y2.positional('name', { type: 'string', demandOption: true }).option('description', { type: 'string', default: '' }),
        async (args) => {
          const id = await withDb((db, ctx) => addSpace(db, args.name, args.description, ctx));
          out(args, { id, name: args.name }, () => write(`created address space ${args.name}\n`));
        },
      )
      .demandCommand(1, 'name a space command'),
  );
}
