// free_address: oned releases one address (it frees blocks one address per call).
import { FREE_ADDRESS } from '../src/driver/actions/free-address';
import { actionProcessMain } from '../src/driver/action-runner';

actionProcessMain(FREE_ADDRESS);
