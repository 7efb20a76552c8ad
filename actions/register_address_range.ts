// register_address_range: oned registers an AR whose IPAM_MAD names this driver.
import { REGISTER_ADDRESS_RANGE } from '../src/driver/actions/register-address-range';
import { actionProcessMain } from '../src/driver/action-runner';

actionProcessMain(REGISTER_ADDRESS_RANGE);
