// The Llama family against PyTorch: loss, gradients, `ajar eval` and greedy `ajar generate` on the random
// checkpoints test/golden/llama/make_llama_tiny.py writes (GQA with an untied head in BF16, Qwen2 biases with
// multi-query attention in F16, llama3 rope scaling with an explicit head_dim in F32 shards, a Mistral sliding window).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { readConfig, readWeights } from '../../src/io/folder.js';
import type { LlamaForCausalLM } from '../../src/models/llama.js';
import { buildModel } from '../../src/models/registry.js';
import { crossEntropy, noGrad, reshape } from '../../src/tensor/index.js';
import { forEachBackend } from '../helpers/backends.js';
import { runCli } from '../helpers/cli.js';
import { goldenPath, maxRelDiff, readGoldenJson } from '../helpers/golden.js';

interface GradRef { first_64: number[]; sum: number; sum_of_squares: number }
interface Expected {
  eval_ids: number[];
  eval: Record<string, { loss: number; perplexity: number; tokens: number }>;
  generate: { prompt: string; prompt_ids: number[]; max_new_tokens: number; generated_ids: number[]; generated_text: string }[];
  gradients: { inputs: number[][]; loss: number } & Record<string, GradRef>;
}

const FIXTURES = ['llama-tiny', 'qwen2-tiny', 'llama3-tiny', 'mistral-tiny'];
const evalText = goldenPath('llama/eval.txt');

function load(name: string): LlamaForCausalLM {
  const dir = goldenPath(`llama/${name}`);
  const model = buildModel(readConfig(dir)) as LlamaForCausalLM;
  model.loadWeights(readWeights(dir), `${name}/model.safetensors`);
  model.module.eval();
  return model;
}

for (const name of FIXTURES) {
  const expected = readGoldenJson<Expected>(`llama/${name}/expected.json`);

  forEachBackend(`${name} golden`, () => {
    it('matches the PyTorch loss and gradients on a batch of 2 x 9 tokens', () => {
      const model = load(name);
      const g = expected.gradients;
      const B = g.inputs.length;
      const T = g.inputs[0].length;
      const ids = Int32Array.from(g.inputs.flat());
      const targets = new Int32Array(B * T).fill(-100);
      for (let b = 0; b < B; b++) for (let t = 0; t < T - 1; t++) targets[b * T + t] = g.inputs[b][t + 1];
      const logits = model.forward(ids, B); // (B, T, V)
      const loss = crossEntropy(reshape(logits, [B * T, logits.shape[2]]), targets);
      assert.ok(Math.abs(loss.item() - g.loss) / g.loss < 1e-5, `loss ${loss.item()} vs ${g.loss}`);
      loss.backward();
      const params = new Map(model.module.namedParameters());
      for (const [pname, ref] of Object.entries(g)) {
        if (pname === 'inputs' || pname === 'loss') continue;
        const r = ref as GradRef;
        const grad = params.get(pname)?.grad?.data;
        assert.ok(grad, `no gradient for ${pname}`);
        let s = 0;
        let ss = 0;
        for (const v of grad) {
          s += v;
          ss += v * v;
        }
        assert.ok(Math.abs(ss - r.sum_of_squares) / r.sum_of_squares < 1e-4, `${pname} sum of squares ${ss} vs ${r.sum_of_squares}`);
        assert.ok(Math.abs(s - r.sum) < 1e-4 * Math.sqrt(r.sum_of_squares) * 10, `${pname} sum ${s} vs ${r.sum}`);
        const scale = Math.sqrt(r.sum_of_squares / grad.length);
        for (let i = 0; i < r.first_64.length; i++) {
          assert.ok(Math.abs(grad[i] - r.first_64[i]) <= 1e-4 * (Math.abs(r.first_64[i]) + scale), `${pname}[${i}] ${grad[i]} vs ${r.first_64[i]}`);
        }
      }
    });

    it('gives the same logits one token at a time through the KV cache as in one pass', () => {
      const model = load(name);
      const ids = expected.eval_ids.slice(0, 20); // past the Mistral window of 12
      noGrad(() => {
        const full = model.forward(Int32Array.from(ids), 1); // (1, T, V)
        const V = full.shape[2];
        const cache = model.newCache();
        model.forward(Int32Array.from(ids.slice(0, 5)), 1, { cache });
        for (let t = 5; t < ids.length; t++) {
          const step = model.forward(Int32Array.of(ids[t]), 1, { cache });
          assert.ok(maxRelDiff(step.data, full.data.subarray(t * V, (t + 1) * V)) < 1e-4, `position ${t}`);
        }
        // The cache holds the key/value heads only: (B, T, Hkv * hs).
        const k = cache.keys[0]!;
        assert.deepEqual(k.shape, [1, ids.length, model.cfg.num_key_value_heads * model.cfg.head_dim]);
      });
    });
  });

  describe(`ajar eval / generate on ${name}`, () => {
    const dir = goldenPath(`llama/${name}`);
    it('eval reports the PyTorch loss within 1e-4 relative, at the context length and at --block-size 32', () => {
      for (const block of Object.keys(expected.eval)) {
        const r = runCli(['eval', '--model', dir, '--data', evalText, '--block-size', block, '--json']);
        assert.equal(r.code, 0, r.stderr);
        const out = JSON.parse(r.stdout) as { loss: number; perplexity: number; tokens: number };
        const ref = expected.eval[block];
        assert.equal(out.tokens, ref.tokens);
        assert.ok(Math.abs(out.loss - ref.loss) / ref.loss < 1e-4, `block ${block}: loss ${out.loss} vs ${ref.loss}`);
      }
    });

    it('generate --temperature 0 gives the PyTorch greedy tokens', () => {
      for (const g of expected.generate) {
        const r = runCli(['generate', '--model', dir, '--prompt', g.prompt, '--temperature', '0',
          '--max-new-tokens', String(g.max_new_tokens), '--json']);
        assert.equal(r.code, 0, r.stderr);
        const out = JSON.parse(r.stdout) as { text: string; ids: number[] };
        assert.deepEqual(out.ids, g.generated_ids);
        assert.equal(out.text, g.generated_text);
      }
    });
  });
}

describe('Llama configs ajar cannot run are refused with one line and exit 2', () => {
  const base = goldenPath('llama/llama3-tiny');
  const withConfig = (edit: (c: Record<string, unknown>) => void): string => {
    const dir = join(mkdtempSync(join(tmpdir(), 'ajar-llama-')), 'model');
    cpSync(base, dir, { recursive: true });
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    edit(cfg);
    writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg));
    return dir;
  };
  const cases: [string, (c: Record<string, unknown>) => void, RegExp][] = [
    ['an unknown rope_scaling type', (c) => { c.rope_scaling = { rope_type: 'yarn', factor: 4 }; }, /rope_scaling.*"yarn"/],
    ['num_key_value_heads not dividing the heads', (c) => { c.num_key_value_heads = 3; }, /num_key_value_heads/],
    ['an odd head_dim', (c) => { c.head_dim = 15; }, /head_dim/],
    ['weights that disagree with hidden_size', (c) => { c.hidden_size = 64; }, /shape/],
    ['an unsupported hidden_act', (c) => { c.hidden_act = 'gelu'; }, /hidden_act/],
  ];
  for (const [what, edit, pattern] of cases) {
    it(what, () => {
      const r = runCli(['eval', '--model', withConfig(edit), '--data', evalText, '--json']);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, pattern);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    });
  }
});
