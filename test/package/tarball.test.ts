// The published package: `npm pack`'s tarball holds the built library, the CLI, the wasm kernels, the licence, the
// README and the presets' data, and no tests or fixtures; every source map's sources are inside it; and, installed
// into an empty project, `npx ajar train --preset shakespeare-char` then `npx ajar generate` run from that project.
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { repoRoot } from '../helpers/cli.js';

const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const NPX = process.platform === 'win32' ? 'npx.cmd' : 'npx';
// Bounds with room over today's 1.9 MB packed / 6.5 MB unpacked; a stray fixture or data set breaks them.
const MAX_PACKED = 3_000_000;
const MAX_UNPACKED = 9_000_000;

function run(cmd: string, args: string[], opts: SpawnSyncOptions): { code: number; stdout: string; out: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 120_000, ...opts });
  return { code: r.status ?? -1, stdout: r.stdout as string, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

function listFiles(dir: string, base = dir): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? listFiles(p, base) : [relative(base, p).split('\\').join('/')];
  });
}

describe('package: the npm tarball', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ajar-tarball-'));
  const pkg = join(tmp, 'extracted', 'package');
  let tgz = '';
  let packed = { size: 0, unpackedSize: 0 };
  let files: string[] = [];
  after(() => rmSync(tmp, { recursive: true, force: true }));

  before(() => {
    // NOTE: --ignore-scripts: `npm test` has just built dist/ (the prepare script would rebuild it for a minute).
    const r = run(NPM, ['pack', '--json', '--ignore-scripts', '--pack-destination', tmp], { cwd: repoRoot });
    assert.equal(r.code, 0, r.out);
    const info = (JSON.parse(r.stdout) as { filename: string; size: number; unpackedSize: number }[])[0];
    tgz = join(tmp, info.filename);
    packed = info;
    mkdirSync(join(tmp, 'extracted'));
    const x = run('tar', ['-xzf', tgz, '-C', join(tmp, 'extracted')], {});
    assert.equal(x.code, 0, x.out);
    files = listFiles(pkg);
  });

  it('holds the library, the CLI, the wasm kernels, LICENSE, README and the presets\' data', () => {
    for (const f of ['package.json', 'LICENSE', 'README.md', 'bin/ajar.js', 'dist/src/index.js', 'dist/src/index.d.ts',
      'dist/src/serve/index.js', 'dist/src/tensor/index.js', 'dist/src/cli/main.js', 'src/backends/wasm/kernels.wasm',
      'src/backends/wasm/kernels-relaxed.wasm', 'examples/data/tinyshakespeare.txt', 'examples/data/sentiment/train.jsonl',
      'examples/data/sentiment/val.jsonl', 'assets/licenses/Apache-2.0.txt', 'assets/gpt2/vocab.json', 'web/style.css', 'web/js/runs.js',
      'dist/src/serve/dashboard/routes.js']) {
      assert.ok(files.includes(f), `${f} is missing from the tarball`);
    }
    assert.match(readFileSync(join(pkg, 'LICENSE'), 'utf8'), /^Apache License\nVersion 2\.0, January 2004/);
  });

  it(`holds no tests, fixtures or caches; under ${MAX_PACKED / 1e6} MB packed and ${MAX_UNPACKED / 1e6} MB unpacked`, () => {
    const stray = files.filter((f) => /^(test|bench|out|docs)\/|(^|\/)golden\/|\.ajar-ids$|\.tokcache$|\.tsbuildinfo$|\.test\.js/.test(f));
    assert.deepEqual(stray, []);
    assert.ok(packed.size < MAX_PACKED, `packed ${packed.size} bytes`);
    assert.ok(packed.unpackedSize < MAX_UNPACKED, `unpacked ${packed.unpackedSize} bytes`);
  });

  it('every source map\'s sources are in the package (else: stale dist/, remove it and rebuild)', () => {
    const maps = files.filter((f) => f.endsWith('.map'));
    assert.ok(maps.length > 100, `${maps.length} maps`);
    const missing = maps.flatMap((m) => {
      const { sources } = JSON.parse(readFileSync(join(pkg, m), 'utf8')) as { sources: string[] };
      return sources.filter((s) => !existsSync(resolve(dirname(join(pkg, m)), s))).map((s) => `${m} -> ${s}`);
    });
    assert.deepEqual(missing, []);
  });

  it('every exports, main, types and bin target is in the package', () => {
    const meta = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')) as {
      main: string; types: string; bin: Record<string, string>; exports: Record<string, string | Record<string, string>>;
      repository: { url: string }; homepage: string; bugs: { url: string };
    };
    const targets = [meta.main, meta.types, ...Object.values(meta.bin),
      ...Object.values(meta.exports).flatMap((t) => (typeof t === 'string' ? [t] : Object.values(t)))];
    for (const t of targets) assert.ok(existsSync(join(pkg, t)), `${t} is missing`);
    assert.deepEqual(Object.keys(meta.exports), ['.', './serve', './tensor', './package.json']);
    assert.match(meta.repository.url, /github\.com\/ajar-ml\/ajar/);
    assert.ok(meta.homepage !== undefined && meta.bugs.url !== undefined);
  });

  it('the README links and images work on the registry page: no relative targets', () => {
    const readme = readFileSync(join(pkg, 'README.md'), 'utf8');
    const targets = [...readme.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]);
    assert.ok(targets.length > 5);
    assert.deepEqual(targets.filter((t) => !/^(https:\/\/|#)/.test(t)), []);
  });

  it('installs into an empty project, where npx ajar trains the shakespeare-char and sentiment presets and generates', () => {
    const project = join(tmp, 'project');
    mkdirSync(project);
    writeFileSync(join(project, 'package.json'), '{ "name": "consumer", "private": true }\n');
    // NOTE: dependencies come from npm's cache where it has them; --ignore-scripts skips better-sqlite3's native build
    // (minutes, and a download): training and generation must not need it.
    const install = run(NPM, ['install', '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund',
      '--fetch-retries', '0', '--fetch-timeout', '15000', tgz], { cwd: project });
    if (install.code === 0) {
      assert.doesNotMatch(install.out, /EBADENGINE/, 'every dependency supports this Node');
    } else {
      // No registry and no cached metadata: the unpacked package, with the checkout's dependencies linked beside it.
      // NOTE: copied, not linked: Node resolves a module's imports from its real path.
      console.log(`# npm install failed offline (${install.out.split('\n')[0]}); linking the checkout's node_modules`);
      mkdirSync(join(project, 'node_modules', '.bin'), { recursive: true });
      cpSync(pkg, join(project, 'node_modules', 'ajar'), { recursive: true });
      for (const dep of readdirSync(join(repoRoot, 'node_modules')).filter((d) => d !== '.bin' && d !== 'ajar')) {
        symlinkSync(join(repoRoot, 'node_modules', dep), join(project, 'node_modules', dep), 'dir');
      }
      symlinkSync('../ajar/bin/ajar.js', join(project, 'node_modules', '.bin', 'ajar'));
    }
    const env = { ...process.env, AJAR_HOME: join(tmp, 'home') };
    const train = run(NPX, ['--no', 'ajar', 'train', '--preset', 'shakespeare-char', '--max-iters', '3', '--eval-interval', '3',
      '--eval-iters', '1', '--sample-tokens', '0', '--json'], { cwd: project, env });
    assert.equal(train.code, 0, train.out);
    const summary = JSON.parse(train.stdout.trim().split('\n').at(-1)!) as { iters: number; out_dir: string; val_loss: number };
    assert.equal(summary.iters, 3);
    assert.equal(resolve(project, summary.out_dir), join(project, 'out', 'shakespeare-char'));
    // After 3 steps the loss is still near a uniform guess over the 65 characters: ln 65 = 4.17.
    assert.ok(Math.abs(summary.val_loss - Math.log(65)) < 0.2, `val loss ${summary.val_loss}`);
    const sentiment = run(NPX, ['--no', 'ajar', 'train', '--preset', 'sentiment', '--max-iters', '2', '--eval-interval', '2',
      '--eval-iters', '1', '--json'], { cwd: project, env });
    assert.equal(sentiment.code, 0, sentiment.out);
    assert.equal((JSON.parse(sentiment.stdout.trim().split('\n').at(-1)!) as { iters: number }).iters, 2);
    const gen = run(NPX, ['--no', 'ajar', 'generate', '--model', 'out/shakespeare-char', '--prompt', 'ROMEO:', '--max-new-tokens', '20',
      '--seed', '1', '--json'], { cwd: project, env });
    assert.equal(gen.code, 0, gen.out);
    const g = JSON.parse(gen.stdout.trim().split('\n').at(-1)!) as { text: string; ids: number[] };
    assert.equal(g.ids.length, 20);
    const vocab = new Set(readFileSync(join(pkg, 'examples/data/tinyshakespeare.txt'), 'utf8'));
    assert.equal(vocab.size, 65);
    assert.equal([...g.text].length, 20, 'one character per token');
    assert.ok([...g.text].every((c) => vocab.has(c)), g.text);
  });
});
