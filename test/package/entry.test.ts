// The entry points: 'ajar' (tensors, models, tokenizers, generation, training, evaluation, releases) and
// 'ajar/tensor' load no HTTP server and no database, 'ajar/serve' holds both, and every `import ... from 'ajar...'`
// in the README and docs/ resolves through package.json's exports map to names the entry exports.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { repoRoot } from '../helpers/cli.js';

// NOTE: run from the repository root, a bare 'ajar' resolves to this package by self-reference, through its
// exports map exactly as an installed copy would. fastify and better-sqlite3 are CommonJS, so every one of their
// files that loads, even through import, enters require.cache: the packages listed are those whose code ran.
function loadedPackages(specifier: string): string[] {
  const code = `
    await import(${JSON.stringify(specifier)});
    const { createRequire } = await import('node:module');
    const names = Object.keys(createRequire(import.meta.url).cache)
      .map((p) => p.match(/node_modules[\\\\/]((?:@[^\\\\/]+[\\\\/])?[^\\\\/]+)/)?.[1]).filter((n) => n !== undefined);
    console.log(JSON.stringify([...new Set(names)].sort()));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as string[];
}

/** `import { a, type B } from 'ajar...'` statements in the ts/js code blocks of a Markdown file. */
function documentedImports(markdown: string): { specifier: string; names: string[] }[] {
  const blocks = [...markdown.matchAll(/```(?:ts|js|typescript|javascript)\n([\s\S]*?)```/g)].map((m) => m[1]);
  return blocks.flatMap((b) => [...b.matchAll(/import\s*\{([^}]*)\}\s*from\s*'(ajar[^']*)'/g)].map((m) => ({
    specifier: m[2],
    names: m[1].split(',').map((n) => n.trim()).filter((n) => n !== '' && !n.startsWith('type ')).map((n) => n.split(/\s+as\s+/)[0]),
  })));
}

describe('package: entry points', () => {
  it("'ajar' loads no HTTP server and no database", () => {
    const loaded = loadedPackages('ajar');
    for (const p of ['fastify', 'better-sqlite3', 'find-my-way', 'avvio']) assert.ok(!loaded.includes(p), `'ajar' loaded ${p}: ${loaded}`);
  });

  it("'ajar/tensor' loads no dependency at all", () => {
    assert.deepEqual(loadedPackages('ajar/tensor'), []);
  });

  it("'ajar/serve' loads the server (the check above sees fastify when it loads)", () => {
    assert.ok(loadedPackages('ajar/serve').includes('fastify'));
  });

  it('the README\'s and docs/\' imports resolve through the exports map to exported names; deep paths are refused', () => {
    const docs = ['README.md', ...readdirSync(join(repoRoot, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
    const imports = docs.flatMap((f) => documentedImports(readFileSync(join(repoRoot, f), 'utf8')).map((i) => ({ ...i, file: f })));
    const specs = new Set(imports.map((i) => i.specifier));
    assert.ok(specs.has('ajar') && specs.has('ajar/tensor') && specs.has('ajar/serve'), [...specs].join(' '));
    const code = `
      const imports = ${JSON.stringify(imports)};
      const problems = [];
      for (const { file, specifier, names } of imports) {
        let m;
        try { m = await import(specifier); } catch (e) { problems.push(file + ': ' + specifier + ': ' + e.code); continue; }
        for (const n of names) if (!(n in m)) problems.push(file + ': ' + specifier + ' has no export ' + n);
      }
      const deep = await import('ajar/dist/src/serve/index.js').then(() => 'loaded', (e) => e.code);
      console.log(JSON.stringify({ problems, deep }));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    const { problems, deep } = JSON.parse(r.stdout) as { problems: string[]; deep: string };
    assert.deepEqual(problems, []);
    assert.equal(deep, 'ERR_PACKAGE_PATH_NOT_EXPORTED');
  });

  it("'ajar' exports the API, not the kernels' internals", async () => {
    const api = await import('../../src/index.js');
    for (const name of ['emptyBuf', 'discardNormal', 'normalFill', 'uniformFill', 'adamwUpdate', 'sumSquares', 'buildServer']) {
      assert.ok(!(name in api), `'ajar' exports ${name}`);
    }
    for (const name of ['tensor', 'Tensor', 'Rng', 'loadCausalLM', 'generateStream', 'Trainer', 'releaseOpen']) assert.ok(name in api, name);
  });
});
