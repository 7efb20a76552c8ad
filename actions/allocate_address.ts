// allocate_address: oned wants a specific address (IP, IP6 or MAC, plus SIZE) marked as used.
import { ALLOCATE_ADDRESS } from '../src/driver/actions/allocate-address';
import { actionProcessMain } from '../src/driver/action-runner';

actionProcessMain(ALLOCATE_ADDRESS);
