// The committed kernel binaries (src/backends/wasm/*.wasm, the fallback when dist/ was built without
// scripts/build-wasm.mjs) must be what the AssemblyScript sources in asm/ compile to.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));

test('the committed .wasm files are up to date with asm/ (node scripts/build-wasm.mjs --check)', { timeout: 120_000 }, () => {
  const r = spawnSync(process.execPath, ['scripts/build-wasm.mjs', '--check'], { cwd: root, encoding: 'utf8' });
  assert.equal(r.status, 0, `${r.stderr}${r.stdout}`);
});
