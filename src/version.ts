// The version of this pgipam: the actions' --help, `pgipam --version`, the history of every change
// and `pgipam doctor` (which compares the installed actions with the CLI) all say the same.
// The build writes it into each bundle (esbuild define); unbundled (the tests) it is read from
// package.json beside the sources.
import fs from 'node:fs';
import path from 'node:path';

declare const __PGIPAM_VERSION__: string | undefined;

function fromPackageJson(): string {
  for (let dir = __dirname; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (!fs.existsSync(file)) continue;
    const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: string; version?: string };
    if (pkg.name === 'pgipam' && pkg.version) return pkg.version;
  }
  return 'unknown';
}

export const PGIPAM_VERSION: string = typeof __PGIPAM_VERSION__ === 'string' ? __PGIPAM_VERSION__ : fromPackageJson();
