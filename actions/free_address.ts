// free_address: oned releases one address (it frees blocks one address per call).
import { ACTIONS } from '../src/driver/actions';
import { main } from '../src/driver/run-action';

main(ACTIONS.free_address);
