// register_address_range: oned registers an AR whose IPAM_MAD names this driver.
import { ACTIONS } from '../src/driver/actions';
import { main } from '../src/driver/run-action';

main(ACTIONS.register_address_range);
