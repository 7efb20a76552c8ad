// free_address as oned sees it: what it reads and writes (its --help) and the library call it makes.
// A module of its own so that the executable bundles only the code of its own action.
import type { ActionDefinition } from '../action-runner';
import { freeAddressInTransaction } from '../../allocator/free-address';
import { freeAddressOneTrip } from '../../allocator/one-trip';

export const FREE_ADDRESS: ActionDefinition = {
  name: 'free_address',
  help: `Frees ADDRESS/IP (or IP6, or MAC), even one address out of a leased block. Succeeds when
the address is already free. Prints nothing on stdout.`,
  oneTrip: async (db, req, ctx) => ((await freeAddressOneTrip(db, req, ctx)) ? '' : null),
  run: async (db, req, ctx) => {
    await freeAddressInTransaction(db, req, ctx);
    return '';
  },
};
