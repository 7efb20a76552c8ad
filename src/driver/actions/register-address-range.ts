// register_address_range as oned sees it: what it reads and writes (its --help) and the library call it makes.
// A module of its own so that the executable bundles only the code of its own action.
import type { ActionDefinition } from '../action-runner';
import { registerAddressRange } from '../../allocator/register';
import { renderTemplate } from '../template';

export const REGISTER_ADDRESS_RANGE: ActionDefinition = {
  name: 'register_address_range',
  help: `Registers the AR in pgipam's database and prints the AR oned stores in its place:
  AR = [ IPAM_MAD = "...", TYPE = "...", IP = "...", SIZE = "...", ..., PGIPAM_RANGE_ID = "..." ]
Every attribute received is echoed back. An AR without IP (or IP6, or IPv6 prefix) gets a subnet
carved from the pool named by PGIPAM_POOL or the default pool. Refused when the range overlaps
another range of its address space (AR attribute PGIPAM_SPACE, default "default").`,
  run: async (db, req, ctx) => renderTemplate('AR', (await registerAddressRange(db, req, ctx)).reply),
};
