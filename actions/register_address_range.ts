// register_address_range: oned registers an AR whose IPAM_MAD names this driver.
import { ACTION_DEFINITIONS } from '../src/driver/action-definitions';
import { actionProcessMain } from '../src/driver/action-runner';

actionProcessMain(ACTION_DEFINITIONS.register_address_range);
