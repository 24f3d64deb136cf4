// `ajar eval`, `ajar generate` and `ajar tokenize` on the PyTorch-written GPT-2 checkpoint, against the
// values make_gpt2_tiny.py computed, plus the error contract: one line on stderr, exit 2, no stack trace.
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, copyFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runCli } from '../helpers/cli.js';
import { goldenPath, readGoldenJson } from '../helpers/golden.js';

interface Expected {
  eval: Record<string, { loss: number; perplexity: number; tokens: number }>;
  eval_ids: number[];
  generate: { prompt: string; prompt_ids: number[]; max_new_tokens: number; generated_ids: number[]; generated_text: string }[];
}

const model = goldenPath('gpt2-tiny');
const expected = readGoldenJson<Expected>('gpt2-tiny/expected.json');

describe('ajar eval / generate / tokenize on a PyTorch GPT-2 checkpoint', () => {
  it('eval reports the PyTorch loss within 1e-4 relative (context-length windows)', () => {
    const r = runCli(['eval', '--model', model, '--data', join(model, 'eval.txt'), '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { loss: number; perplexity: number; tokens: number };
    const ref = expected.eval['128'];
    assert.equal(out.tokens, ref.tokens);
    assert.ok(Math.abs(out.loss - ref.loss) / ref.loss < 1e-4, `loss ${out.loss} vs ${ref.loss}`);
    assert.ok(Math.abs(out.perplexity - Math.exp(out.loss)) < 1e-6 * out.perplexity);
  });

  it('generate --temperature 0 gives PyTorch greedy tokens for both prompts', () => {
    for (const g of expected.generate) {
      const r = runCli(['generate', '--model', model, '--prompt', g.prompt, '--temperature', '0',
        '--max-new-tokens', String(g.max_new_tokens), '--json']);
      assert.equal(r.code, 0, r.stderr);
      const out = JSON.parse(r.stdout) as { text: string; ids: number[] };
      assert.deepEqual(out.ids, g.generated_ids);
      assert.equal(out.text, g.generated_text);
    }
  });

  it('generate streams the same text without --json', () => {
    const g = expected.generate[0];
    const r = runCli(['generate', '--model', model, '--prompt', g.prompt, '--temperature', '0',
      '--max-new-tokens', String(g.max_new_tokens)]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${g.generated_text}\n`);
  });

  it('generate stops before a stop string', () => {
    const g = expected.generate[0];
    const stop = g.generated_text.slice(10, 14);
    const r = runCli(['generate', '--model', model, '--prompt', g.prompt, '--temperature', '0',
      '--max-new-tokens', String(g.max_new_tokens), '--stop', stop, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { text: string };
    assert.equal(out.text, g.generated_text.slice(0, g.generated_text.indexOf(stop)));
  });

  it('tokenize gives the reference encoder ids of the evaluation text', () => {
    const r = runCli(['tokenize', '--model', model, '--file', join(model, 'eval.txt'), '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual((JSON.parse(r.stdout) as { ids: number[] }).ids, expected.eval_ids);
  });

  it('sampling with a seed is reproducible and differs across seeds', () => {
    const args = ['generate', '--model', model, '--prompt', 'Hello', '--temperature', '1', '--top-k', '50',
      '--max-new-tokens', '12', '--json'];
    const a = JSON.parse(runCli([...args, '--seed', '7']).stdout) as { ids: number[] };
    const b = JSON.parse(runCli([...args, '--seed', '7']).stdout) as { ids: number[] };
    const c = JSON.parse(runCli([...args, '--seed', '8']).stdout) as { ids: number[] };
    assert.deepEqual(a.ids, b.ids);
    assert.notDeepEqual(a.ids, c.ids);
  });
});

describe('CLI errors: one clear line on stderr, exit code 2, no stack trace', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ajar-cli-'));
  const expectError = (args: string[], pattern: RegExp): void => {
    const r = runCli(args);
    assert.equal(r.code, 2, `exit code for ${args.join(' ')}: ${r.stderr}`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `one line expected, got: ${r.stderr}`);
    assert.match(lines[0], pattern);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  };

  it('missing model folder', () => {
    expectError(['eval', '--model', join(tmp, 'nope'), '--data', join(model, 'eval.txt')], /nope/);
  });

  it('folder without config.json', () => {
    const dir = join(tmp, 'empty');
    mkdirSync(dir);
    expectError(['generate', '--model', dir, '--prompt', 'x'], /config\.json/);
  });

  it('malformed config.json', () => {
    const dir = join(tmp, 'badjson');
    mkdirSync(dir);
    writeFileSync(join(dir, 'config.json'), '{"n_embd": 96,');
    expectError(['generate', '--model', dir, '--prompt', 'x'], /config\.json/);
  });

  it('unknown architecture', () => {
    const dir = join(tmp, 'arch');
    mkdirSync(dir);
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ architectures: ['MambaForCausalLM'], model_type: 'mamba' }));
    copyFileSync(join(model, 'model.safetensors'), join(dir, 'model.safetensors'));
    expectError(['generate', '--model', dir, '--prompt', 'x'], /MambaForCausalLM.*not supported/);
  });

  it('corrupt weights file', () => {
    const dir = join(tmp, 'corrupt');
    mkdirSync(dir);
    for (const f of ['config.json', 'vocab.json', 'merges.txt', 'tokenizer_config.json']) copyFileSync(join(model, f), join(dir, f));
    const bytes = readFileSync(join(model, 'model.safetensors'));
    writeFileSync(join(dir, 'model.safetensors'), bytes.subarray(0, bytes.length - 100));
    expectError(['eval', '--model', dir, '--data', join(model, 'eval.txt')], /model\.safetensors/);
  });

  it('bad flags', () => {
    expectError(['eval', '--model', model, '--data', join(model, 'eval.txt'), '--block-size', 'ten'], /--block-size/);
    expectError(['generate', '--model', model, '--prompt', 'x', '--bogus'], /bogus/);
    expectError(['generate', '--model', model], /--prompt/);
    expectError(['tokenize', '--model', model], /--text or --file/);
    expectError(['eval', '--model', model, '--data', join(tmp, 'missing.txt')], /missing\.txt/);
    expectError(['eval', '--model', model, '--data', join(model, 'eval.txt'), '--block-size', '4096'], /context/);
  });

  it('unknown command', () => {
    const r = runCli(['frobnicate']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown command 'frobnicate'/);
  });
});
