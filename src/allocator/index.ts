// The five IPAM operations the driver's actions run, each one transaction on PostgreSQL.
export { registerAddressRange, type RegisterResult } from './register';
export { unregisterAddressRange, type UnregisterResult } from './unregister';
export { getAddress, type AddressResult } from './get-address';
export { allocateAddress, type AllocateResult } from './allocate-address';
export { freeAddress, type FreeResult } from './free-address';
export { ipv4Layout } from './carving';
