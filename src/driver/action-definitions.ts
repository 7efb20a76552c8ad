// The five actions as oned sees them, by name (each in src/driver/actions/, which the executables
// in actions/ import one at a time, so that each bundles only its own action's code).
import type { ActionDefinition, ActionName } from './action-runner';
import { REGISTER_ADDRESS_RANGE } from './actions/register-address-range';
import { UNREGISTER_ADDRESS_RANGE } from './actions/unregister-address-range';
import { GET_ADDRESS } from './actions/get-address';
import { ALLOCATE_ADDRESS } from './actions/allocate-address';
import { FREE_ADDRESS } from './actions/free-address';

export const ACTION_DEFINITIONS: Record<ActionName, ActionDefinition> = {
  register_address_range: REGISTER_ADDRESS_RANGE,
  unregister_address_range: UNREGISTER_ADDRESS_RANGE,
  get_address: GET_ADDRESS,
  allocate_address: ALLOCATE_ADDRESS,
  free_address: FREE_ADDRESS,
};
