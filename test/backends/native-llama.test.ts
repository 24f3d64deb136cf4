// The native Llama-family kernels (native/llama.c) over a js base (so no wasm kernel can stand in for them): RMS
// norm, RoPE, silu(gate) * up and grouped-query attention with their gradients against the js reference loops
// (src/backends/wasm/fused-reference.ts) at SmolLM2-135M's shapes (training at batch 4 x 64, decoding one token from
// a KV cache, a sliding window), on every instruction set this CPU runs; one thread and two give the same bits; and
// the binding's argument checks. The composites' conformance rows run in test/helpers/kernel-suite.ts on native.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { jsBackend } from '../../src/backends/js/index.js';
import { createNativeBackend, nativeAvailable, nativeUnavailableReason, type NativeBackend } from '../../src/backends/native/index.js';
import {
  groupedAttentionBackwardReference, groupedAttentionReference, rmsNormBackwardReference, rmsNormReference, ropeReference,
  siluMulBackwardReference, siluMulReference,
} from '../../src/backends/wasm/fused-reference.js';
import type { FusedKernels } from '../../src/tensor/backend.js';
import { Rng } from '../../src/tensor/random.js';
import { assertClose, randoms } from '../helpers/kernel-suite.js';

const skip = nativeAvailable() ? false : `native backend unavailable: ${nativeUnavailableReason()}`;

type Llama = Pick<FusedKernels, 'rmsNorm' | 'rmsNormBackward' | 'rope' | 'siluMul' | 'siluMulBackward' |
  'groupedAttention' | 'groupedAttentionBackward'>;

function kernels(be: NativeBackend): Llama {
  const f = be.fused as Partial<FusedKernels>;
  const names = ['rmsNorm', 'rmsNormBackward', 'rope', 'siluMul', 'siluMulBackward', 'groupedAttention',
    'groupedAttentionBackward'] as const;
  for (const n of names) assert.equal(typeof f[n], 'function', `native backend over js lacks ${n}`);
  return f as Llama;
}

const out = (n: number): Float32Array => new Float32Array(n);

// SmolLM2-135M: hidden 576, 9 query heads and 3 key/value heads of 64, intermediate 1536.
const [HIDDEN, HQ, HKV, HS, INTER] = [576, 9, 3, 64, 1536];

/** (B, Tq, Tk, window): training, a 16-token prompt, one decoded token at 48 cached, Mistral-like windows. */
const ATTENTION: [number, number, number, number][] = [[4, 64, 64, 0], [1, 16, 16, 0], [1, 1, 48, 0], [2, 1, 33, 0],
  [1, 1, 40, 7], [2, 64, 64, 20], [1, 5, 21, 0]];

/** Every Llama kernel on `f` over fixed random inputs, outputs in one list (for comparing thread counts). */
function runAll(f: Llama, rng: Rng): Float32Array[] {
  const rows = 4 * 64;
  const [x, g, w] = [randoms(rng, rows * HIDDEN, -3, 3), randoms(rng, rows * HIDDEN), randoms(rng, HIDDEN, 0.5, 1.5)];
  const [y, rstd, dx, gx] = [out(rows * HIDDEN), out(rows), out(rows * HIDDEN), out(rows * HIDDEN)];
  f.rmsNorm(x, rows, HIDDEN, w, 1e-5, y, rstd);
  f.rmsNormBackward(x, g, w, rstd, rows, HIDDEN, dx, gx);
  const [c, s] = [randoms(rng, 64 * HS / 2), randoms(rng, 64 * HS / 2)];
  const [r1, r2] = [out(rows * HIDDEN), out(rows * HIDDEN)];
  f.rope(x, 4, 64, HQ, HS, c, s, r1, false);
  f.rope(g, 4, 64, HQ, HS, c, s, r2, true);
  const n = rows * INTER;
  const [gate, up, gs] = [randoms(rng, n, -8, 8), randoms(rng, n, -2, 2), randoms(rng, n)];
  const [sm, sig, dg, du] = [out(n), out(n), out(n), out(n)];
  f.siluMul(gate, up, sm, sig);
  f.siluMulBackward(gs, gate, up, sig, dg, du);
  const res = [y, rstd, dx, gx, r1, r2, sm, sig, dg, du];
  for (const [B, Tq, Tk, window] of ATTENTION) {
    const [nq, nk] = [B * Tq * HQ * HS, B * Tk * HKV * HS];
    const [q, k, v, dy] = [randoms(rng, nq, -2, 2), randoms(rng, nk, -2, 2), randoms(rng, nk, -2, 2), randoms(rng, nq)];
    const [ya, p, dq, dk, dv] = [out(nq), out(B * HQ * Tq * Tk), out(nq), out(nk), out(nk)];
    f.groupedAttention(q, k, v, B, Tq, Tk, HQ, HKV, HS, 0.125, window, ya, p);
    f.groupedAttentionBackward(dy, q, k, v, p, B, Tq, Tk, HQ, HKV, HS, 0.125, dq, dk, dv);
    res.push(ya, p, dq, dk, dv);
  }
  return res;
}

/** The same calls on the js reference loops. */
function runReference(rng: Rng): Float32Array[] {
  const ref: Llama = {
    rmsNorm: rmsNormReference, rmsNormBackward: rmsNormBackwardReference, rope: ropeReference,
    siluMul: siluMulReference, siluMulBackward: siluMulBackwardReference, groupedAttention: groupedAttentionReference,
    groupedAttentionBackward: groupedAttentionBackwardReference,
  };
  return runAll(ref, rng);
}

/** What each output of runAll is, and its tolerance against the reference (relative, at least 1 absolute). */
function labels(): [string, number][] {
  const l: [string, number][] = [['rmsNorm', 1e-5], ['rmsNorm rstd', 1e-6], ['rmsNorm dx', 1e-5], ['rmsNorm gxhat', 1e-6],
    ['rope', 0], ['rope inverse', 0], ['siluMul', 1e-6], ['siluMul sig', 1e-6], ['siluMul dgate', 1e-6], ['siluMul dup', 1e-6]];
  for (const [B, Tq, Tk, window] of ATTENTION) {
    const what = `grouped attention B=${B} Tq=${Tq} Tk=${Tk} window=${window}`;
    l.push([what, 1e-5], [`${what} p`, 1e-5], [`${what} dq`, 1e-5], [`${what} dk`, 1e-5], [`${what} dv`, 1e-5]);
  }
  return l;
}

describe('native Llama kernels vs the js reference', { skip }, () => {
  for (const isa of ['avx512', 'avx2', 'generic']) {
    test(`SmolLM2-135M's shapes (${isa})`, (t) => {
      const be = createNativeBackend({ threads: 2, isa, base: jsBackend });
      if (be.isa !== isa) {
        t.skip(`this CPU runs ${be.isa}, not ${isa}`);
        return;
      }
      const got = runAll(kernels(be), new Rng(31));
      const want = runReference(new Rng(31));
      labels().forEach(([what, tol], i) => assertClose(got[i], want[i], tol, what));
    });
  }

  test('one thread and two give the same bits', () => {
    const one = runAll(kernels(createNativeBackend({ threads: 1, base: jsBackend })), new Rng(32));
    const two = runAll(kernels(createNativeBackend({ threads: 2, base: jsBackend })), new Rng(32));
    const names = labels();
    one.forEach((a, i) => assert.ok(a.every((e, j) => Object.is(e, two[i][j])), `${names[i][0]} differs`));
  });

  test('a call with a buffer shorter than its shape throws instead of reading past it', () => {
    const f = kernels(createNativeBackend({ threads: 2, base: jsBackend }));
    assert.throws(() => f.rmsNorm(out(10), 2, 8, null, 1e-5, out(16)), /shorter/);
    assert.throws(() => f.rmsNormBackward(out(16), out(16), out(4), out(2), 2, 8, out(16), null), /shorter/);
    assert.throws(() => f.rope(out(16), 1, 2, 2, 4, out(4), out(2), out(16), false), /shorter/);
    assert.throws(() => f.rope(out(18), 1, 2, 3, 3, out(4), out(4), out(18), false), /even/);
    assert.throws(() => f.siluMul(out(4), out(3), out(4)), /shorter/);
    assert.throws(() => f.siluMulBackward(out(4), out(4), out(4), out(3), out(4), null), /shorter/);
    const [q, kv] = [out(1 * 3 * 4 * 8), out(1 * 5 * 2 * 8)];
    assert.throws(() => f.groupedAttention(q, kv, kv, 1, 3, 5, 4, 2, 8, 0.3, 0, out(96), out(4 * 3 * 5 - 1)), /shorter/);
    // NOTE: with Tq = 3 this call goes to attention.c's decoding kernel, whose message names no operand; a longer block reaches llama.c's.
    const q20 = out(1 * 20 * 4 * 8);
    const kv20 = out(1 * 20 * 2 * 8);
    assert.throws(() => f.groupedAttention(q20, kv20, kv20, 1, 20, 20, 4, 2, 8, 0.3, 0, out(640), out(4 * 20 * 20 - 1)), /p is shorter/);
    assert.throws(() => f.groupedAttention(q, kv, kv, 1, 3, 2, 4, 2, 8, 0.3, 0, out(96), out(60)), /Tk must be/);
    assert.throws(() => f.groupedAttention(q, kv, kv, 1, 3, 5, 4, 3, 8, 0.3, 0, out(96), out(60)), /multiple of Hkv/);
    assert.throws(() => f.groupedAttentionBackward(q, q, kv, out(70), out(60), 1, 3, 5, 4, 2, 8, 0.3, out(96), out(80),
      out(80)), /k or v is shorter/);
  });
});
