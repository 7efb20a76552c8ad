// register_address_range: oned registers an AR whose IPAM_MAD names this driver.
import { registerAddressRange } from '../src/allocator/actions';
import { renderTemplate } from '../src/driver/template';
import { main } from '../src/driver/run-action';

main({
  name: 'register_address_range',
  help: `Registers the AR in pgipam's database and prints the AR oned stores in its place:
  AR = [ IPAM_MAD = "...", TYPE = "...", IP = "...", SIZE = "...", ..., PGIPAM_RANGE_ID = "..." ]
Every attribute received is echoed back. Refused when the range overlaps another range of its
address space (AR attribute PGIPAM_SPACE, default "default").`,
  run: async (db, req, ctx) => renderTemplate('AR', (await registerAddressRange(db, req, ctx)).reply),
});
