// allocate_address: oned wants a specific address (IP, IP6 or MAC, plus SIZE) marked as used.
import { ACTION_DEFINITIONS } from '../src/driver/action-definitions';
import { actionProcessMain } from '../src/driver/action-runner';

actionProcessMain(ACTION_DEFINITIONS.allocate_address);
