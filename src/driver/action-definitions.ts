// The five actions as oned sees them: what each reads and writes (its --help), and the library
// call it makes. The executables in actions/ are one line each around these definitions.
import type { ActionDefinition, ActionName } from './action-runner';
import { renderTemplate } from './template';
import { allocateAddress } from '../allocator/allocate-address';
import { freeAddress } from '../allocator/free-address';
import { getAddress } from '../allocator/get-address';
import { registerAddressRange } from '../allocator/register';
import { unregisterAddressRange } from '../allocator/unregister';

export const ACTION_DEFINITIONS: Record<ActionName, ActionDefinition> = {
  register_address_range: {
    name: 'register_address_range',
    help: `Registers the AR in pgipam's database and prints the AR oned stores in its place:
  AR = [ IPAM_MAD = "...", TYPE = "...", IP = "...", SIZE = "...", ..., PGIPAM_RANGE_ID = "..." ]
Every attribute received is echoed back. An AR without IP (or IP6, or IPv6 prefix) gets a subnet
carved from the pool named by PGIPAM_POOL or the default pool. Refused when the range overlaps
another range of its address space (AR attribute PGIPAM_SPACE, default "default").`,
    run: async (db, req, ctx) => renderTemplate('AR', (await registerAddressRange(db, req, ctx)).reply),
  },
  unregister_address_range: {
    name: 'unregister_address_range',
    help: `Removes the AR's range from pgipam, releases its leases and returns its subnet to its pool.
Succeeds when the range is already gone. Prints nothing on stdout (oned ignores it).`,
    run: async (db, req, ctx) => {
      await unregisterAddressRange(db, req, ctx);
      return '';
    },
  },
  get_address: {
    name: 'get_address',
    help: `Leases the lowest block of ADDRESS/SIZE contiguous free addresses of the AR and prints
  ADDRESS = [ IP = "<first address>", SIZE = "<n>" ]
Only IP4, IP4_6 and IP4_6_STATIC ARs can answer (oned checks the IPv4 address).`,
    run: async (db, req, ctx) => {
      const r = await getAddress(db, req, ctx);
      return renderTemplate('ADDRESS', { IP: r.ip, SIZE: String(r.size) });
    },
  },
  allocate_address: {
    name: 'allocate_address',
    help: `Marks ADDRESS/IP (or IP6, or MAC) and the SIZE - 1 addresses after it as allocated.
Refused, naming the holder, when any of them is already leased, allocated or reserved.
Prints nothing on stdout (oned reads only the exit code).`,
    run: async (db, req, ctx) => {
      await allocateAddress(db, req, ctx);
      return '';
    },
  },
  free_address: {
    name: 'free_address',
    help: `Frees ADDRESS/IP (or IP6, or MAC), even one address out of a leased block. Succeeds when
the address is already free. Prints nothing on stdout.`,
    run: async (db, req, ctx) => {
      await freeAddress(db, req, ctx);
      return '';
    },
  },
};
