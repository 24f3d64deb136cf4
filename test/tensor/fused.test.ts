// Fused kernels against the composite ops they replace (STYLE.md: a speed kernel sits in the backend's fused
// table and is checked against the composite): forward values and input gradients, on every backend that has one.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import {
  Rng, causalSelfAttention, causalSelfAttentionComposite, crossEntropy, crossEntropyComposite, layerNorm, layerNormComposite, logSoftmax, logSoftmaxComposite, mul, randn, softmax, softmaxComposite, sum,
  type Tensor,
} from '../../src/tensor/index.js';
import { forEachBackend } from '../helpers/backends.js';
import { maxRelDiff } from '../helpers/golden.js';

type Op = (inputs: Tensor[]) => Tensor;

function compare(shape: number[], nInputs: number, fused: Op, composite: Op, seed: number): void {
  const run = (op: Op): { out: Float32Array; grads: Float32Array[] } => {
    const rng = new Rng(seed);
    const inputs = [randn(shape, rng, 3).requireGrad(), ...Array.from({ length: nInputs - 1 }, () => randn([shape[shape.length - 1]], rng).requireGrad())];
    const up = randn(shape, rng);
    const y = op(inputs);
    sum(mul(y, up)).backward();
    return { out: Float32Array.from(y.data), grads: inputs.map((t) => Float32Array.from(t.grad!.data)) };
  };
  const a = run(fused);
  const b = run(composite);
  assert.ok(maxRelDiff(a.out, b.out) < 1e-5, `forward ${maxRelDiff(a.out, b.out)}`);
  a.grads.forEach((g, i) => assert.ok(maxRelDiff(g, b.grads[i]) < 1e-4, `gradient ${i}: ${maxRelDiff(g, b.grads[i])}`));
}

forEachBackend('fused kernels vs composites', (backend) => {
  const skip = (k: 'softmax' | 'logSoftmax' | 'layerNorm'): string | false =>
    backend.fused?.[k] ? false : `the ${backend.name} backend has no fused ${k} (the composite is what runs)`;
  it('softmax', { skip: skip('softmax') }, () => {
    compare([3, 5, 17], 1, ([x]) => softmax(x, -1), ([x]) => softmaxComposite(x, -1), 1);
    compare([2, 50257], 1, ([x]) => softmax(x, -1), ([x]) => softmaxComposite(x, -1), 2);
  });
  it('logSoftmax', { skip: skip('logSoftmax') }, () => {
    compare([4, 33], 1, ([x]) => logSoftmax(x), ([x]) => logSoftmaxComposite(x), 3);
    compare([3, 50257], 1, ([x]) => logSoftmax(x), ([x]) => logSoftmaxComposite(x), 4);
  });
  it('layerNorm with weight and bias, weight only, and neither', { skip: skip('layerNorm') }, () => {
    compare([2, 7, 96], 3, ([x, w, b]) => layerNorm(x, w, b, 1e-5), ([x, w, b]) => layerNormComposite(x, w, b, 1e-5), 5);
    compare([5, 33], 2, ([x, w]) => layerNorm(x, w, null, 1e-5), ([x, w]) => layerNormComposite(x, w, null, 1e-5), 6);
    compare([5, 33], 1, ([x]) => layerNorm(x, null, null, 1e-6), ([x]) => layerNormComposite(x, null, null, 1e-6), 7);
  });
});

forEachBackend('crossEntropy vs its composite', (backend) => {
  it(`every reduction, ignored rows, a 50257-word vocabulary (${backend.name})`, () => {
    for (const [N, C, seed] of [[7, 9, 11], [4, 50257, 12]] as const) {
      const targets = Int32Array.from({ length: N }, (_, i) => (i === 1 ? -100 : (i * 7919) % C));
      for (const reduction of ['mean', 'sum', 'none'] as const) {
        const run = (f: typeof crossEntropy): { out: Float32Array; grad: Float32Array } => {
          const rng = new Rng(seed);
          const x = randn([N, C], rng, 3).requireGrad();
          const y = f(x, targets, { reduction });
          const up = randn(y.shape, rng);
          sum(mul(y, up)).backward();
          return { out: Float32Array.from(y.data), grad: Float32Array.from(x.grad!.data) };
        };
        const a = run(crossEntropy);
        const b = run(crossEntropyComposite);
        assert.ok(maxRelDiff(a.out, b.out) < 1e-5, `${reduction} ${N}x${C} forward ${maxRelDiff(a.out, b.out)}`);
        assert.ok(maxRelDiff(a.grad, b.grad) < 1e-4, `${reduction} ${N}x${C} gradient ${maxRelDiff(a.grad, b.grad)}`);
      }
    }
  });
});

forEachBackend('causalSelfAttention vs its composite', (backend) => {
  const skip = backend.fused?.attention ? false : `the ${backend.name} backend has no fused attention`;
  it('forward and gradient: several heads, one head, odd lengths, one position', { skip }, () => {
    for (const [B, T, C, H, seed] of [[2, 5, 12, 3, 1], [3, 64, 128, 4, 2], [1, 1, 8, 2, 3], [2, 17, 48, 1, 4], [4, 33, 96, 6, 5]]) {
      const run = (f: typeof causalSelfAttention): { out: Float32Array; grad: Float32Array } => {
        const rng = new Rng(seed);
        const x = randn([B, T, 3 * C], rng).requireGrad();
        const y = f(x, H, 0.37);
        sum(mul(y, randn(y.shape, rng))).backward();
        return { out: Float32Array.from(y.data), grad: Float32Array.from(x.grad!.data) };
      };
      const a = run(causalSelfAttention);
      const b = run(causalSelfAttentionComposite);
      const what = `B=${B} T=${T} C=${C} H=${H}`;
      assert.ok(maxRelDiff(a.out, b.out) < 1e-5, `${what} forward ${maxRelDiff(a.out, b.out)}`);
      assert.ok(maxRelDiff(a.grad, b.grad) < 1e-4, `${what} gradient ${maxRelDiff(a.grad, b.grad)}`);
    }
  });
});
