// The five executables OpenNebula's IPAM MAD runs, by the names it runs them.
export const ACTION_NAMES = [
  'register_address_range',
  'unregister_address_range',
  'allocate_address',
  'get_address',
  'free_address',
] as const;
export type ActionName = (typeof ACTION_NAMES)[number];
