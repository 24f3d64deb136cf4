// The CLI conventions of git, llama.cpp and the Hugging Face CLI: --version, bare `ajar` and `ajar help CMD`,
// "did you mean" for mistyped commands and flags, short aliases, --json wherever there is machine output, and every
// error on one line with exit code 2.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { closest, editDistance } from '../../src/cli/suggest.js';
import { repoRoot, runCli } from '../helpers/cli.js';
import { goldenPath } from '../helpers/golden.js';

const model = goldenPath('gpt2-tiny');

function oneLineError(args: string[]): string {
  const r = runCli(args);
  assert.equal(r.code, 2, `exit code for ${args.join(' ')}: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line expected, got: ${r.stderr}`);
  return lines[0];
}

describe('edit distance (optimal string alignment)', () => {
  it('matches the textbook values', () => {
    assert.equal(editDistance('kitten', 'sitting'), 3); // Levenshtein's example
    assert.equal(editDistance('abcd', 'acbd'), 1); // one adjacent transposition (Damerau)
    assert.equal(editDistance('ca', 'abc'), 3); // OSA, not unrestricted Damerau-Levenshtein (2)
    assert.equal(editDistance('', 'abc'), 3);
    assert.equal(closest('genrate', ['eval', 'generate']), 'generate');
    assert.equal(closest('frobnicate', ['eval', 'generate']), undefined);
  });
});

describe('ajar top level', () => {
  it('--version prints the package version and the backend', () => {
    const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    const r = runCli(['--version']);
    assert.equal(r.code, 0);
    assert.match(r.stdout.trim(), new RegExp(`^ajar ${pkg.version.replace(/\./g, '\\.')} \\(backend (native|wasm|js)\\)$`));
    assert.equal(runCli(['--version'], { env: { AJAR_BACKEND: 'js' } }).stdout.trim(), `ajar ${pkg.version} (backend js)`);
  });

  it('bare ajar prints the command list and exits 0; help CMD is CMD --help', () => {
    const bare = runCli([]);
    assert.equal(bare.code, 0);
    assert.match(bare.stdout, /^usage: ajar <command>/);
    const a = runCli(['help', 'generate']);
    assert.equal(a.code, 0);
    assert.equal(a.stdout, runCli(['generate', '--help']).stdout);
    assert.match(a.stdout, /--max-new-tokens/);
  });

  it('a mistyped command gets a suggestion', () => {
    assert.match(oneLineError(['genrate']), /unknown command 'genrate' \(did you mean 'generate'\?\)/);
    assert.doesNotMatch(oneLineError(['frobnicate']), /did you mean/);
    assert.match(oneLineError(['release', 'opne']), /unknown subcommand 'opne' \(did you mean 'open'\?\)/);
    assert.match(oneLineError(['keys', 'rotat']), /did you mean 'rotate'\?/);
  });
});

describe('flags', () => {
  it('a mistyped flag gets a suggestion, on one line', () => {
    assert.match(oneLineError(['generate', '-m', model, '--promt', 'x']), /unknown flag --promt \(did you mean --prompt\?\)/);
    assert.match(oneLineError(['eval', '--model', model, '--dat', 'x']), /did you mean --data\?/);
  });

  it('parseArgs\' three-line messages become one line', () => {
    assert.match(oneLineError(['generate', '-m', model, '--prompt', '--json']), /^ajar generate: --prompt needs a value/);
    assert.match(oneLineError(['generate', '-m', model, '--prompt']), /--prompt needs a value/);
    assert.match(oneLineError(['generate', '-m', model, '-p', 'x', '--json=1']), /--json takes no value/);
  });

  it('--top-p states its range', () => {
    assert.equal(oneLineError(['generate', '-m', model, '-p', 'x', '--top-p', '0']),
      'ajar generate: --top-p must be greater than 0 and at most 1, got 0');
  });

  it('-m -p -n -t are --model --prompt --max-new-tokens --temperature', () => {
    const short = runCli(['generate', '-m', model, '-p', 'Hello', '-n', '3', '-t', '0', '--json']);
    const long = runCli(['generate', '--model', model, '--prompt', 'Hello', '--max-new-tokens', '3', '--temperature', '0', '--json']);
    assert.equal(short.code, 0, short.stderr);
    const ids = (s: string): number[] => (JSON.parse(s) as { ids: number[] }).ids;
    assert.equal(ids(short.stdout).length, 3);
    assert.deepEqual(ids(short.stdout), ids(long.stdout));
  });
});

describe('--json wherever there is machine output', () => {
  it('usage --json is --format json; contradicting them is refused', () => {
    const db = `sqlite:${join(mkdtempSync(join(tmpdir(), 'ajar-conv-')), 'a.db')}`;
    const r = runCli(['usage', '--json', '--db', db]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), JSON.parse(runCli(['usage', '--format', 'json', '--db', db]).stdout));
    assert.match(oneLineError(['usage', '--json', '--format', 'csv', '--db', db]), /--json and --format csv/);
  });

  it('eval --json carries the accuracy the text output shows', () => {
    const json = runCli(['eval', '-m', model, '--data', join(model, 'eval.txt'), '--json']);
    const text = runCli(['eval', '-m', model, '--data', join(model, 'eval.txt')]);
    const out = JSON.parse(json.stdout) as { accuracy: number; tokens: number };
    const shown = /accuracy ([0-9.]+)%/.exec(text.stdout);
    assert.ok(shown, text.stdout);
    assert.equal((100 * out.accuracy).toFixed(2), shown[1]);
    // A share of the predicted tokens: correct / tokens.
    const correct = out.accuracy * out.tokens;
    assert.ok(Math.abs(correct - Math.round(correct)) < 1e-6, `accuracy ${out.accuracy} of ${out.tokens} tokens`);
  });
});
