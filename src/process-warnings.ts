// Node prints process warnings (deprecations, experimental features) on stderr. Under oned every
// unprefixed stderr line of a failed action becomes the user's error text, and a CLI's one error
// line must stay one line: warnings become DEBUG lines when PGIPAM_DEBUG is set, and are dropped
// otherwise.
import { toOneLine } from './errors';

export function routeProcessWarnings(prefix: string): void {
  process.removeAllListeners('warning');
  process.on('warning', (w) => {
    if (process.env.PGIPAM_DEBUG) process.stderr.write(`DEBUG: ${prefix}: ${toOneLine(`${w.name}: ${w.message}`)}\n`);
  });
}
