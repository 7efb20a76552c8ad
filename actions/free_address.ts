// free_address: oned releases one address (it frees blocks one address per call).
import { ACTION_DEFINITIONS } from '../src/driver/action-definitions';
import { actionProcessMain } from '../src/driver/action-runner';

actionProcessMain(ACTION_DEFINITIONS.free_address);
