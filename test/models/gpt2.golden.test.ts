// GPT-2 against PyTorch: logits, loss and gradients of the random checkpoint written by
// test/golden/gpt2-tiny/make_gpt2_tiny.py (width 96, 6 heads, 3 layers, GPT-2's 50257-token vocabulary).
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { readConfig, readWeights } from '../../src/io/folder.js';
import type { GPT2LMHeadModel } from '../../src/models/gpt2.js';
import { buildModel } from '../../src/models/registry.js';
import { crossEntropy, noGrad, reshape } from '../../src/tensor/index.js';
import { forEachBackend } from '../helpers/backends.js';
import { goldenPath, maxRelDiff, readGoldenJson } from '../helpers/golden.js';

interface Expected {
  logits: { ids: number[]; vocab_indices: number[]; values: number[][]; argmax: number[]; logsumexp: number[]; loss: number };
  gradients: {
    inputs: number[][];
    loss: number;
    'transformer.h.1.attn.c_attn.weight': { first_200: number[]; sum: number; sum_of_squares: number };
    'transformer.ln_f.weight': number[];
    'transformer.wpe.weight': { rows_first_9: number[][] };
    'transformer.wte.weight': { ids: number[]; rows: number[][]; id_not_in_batch: number; row_not_in_batch: number[] };
    'transformer.h.0.mlp.c_fc.bias': number[];
  };
}

const dir = goldenPath('gpt2-tiny');
const expected = readGoldenJson<Expected>('gpt2-tiny/expected.json');

function load(): GPT2LMHeadModel {
  const model = buildModel(readConfig(dir)) as GPT2LMHeadModel;
  model.loadWeights(readWeights(dir), 'model.safetensors');
  return model;
}

forEachBackend('GPT-2 golden', () => {
  it('matches PyTorch logits, argmax and loss of a 7-token sequence', () => {
    const model = load();
    model.module.eval();
    const { ids, vocab_indices: vi, values, argmax, logsumexp, loss } = expected.logits;
    noGrad(() => {
      const logits = model.forward(Int32Array.from(ids), 1); // (1, 7, V)
      const V = logits.shape[2];
      assert.deepEqual(logits.shape, [1, ids.length, 50257]);
      for (let t = 0; t < ids.length; t++) {
        const row = logits.data.subarray(t * V, (t + 1) * V);
        const got = vi.map((v) => row[v]);
        assert.ok(maxRelDiff(got, values[t]) < 1e-5, `logits at position ${t}: ${maxRelDiff(got, values[t])}`);
        let best = 0;
        let m = -Infinity;
        for (let v = 0; v < V; v++) if (row[v] > m) { m = row[v]; best = v; }
        assert.equal(best, argmax[t]);
        let s = 0;
        for (let v = 0; v < V; v++) s += Math.exp(row[v] - m);
        assert.ok(Math.abs(m + Math.log(s) - logsumexp[t]) < 1e-4);
      }
      const targets = new Int32Array(ids.length).fill(-100);
      for (let t = 0; t < ids.length - 1; t++) targets[t] = ids[t + 1];
      const l = crossEntropy(reshape(logits, [ids.length, V]), targets).item();
      assert.ok(Math.abs(l - loss) / loss < 1e-5, `loss ${l} vs ${loss}`);
    });
  });

  it('matches PyTorch gradients of the LM loss on a batch of 2 x 9 tokens', () => {
    const model = load();
    model.module.eval(); // no dropout: the reference computes without it
    const g = expected.gradients;
    const B = g.inputs.length;
    const T = g.inputs[0].length;
    const ids = Int32Array.from(g.inputs.flat());
    const targets = new Int32Array(B * T).fill(-100);
    for (let b = 0; b < B; b++) for (let t = 0; t < T - 1; t++) targets[b * T + t] = g.inputs[b][t + 1];
    const logits = model.forward(ids, B);
    const loss = crossEntropy(reshape(logits, [B * T, logits.shape[2]]), targets);
    assert.ok(Math.abs(loss.item() - g.loss) / g.loss < 1e-5, `loss ${loss.item()} vs ${g.loss}`);
    loss.backward();
    const params = new Map(model.module.namedParameters());
    const grad = (name: string): Float32Array => {
      const p = params.get(name);
      assert.ok(p?.grad, `no gradient for ${name}`);
      return p.grad.data;
    };
    const attn = grad('transformer.h.1.attn.c_attn.weight');
    const ref = g['transformer.h.1.attn.c_attn.weight'];
    assert.ok(maxRelDiff(attn.subarray(0, 200), ref.first_200) < 1e-4);
    let s = 0;
    let ss = 0;
    for (const v of attn) {
      s += v;
      ss += v * v;
    }
    assert.ok(Math.abs(s - ref.sum) < 1e-4, `sum ${s} vs ${ref.sum}`);
    assert.ok(Math.abs(ss - ref.sum_of_squares) / ref.sum_of_squares < 1e-4);
    assert.ok(maxRelDiff(grad('transformer.ln_f.weight'), g['transformer.ln_f.weight']) < 1e-4);
    assert.ok(maxRelDiff(grad('transformer.h.0.mlp.c_fc.bias'), g['transformer.h.0.mlp.c_fc.bias']) < 1e-4);
    const wpe = grad('transformer.wpe.weight');
    g['transformer.wpe.weight'].rows_first_9.forEach((row, r) => {
      assert.ok(maxRelDiff(wpe.subarray(r * 96, (r + 1) * 96), row) < 1e-4, `wpe row ${r}`);
    });
    // The tied embedding's gradient holds both the embedding and the LM-head contributions.
    const wte = grad('transformer.wte.weight');
    const w = g['transformer.wte.weight'];
    w.ids.forEach((id, k) => {
      assert.ok(maxRelDiff(wte.subarray(id * 96, (id + 1) * 96), w.rows[k]) < 1e-4, `wte row ${id}`);
    });
    const other = w.id_not_in_batch;
    assert.ok(maxRelDiff(wte.subarray(other * 96, (other + 1) * 96), w.row_not_in_batch) < 1e-4);
  });

  it('gives the same logits with a KV cache as without', () => {
    const model = load();
    const ids = expected.logits.ids;
    noGrad(() => {
      const full = model.forward(Int32Array.from(ids), 1);
      const cache = model.newCache();
      const V = full.shape[2];
      model.forward(Int32Array.from(ids.slice(0, 3)), 1, { cache });
      for (let t = 3; t < ids.length; t++) {
        const step = model.forward(Int32Array.of(ids[t]), 1, { cache });
        assert.ok(maxRelDiff(step.data, full.data.subarray(t * V, (t + 1) * V)) < 1e-5, `position ${t}`);
      }
    });
  });
});
