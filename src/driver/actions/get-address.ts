// get_address as oned sees it: what it reads and writes (its --help) and the library call it makes.
// A module of its own so that the executable bundles only the code of its own action.
import type { ActionDefinition } from '../action-runner';
import { getAddressInTransaction } from '../../allocator/get-address';
import { getAddressOneTrip } from '../../allocator/one-trip';
import { renderTemplate } from '../template';

export const GET_ADDRESS: ActionDefinition = {
  name: 'get_address',
  help: `Leases the lowest block of ADDRESS/SIZE contiguous free addresses of the AR and prints
  ADDRESS = [ IP = "<first address>", SIZE = "<n>" ]
Only IP4, IP4_6 and IP4_6_STATIC ARs can answer (oned checks the IPv4 address).`,
  oneTrip: async (db, req, ctx) => {
    const r = await getAddressOneTrip(db, req, ctx);
    return r && renderTemplate('ADDRESS', { IP: r.ip, SIZE: String(r.size) });
  },
  run: async (db, req, ctx) => {
    const r = await getAddressInTransaction(db, req, ctx);
    return renderTemplate('ADDRESS', { IP: r.ip, SIZE: String(r.size) });
  },
};
