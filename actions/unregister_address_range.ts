// unregister_address_range: oned removes an AR (onevnet rmar, onevnet delete).
import { ACTIONS } from '../src/driver/actions';
import { main } from '../src/driver/run-action';

main(ACTIONS.unregister_address_range);
