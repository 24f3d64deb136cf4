// Generation past the context window: greedy tokens against PyTorch running nanoGPT's crop (the last contextLength
// ids each step), for GPT-2's learned positions and Mistral's RoPE; finish reasons; the CLI's seed and empty prompt.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { selectBackend } from '../../src/backends/select.js';
import { emptyPromptIds, generate } from '../../src/generate/index.js';
import { loadCausalLM } from '../../src/models/index.js';
import { runCli } from '../helpers/cli.js';
import { goldenPath, readGoldenJson } from '../helpers/golden.js';

interface Case { prompt_ids: number[]; block_size: number; max_new_tokens: number; generated_ids: number[]; min_top2_gap: number }
const expected = readGoldenJson<{ gpt2_tiny: Case; gpt2_tiny_from_bos: Case; mistral_tiny: Case }>('generate/expected.json');

describe('generation past the context (make_sliding_golden.py: PyTorch with nanoGPT crop)', () => {
  before(() => selectBackend());

  it('GPT-2 (learned positions): greedy tokens past the context of 128 equal PyTorch\'s', async () => {
    const g = expected.gpt2_tiny;
    assert.ok(g.min_top2_gap > 1e-3, 'the reference argmax has a margin far above float32 rounding');
    const { model, tokenizer } = loadCausalLM(goldenPath('gpt2-tiny'));
    assert.equal(model.contextLength, g.block_size);
    assert.ok(g.prompt_ids.length + g.max_new_tokens > g.block_size);
    const r = await generate(model, tokenizer, g.prompt_ids, { temperature: 0, maxNewTokens: g.max_new_tokens, stopAtEos: false });
    assert.deepEqual(r.ids, g.generated_ids);
    assert.equal(r.finishReason, 'length');
    // Without the window, generation ends with 'context' once the context holds 128 tokens.
    const fixed = await generate(model, tokenizer, g.prompt_ids,
      { temperature: 0, maxNewTokens: g.max_new_tokens, stopAtEos: false, slidingWindow: false });
    assert.equal(fixed.finishReason, 'context');
    assert.deepEqual(fixed.ids, g.generated_ids.slice(0, g.block_size - g.prompt_ids.length));
  });

  it('Mistral (RoPE, KV cache re-prefilled on the window): greedy tokens past a context of 16 equal PyTorch\'s', async () => {
    const g = expected.mistral_tiny;
    const dir = mkdtempSync(join(tmpdir(), 'ajar-sliding-'));
    cpSync(goldenPath('llama/mistral-tiny'), dir, { recursive: true });
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, max_position_embeddings: g.block_size }));
    const { model, tokenizer } = loadCausalLM(dir);
    assert.equal(model.contextLength, g.block_size);
    const r = await generate(model, tokenizer, g.prompt_ids, { temperature: 0, maxNewTokens: g.max_new_tokens, stopAtEos: false });
    assert.deepEqual(r.ids, g.generated_ids);
  });

  it('an empty prompt starts from BOS, or from "\\n" without one (nanoGPT sample.py), else a clear error', () => {
    assert.deepEqual(emptyPromptIds({ bosTokenId: 50256, encode: () => [] }), [50256]);
    assert.deepEqual(emptyPromptIds({ bosTokenId: null, encode: (t) => (t === '\n' ? [0] : []) }), [0]);
    assert.throws(() => emptyPromptIds({ bosTokenId: null, encode: () => [] }), /no BOS token/);
  });
});

describe('ajar generate: seed, finish_reason, empty prompt', () => {
  const model = goldenPath('gpt2-tiny');

  it('a random seed by default, printed with --json; --seed with it repeats the tokens', () => {
    const args = ['generate', '-m', model, '-p', 'Hello', '-t', '1', '-n', '6', '--json'];
    const a = JSON.parse(runCli(args).stdout) as { ids: number[]; seed: number; finish_reason: string };
    const b = JSON.parse(runCli(args).stdout) as { seed: number };
    assert.notEqual(a.seed, b.seed);
    assert.equal(a.finish_reason, 'length');
    const again = JSON.parse(runCli([...args, '--seed', String(a.seed)]).stdout) as { ids: number[]; seed: number };
    assert.deepEqual(again.ids, a.ids);
    assert.equal(again.seed, a.seed);
  });

  it('--prompt "" generates what PyTorch does from <|endoftext|> (GPT-2\'s BOS), as the server reads an empty prompt', () => {
    const g = expected.gpt2_tiny_from_bos;
    const r = runCli(['generate', '-m', model, '-p', '', '-t', '0', '-n', String(g.max_new_tokens), '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual((JSON.parse(r.stdout) as { ids: number[] }).ids, g.generated_ids);
  });
});
