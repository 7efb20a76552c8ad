// allocate_address: oned wants a specific address (IP, IP6 or MAC, plus SIZE) marked as used.
import { allocateAddress } from '../src/allocator/actions';
import { main } from '../src/driver/run-action';

main({
  name: 'allocate_address',
  help: `Marks ADDRESS/IP (or IP6, or MAC) and the SIZE - 1 addresses after it as allocated.
Refused, naming the holder, when any of them is already leased, allocated or reserved.
Prints nothing on stdout (oned reads only the exit code).`,
  run: async (db, req, ctx) => {
    await allocateAddress(db, req, ctx);
    return '';
  },
});
