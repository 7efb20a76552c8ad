// unregister_address_range as oned sees it: what it reads and writes (its --help) and the library call it makes.
// A module of its own so that the executable bundles only the code of its own action.
import type { ActionDefinition } from '../action-runner';
import { unregisterAddressRange } from '../../allocator/unregister';

export const UNREGISTER_ADDRESS_RANGE: ActionDefinition = {
  name: 'unregister_address_range',
  help: `Removes the AR's range from pgipam, releases its leases and returns its subnet to its pool.
Succeeds when the range is already gone. Prints nothing on stdout (oned ignores it).`,
  run: async (db, req, ctx) => {
    await unregisterAddressRange(db, req, ctx);
    return '';
  },
};
