// free_address: oned releases one address (it frees blocks one address per call).
import { freeAddress } from '../src/allocator/actions';
import { main } from '../src/driver/run-action';

main({
  name: 'free_address',
  help: `Frees ADDRESS/IP (or IP6, or MAC), even one address out of a leased block. Succeeds when
the address is already free. Prints nothing on stdout.`,
  run: async (db, req, ctx) => {
    await freeAddress(db, req, ctx);
    return '';
  },
});
