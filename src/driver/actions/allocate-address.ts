// allocate_address as oned sees it: what it reads and writes (its --help) and the library call it makes.
// A module of its own so that the executable bundles only the code of its own action.
import type { ActionDefinition } from '../action-runner';
import { allocateAddressInTransaction } from '../../allocator/allocate-address';
import { allocateAddressOneTrip } from '../../allocator/one-trip';

export const ALLOCATE_ADDRESS: ActionDefinition = {
  name: 'allocate_address',
  help: `Marks ADDRESS/IP (or IP6, or MAC) and the SIZE - 1 addresses after it as allocated.
Refused, naming the holder, when any of them is already leased, allocated or reserved.
Prints nothing on stdout (oned reads only the exit code).`,
  oneTrip: async (db, req, ctx) => ((await allocateAddressOneTrip(db, req, ctx)) ? '' : null),
  run: async (db, req, ctx) => {
    await allocateAddressInTransaction(db, req, ctx);
    return '';
  },
};
