// A tiny Llama and Mistral on the wasm and native backends' fused kernels (rmsNorm, rope, siluMul, grouped attention)
// against the same models on the js backend, where every op is its composite: logits, loss and every parameter's
// gradient, and a KV-cache decode that must agree with the full forward pass.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jsBackend } from '../../src/backends/js/index.js';
import { getNativeBackend, nativeAvailable, nativeUnavailableReason } from '../../src/backends/native/index.js';
import { getWasmBackend, wasmAvailable, wasmUnavailableReason } from '../../src/backends/wasm/index.js';
import { LlamaForCausalLM } from '../../src/models/llama.js';
import { crossEntropy, noGrad, reshape, Rng, setBackend, slice, type Backend } from '../../src/tensor/index.js';
import { maxRelDiff } from '../helpers/golden.js';

/** The backends with fused Llama kernels, each with its skip reason (false: it loads). */
const FUSED: [string, () => Backend, string | false][] = [
  ['wasm', getWasmBackend, wasmAvailable() ? false : `wasm backend unavailable: ${wasmUnavailableReason()}`],
  ['native', getNativeBackend, nativeAvailable() ? false : `native backend unavailable: ${nativeUnavailableReason()}`],
];

/** Width 64 of 4 query heads and 2 key/value heads of 16, 2 layers; Mistral's with a 5-token window. */
function config(window: number | null): Record<string, unknown> {
  return {
    architectures: [window === null ? 'LlamaForCausalLM' : 'MistralForCausalLM'], vocab_size: 61, hidden_size: 64,
    intermediate_size: 96, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2,
    max_position_embeddings: 64, rms_norm_eps: 1e-5, tie_word_embeddings: false, sliding_window: window,
  };
}

function build(be: Backend, window: number | null): LlamaForCausalLM {
  setBackend(be);
  const m = window === null ? new LlamaForCausalLM(config(window), 'LlamaForCausalLM', 'llama')
    : new LlamaForCausalLM(config(window), 'MistralForCausalLM', 'mistral');
  m.initWeights(new Rng(3));
  for (const [, t] of m.module.namedParameters()) {
    if (t.data.every((v) => v === 1)) t.data.forEach((_, i) => { t.data[i] = 1 + 0.01 * (i % 7); }); // norms off 1
  }
  return m;
}

const B = 2;
const T = 11;
const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 17 + 5) % 61);
const targets = Int32Array.from({ length: B * T }, (_, i) => (i * 29 + 3) % 61);

/** Logits, loss and gradients by parameter name. */
function run(be: Backend, window: number | null): { logits: Float32Array; loss: number; grads: Map<string, Float32Array> } {
  const m = build(be, window);
  const logits = m.forward(ids, B); // (B, T, V)
  const loss = crossEntropy(reshape(logits, [B * T, 61]), targets);
  loss.backward();
  const grads = new Map(m.module.namedParameters().map(([n, t]) => [n, Float32Array.from(t.grad!.data)]));
  return { logits: Float32Array.from(logits.data), loss: loss.data[0], grads };
}

for (const [name, getFused, skip] of FUSED) {
  describe(`Llama on ${name}'s fused kernels vs composites`, { skip }, () => {
    for (const window of [null, 5]) {
      it(`logits, loss and every gradient (${window === null ? 'Llama' : 'Mistral, window 5'})`, () => {
        try {
          const ref = run(jsBackend, window);
          const fused = run(getFused(), window);
          assert.ok(maxRelDiff(fused.logits, ref.logits) < 1e-5, `logits ${maxRelDiff(fused.logits, ref.logits)}`);
          assert.ok(Math.abs(fused.loss - ref.loss) < 1e-5, `loss ${fused.loss} vs ${ref.loss}`);
          for (const [name, g] of ref.grads) {
            const d = maxRelDiff(fused.grads.get(name)!, g);
            assert.ok(d < 1e-4, `${name}: ${d}`);
          }
        } finally {
          setBackend(jsBackend);
        }
      });

      it(`a KV-cache decode matches the full forward (${window === null ? 'Llama' : 'Mistral, window 5'})`, () => {
        try {
          const m = build(getFused(), window);
          noGrad(() => {
            const row = ids.subarray(0, T);
            const full = m.forward(row, 1); // (1, T, V)
            const cache = m.newCache();
            m.forward(row.subarray(0, 4), 1, { cache }); // a 4-token prompt, then one token at a time
            for (let t = 4; t < T; t++) {
              const step = m.forward(row.subarray(t, t + 1), 1, { cache }); // (1, 1, V)
              const want = slice(full, 1, t, t + 1);
              assert.ok(maxRelDiff(step.data, want.data) < 1e-4, `position ${t}: ${maxRelDiff(step.data, want.data)}`);
            }
          });
        } finally {
          setBackend(jsBackend);
        }
      });
    }
  });
}
