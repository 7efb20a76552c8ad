// Entry point of the pgipam executable (build/pgipam.mjs).
import { cliProcessMain } from './index';

cliProcessMain();
