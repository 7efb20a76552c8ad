// get_address: oned wants SIZE contiguous free addresses from an IPv4-bearing AR.
import { getAddress } from '../src/allocator/actions';
import { renderTemplate } from '../src/driver/template';
import { main } from '../src/driver/run-action';

main({
  name: 'get_address',
  help: `Leases the lowest block of ADDRESS/SIZE contiguous free addresses of the AR and prints
  ADDRESS = [ IP = "<first address>", SIZE = "<n>" ]
Only IP4, IP4_6 and IP4_6_STATIC ARs can answer (oned checks the IPv4 address).`,
  run: async (db, req, ctx) => {
    const r = await getAddress(db, req, ctx);
    return renderTemplate('ADDRESS', { IP: r.ip, SIZE: String(r.size) });
  },
});
