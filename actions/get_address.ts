// get_address: oned wants SIZE contiguous free addresses from an IPv4-bearing AR.
import { ACTION_DEFINITIONS } from '../src/driver/action-definitions';
import { actionProcessMain } from '../src/driver/action-runner';

actionProcessMain(ACTION_DEFINITIONS.get_address);
