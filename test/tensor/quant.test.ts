// Int8 weights (tensor/quant.ts): quantizeQ8 against llama.cpp's Q8_0 reference (test/golden/quant/make_q8.py), and
// linearQ8 / embeddingQ8 on every backend against the composite (the dequantised weight through linear) and the
// js reference kernel; with grad mode on, an input that wants a gradient is refused.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { matmulQ8 } from '../../src/backends/js/q8.js';
import {
  AjarError, Rng, dequantizeQ8, embedding, embeddingQ8, linearQ8, linearQ8Composite, noGrad, quantizeQ8, randn, tensor,
} from '../../src/tensor/index.js';
import { forEachBackend, useReferenceBackend } from '../helpers/backends.js';
import { readGoldenJson } from '../helpers/golden.js';

interface Golden { rows: number; cols: number; group: number; w: number[]; q: number[]; scales: number[] }

describe('quantizeQ8 (llama.cpp Q8_0, float32 scales)', () => {
  it('matches quantize_row_q8_0_ref: zero blocks, halves away from zero, tiny values', () => {
    const g = readGoldenJson<Golden>('quant/q8.json');
    const m = quantizeQ8(Float32Array.from(g.w), g.rows, g.cols, g.group);
    assert.deepEqual(Array.from(m.q), g.q);
    assert.deepEqual(Array.from(m.scales), Array.from(Float32Array.from(g.scales)));
    // Dequantised, every value is within half a step of the original.
    const back = dequantizeQ8(m);
    for (let i = 0; i < back.length; i++) assert.ok(Math.abs(back[i] - g.w[i]) <= m.scales[Math.floor(i / 32)] / 2 * (1 + 1e-6));
  });

  it('refuses a row that does not split into whole groups', () => {
    assert.throws(() => quantizeQ8(new Float32Array(40), 1, 40), /groups of 32/);
  });
});

/** Random x (M, K), weight (N, K) quantised, bias (N) or null. */
function operands(M: number, K: number, N: number, bias: boolean, seed: number) {
  useReferenceBackend();
  const rng = new Rng(seed);
  const x = randn([M, K], rng);
  const w = quantizeQ8(randn([N, K], rng, 0.5).data, N, K);
  const b = bias ? randn([N], rng) : null;
  return { x, w, b };
}

// Shapes: the decoding path (M <= 4) and the dequantise-and-GEMM path (M > 4), widths off every vector and block
// size, and one GPT-2 MLP-sized product.
const SHAPES: [number, number, number][] = [[1, 32, 1], [1, 64, 37], [2, 96, 65], [4, 128, 130], [5, 32, 3], [17, 160, 70], [70, 64, 129], [1, 768, 3072]];

/** |a - b| within float32 rounding of a K-term dot product of values up to ~4. */
function assertClose(a: Float32Array, b: Float32Array, K: number, what: string): void {
  assert.equal(a.length, b.length);
  const tol = 1e-5 * Math.sqrt(K) * 4;
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= tol * Math.max(1, Math.abs(b[i])), `${what}[${i}]: ${a[i]} vs ${b[i]}`);
}

forEachBackend('linearQ8 vs the dequantised composite and the js kernel', () => {
  it('every shape, with and without a bias', () => {
    SHAPES.forEach(([M, K, N], i) => {
      for (const bias of [false, true]) {
        const { x, w, b } = operands(M, K, N, bias, 100 + i);
        const ref = new Float32Array(M * N);
        matmulQ8(x.data, w.q, w.scales, b ? b.data : null, M, K, N, w.group, ref);
        const placed = (t: typeof x): typeof x => tensor(Float32Array.from(t.data), t.shape); // in this backend's memory
        const [xb, bb] = [placed(x), b ? placed(b) : null];
        const { got, comp } = noGrad(() => ({ got: linearQ8(xb, w, bb).data, comp: linearQ8Composite(xb, w, bb).data }));
        assertClose(got, ref, K, `(${M}, ${K}, ${N}) bias ${bias} vs js kernel`);
        assertClose(got, comp, K, `(${M}, ${K}, ${N}) bias ${bias} vs composite`);
      }
    });
  });

  it('keeps leading dimensions: (B, T, K) -> (B, T, N)', () => {
    const { w } = operands(1, 64, 9, false, 7);
    const x = randn([2, 3, 64], new Rng(3));
    assert.deepEqual(noGrad(() => linearQ8(x, w, null)).shape, [2, 3, 9]);
  });

  it('embeddingQ8 is the dequantised table\'s rows', () => {
    const { w } = operands(1, 64, 11, false, 9);
    const ids = Int32Array.from([3, 0, 10, 3]);
    const got = embeddingQ8(w, ids, [2, 2]);
    const want = embedding(tensor(dequantizeQ8(w), [11, 64]), ids, [2, 2]);
    assert.deepEqual(got.shape, [2, 2, 64]);
    assert.deepEqual(Array.from(got.data), Array.from(want.data));
    assert.throws(() => embeddingQ8(w, Int32Array.from([11])), /outside the table/);
  });

  it('refuses to run where a gradient is wanted (int8 weights are for inference)', () => {
    const { x, w } = operands(1, 32, 4, false, 11);
    x.requireGrad();
    assert.throws(() => linearQ8(x, w, null), (e: unknown) => e instanceof AjarError && e.code === 'quantized_inference_only');
    assert.equal(noGrad(() => linearQ8(x, w, null)).shape[1], 4);
  });
});
