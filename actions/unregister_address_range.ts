// unregister_address_range: oned removes an AR (onevnet rmar, onevnet delete).
import { UNREGISTER_ADDRESS_RANGE } from '../src/driver/actions/unregister-address-range';
import { actionProcessMain } from '../src/driver/action-runner';

actionProcessMain(UNREGISTER_ADDRESS_RANGE);
