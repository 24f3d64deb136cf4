// The install step for the native kernels: scripts/build-native.mjs builds the addon from the shipped sources
// (in a copy of them, so this worktree's build/ is untouched), and a failed build is one warning line and exit 0
// (exit 1 with --strict); package.json ships everything the install needs.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { nativeAvailable, nativeUnavailableReason } from '../../src/backends/native/index.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const skip = nativeAvailable() ? false : `no toolchain built the addon here: ${nativeUnavailableReason()}`;

/** A fresh copy of what the package ships for the build. */
function shippedCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ajar-native-build-'));
  cpSync(join(root, 'native'), join(dir, 'native'), { recursive: true });
  cpSync(join(root, 'binding.gyp'), join(dir, 'binding.gyp'));
  cpSync(join(root, 'scripts/build-native.mjs'), join(dir, 'scripts/build-native.mjs'));
  return dir;
}

function build(dir: string, env: Record<string, string>, args: string[] = []): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [join(dir, 'scripts/build-native.mjs'), ...args], {
    cwd: dir, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 300_000,
  });
  return { status: r.status, stderr: r.stderr };
}

test('package.json ships the native sources, binding.gyp and the install script, and runs it at install', () => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { files: string[]; scripts: Record<string, string> };
  for (const f of ['native', 'binding.gyp', 'scripts/build-native.mjs']) assert.ok(pkg.files.includes(f), `files lacks ${f}`);
  assert.equal(pkg.scripts.install, 'node scripts/build-native.mjs');
});

describe('scripts/build-native.mjs', () => {
  const dirs: string[] = [];
  after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  test('builds a loadable addon from the shipped files', { skip }, () => {
    const dir = shippedCopy();
    dirs.push(dir);
    const r = build(dir, {});
    assert.equal(r.status, 0, r.stderr);
    const addon = join(dir, 'build/Release/ajar_native.node');
    assert.ok(existsSync(addon));
    const probe = spawnSync(process.execPath, ['-e', `const m = require(${JSON.stringify(addon)}); console.log(JSON.stringify(m.init(1)))`],
      { encoding: 'utf8' });
    assert.equal(probe.status, 0, probe.stderr);
    assert.match(probe.stdout, /"isa":"(avx512|avx2|generic)","threads":1/);
  });

  test('a failing compiler is one warning line and exit 0; --strict makes it exit 1', () => {
    const dir = shippedCopy();
    dirs.push(dir);
    const broken = { CC: '/bin/false', CXX: '/bin/false' };
    const r = build(dir, broken);
    assert.equal(r.status, 0);
    assert.match(r.stderr, /^ajar: native kernels not built \(.+\); ajar will use the wasm backend\n$/);
    assert.equal(build(dir, broken, ['--strict']).status, 1);
  });
});
