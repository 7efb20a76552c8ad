// unregister_address_range: oned removes an AR (onevnet rmar, onevnet delete).
import { ACTION_DEFINITIONS } from '../src/driver/action-definitions';
import { actionProcessMain } from '../src/driver/action-runner';

actionProcessMain(ACTION_DEFINITIONS.unregister_address_range);
