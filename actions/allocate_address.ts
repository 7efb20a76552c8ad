// allocate_address: oned wants a specific address (IP, IP6 or MAC, plus SIZE) marked as used.
import { ACTIONS } from '../src/driver/actions';
import { main } from '../src/driver/run-action';

main(ACTIONS.allocate_address);
