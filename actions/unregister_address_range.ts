// unregister_address_range: oned removes an AR (onevnet rmar, onevnet delete).
import { unregisterAddressRange } from '../src/allocator/actions';
import { main } from '../src/driver/run-action';

main({
  name: 'unregister_address_range',
  help: `Removes the AR's range from pgipam and releases its leases. Succeeds when the range is
already gone. Prints nothing on stdout (oned ignores it).`,
  run: async (db, req, ctx) => {
    await unregisterAddressRange(db, req, ctx);
    return '';
  },
});
