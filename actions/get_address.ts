// get_address: oned wants SIZE contiguous free addresses from an IPv4-bearing AR.
import { ACTIONS } from '../src/driver/actions';
import { main } from '../src/driver/run-action';

main(ACTIONS.get_address);
