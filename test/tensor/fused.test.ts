// Fused kernels against the composite ops they replace (STYLE.md: a speed kernel sits in the backend's fused
// table and is checked against the composite): forward values and input gradients, on every backend that has one.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import {
  Rng, causalSelfAttention, causalSelfAttentionComposite, crossEntropy, crossEntropyComposite, groupedCausalAttention,
  groupedCausalAttentionComposite, layerNorm, layerNormComposite, logSoftmax, logSoftmaxComposite, mul, noGrad, randn,
  rmsNorm, rmsNormComposite, rope, ropeComposite, siluMul, siluMulComposite, softmax, softmaxComposite, sum,
  type GroupedAttentionOptions, type Tensor,
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
  const skip = (k: 'softmax' | 'logSoftmax' | 'layerNorm' | 'rmsNorm' | 'siluMul'): string | false =>
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
  it('rmsNorm with and without a weight, odd and SmolLM2-sized rows', { skip: skip('rmsNorm') }, () => {
    compare([2, 7, 96], 2, ([x, w]) => rmsNorm(x, w, 1e-5), ([x, w]) => rmsNormComposite(x, w, 1e-5), 8);
    compare([5, 33], 1, ([x]) => rmsNorm(x, null, 1e-6), ([x]) => rmsNormComposite(x, null, 1e-6), 9);
    compare([3, 576], 2, ([x, w]) => rmsNorm(x, w), ([x, w]) => rmsNormComposite(x, w), 10);
  });
  it('siluMul, odd and vector-sized lengths', { skip: skip('siluMul') }, () => {
    for (const [shape, seed] of [[[3, 5, 7], 11], [[2, 1536], 12], [[1], 13]] as const) {
      const run = (f: typeof siluMul): Float32Array[] => {
        const rng = new Rng(seed);
        const gate = randn([...shape], rng, 3).requireGrad();
        const up = randn([...shape], rng).requireGrad();
        const y = f(gate, up);
        sum(mul(y, randn([...shape], rng))).backward();
        return [Float32Array.from(y.data), Float32Array.from(gate.grad!.data), Float32Array.from(up.grad!.data)];
      };
      const [a, b] = [run(siluMul), run(siluMulComposite)];
      assert.ok(maxRelDiff(a[0], b[0]) < 1e-5, `forward ${maxRelDiff(a[0], b[0])}`);
      for (const i of [1, 2]) assert.ok(maxRelDiff(a[i], b[i]) < 1e-4, `gradient ${i}: ${maxRelDiff(a[i], b[i])}`);
    }
  });
});

forEachBackend('rope vs its composite', (backend) => {
  const skip = backend.fused?.rope ? false : `the ${backend.name} backend has no fused rope`;
  it('forward and gradients of x, and of cos and sin when they require one', { skip }, () => {
    for (const [B, T, H, hs, trig, seed] of [[2, 5, 3, 8, false, 1], [1, 9, 2, 6, true, 2], [2, 17, 3, 64, false, 3],
      [1, 1, 1, 2, true, 4]] as const) {
      const run = (f: typeof rope): Float32Array[] => {
        const rng = new Rng(seed);
        const x = randn([B, T, H * hs], rng).requireGrad();
        const cos = randn([T, hs / 2], rng);
        const sin = randn([T, hs / 2], rng);
        if (trig) [cos, sin].forEach((t) => t.requireGrad());
        const y = f(x, H, cos, sin);
        sum(mul(y, randn(y.shape, rng))).backward();
        return [y, x.grad!, ...(trig ? [cos.grad!, sin.grad!] : [])].map((t) => Float32Array.from(t.data));
      };
      const [a, b] = [run(rope), run(ropeComposite)];
      const what = `B=${B} T=${T} H=${H} hs=${hs}`;
      assert.ok(maxRelDiff(a[0], b[0]) < 1e-5, `${what} forward ${maxRelDiff(a[0], b[0])}`);
      for (let i = 1; i < a.length; i++) assert.ok(maxRelDiff(a[i], b[i]) < 1e-4, `${what} gradient ${i}: ${maxRelDiff(a[i], b[i])}`);
    }
  });
});

forEachBackend('groupedCausalAttention vs its composite', (backend) => {
  const skip = backend.fused?.groupedAttention ? false : `the ${backend.name} backend has no fused grouped attention`;
  // [B, Tq, Tk, Hq, Hkv, hs, window]: groups of 1, 2 and 3, a KV cache (Tk > Tq), sliding windows, one query;
  // over 64 queries, several blocks of query rows (the kernel skips the keys a block cannot see).
  const shapes = [[2, 5, 5, 4, 2, 8, null], [1, 7, 7, 3, 3, 4, null], [2, 6, 11, 6, 2, 8, null], [1, 9, 9, 4, 1, 6, 3],
    [2, 5, 12, 4, 2, 4, 4], [1, 1, 13, 6, 2, 8, null], [1, 1, 13, 6, 3, 8, 5], [1, 33, 33, 9, 3, 64, null],
    [1, 130, 140, 4, 2, 8, null], [2, 100, 100, 6, 3, 4, 37], [1, 70, 70, 2, 2, 4, 200]] as const;
  it('forward and gradients: groups, a KV cache, sliding windows, one query, several row blocks', { skip }, () => {
    shapes.forEach(([B, Tq, Tk, Hq, Hkv, hs, window], seed) => {
      const opts: GroupedAttentionOptions = { nHead: Hq, nKvHead: Hkv, scale: 0.3, window };
      const run = (f: typeof groupedCausalAttention): Float32Array[] => {
        const rng = new Rng(seed + 1);
        const q = randn([B, Tq, Hq * hs], rng).requireGrad();
        const k = randn([B, Tk, Hkv * hs], rng).requireGrad();
        const v = randn([B, Tk, Hkv * hs], rng).requireGrad();
        const y = f(q, k, v, opts);
        sum(mul(y, randn(y.shape, rng))).backward();
        return [y, q.grad!, k.grad!, v.grad!].map((t) => Float32Array.from(t.data));
      };
      const [a, b] = [run(groupedCausalAttention), run(groupedCausalAttentionComposite)];
      const what = `B=${B} Tq=${Tq} Tk=${Tk} Hq=${Hq} Hkv=${Hkv} hs=${hs} window=${window}`;
      assert.ok(maxRelDiff(a[0], b[0]) < 1e-5, `${what} forward ${maxRelDiff(a[0], b[0])}`);
      for (const i of [1, 2, 3]) assert.ok(maxRelDiff(a[i], b[i]) < 1e-4, `${what} gradient ${i}: ${maxRelDiff(a[i], b[i])}`);
    });
  });
  it('without gradients (generation) the probabilities are not kept, and the values agree', { skip }, () => {
    const rng = new Rng(7);
    const [q, k, v] = [randn([1, 1, 24], rng), randn([1, 10, 8], rng), randn([1, 10, 8], rng)];
    const opts = { nHead: 3, nKvHead: 1, scale: 0.5, window: 4 };
    const y = noGrad(() => groupedCausalAttention(q, k, v, opts));
    assert.equal(y.node, null);
    assert.ok(maxRelDiff(y.data, groupedCausalAttentionComposite(q, k, v, opts).data) < 1e-5);
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
