// get_address: oned wants SIZE contiguous free addresses from an IPv4-bearing AR.
import { GET_ADDRESS } from '../src/driver/actions/get-address';
import { actionProcessMain } from '../src/driver/action-runner';

actionProcessMain(GET_ADDRESS);
