// Builds the native kernels (native/*.c, binding.gyp) into build/Release/ajar_native.node with node-gyp and the
// machine's C compiler; npm runs it at install. A failed build is not an error: it prints one warning line and
// exits 0, and ajar then runs on the wasm backend. Node's own headers are used when they sit beside its binary
// (<prefix>/include/node), so nothing is downloaded.
// Usage: node scripts/build-native.mjs [--strict]   --strict: exit 1 when the build fails (for CI).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const strict = process.argv.includes('--strict');

/** node-gyp's entry script: npm's bundled copy (npm_config_node_gyp under npm), else the one beside npm. */
function nodeGyp() {
  const fromNpm = process.env.npm_config_node_gyp;
  if (fromNpm && existsSync(fromNpm)) return fromNpm;
  const require = createRequire(import.meta.url);
  try {
    return require.resolve('node-gyp/bin/node-gyp.js');
  } catch {
    // not a dependency of ours; look beside the running node's npm
  }
  const prefix = join(dirname(process.execPath), '..');
  for (const p of [join(prefix, 'lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
    join(dirname(process.execPath), 'node_modules/npm/node_modules/node-gyp/bin/node-gyp.js')]) {
    if (existsSync(p)) return p;
  }
  return null;
}

function warn(why) {
  process.stderr.write(`ajar: native kernels not built (${why}); ajar will use the wasm backend\n`);
  process.exit(strict ? 1 : 0);
}

if (process.env.AJAR_SKIP_NATIVE_BUILD === '1') warn('AJAR_SKIP_NATIVE_BUILD=1');
const gyp = nodeGyp();
if (!gyp) warn('node-gyp not found');
const args = [gyp, 'rebuild'];
const prefix = join(dirname(process.execPath), '..');
if (!process.env.npm_config_nodedir && existsSync(join(prefix, 'include/node/node_api.h'))) {
  args.push(`--nodedir=${prefix}`);
}
const r = spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8' });
if (r.status !== 0) {
  const lines = `${r.stderr ?? ''}\n${r.stdout ?? ''}`.split('\n').map((l) => l.trim());
  const err = lines.find((l) => /error:|gyp ERR! stack Error/.test(l)) ?? r.error?.message ?? `node-gyp exited ${r.status}`;
  warn(err.replace(/^gyp ERR! stack /, '').slice(0, 200));
}
