// Entry point of the pgipam executable (build/pgipam.mjs).
import { main } from './index';

main();
