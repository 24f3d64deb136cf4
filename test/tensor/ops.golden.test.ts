// Op conformance against PyTorch: every case of test/golden/ops/ops.json (make_ops.py, torch 1.13 float32) on
// every backend, forward within 1e-5 and input gradients within 1e-4 (|a - b| <= tol * max(1, |b|)).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setBackend, type FusedKernels } from '../../src/tensor/backend.js';
import * as ops from '../../src/tensor/ops.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { forEachBackend } from '../helpers/backends.js';
import {
  caseInputs, closeness, decodeValues, graphOps, loadOpFixture, opFor, OPS, spyBackend, type OpCase,
} from './op-table.js';

const FORWARD_TOL = 1e-5;
const GRAD_TOL = 1e-4;

/** Exported functions of ops.ts that ops.json does not cover, each with where it is tested instead. */
const NOT_IN_FIXTURE: Record<string, string> = {
  tensor: 'a constructor (engine.test.ts)',
  full: 'a constructor (engine.test.ts)',
  zeros: 'a constructor (engine.test.ts)',
  ones: 'a constructor (engine.test.ts)',
  scalar: 'a constructor (engine.test.ts)',
  randn: 'draws from ajar\'s Rng, not torch\'s (engine.test.ts)',
  rand: 'draws from ajar\'s Rng, not torch\'s (engine.test.ts)',
  dropout: 'draws its mask from ajar\'s Rng, not torch\'s (dropout.test.ts)',
  softmaxComposite: 'what softmax computes without a fused kernel (its cases run it on js; fused.test.ts compares the two)',
  logSoftmaxComposite: 'what logSoftmax computes without a fused kernel (as softmaxComposite)',
  layerNormComposite: 'what layerNorm computes without a fused kernel (as softmaxComposite)',
  crossEntropyComposite: 'the composite crossEntropy is checked against (fused.test.ts compares the two)',
  causalSelfAttentionComposite: 'what causalSelfAttention computes without a fused kernel (as softmaxComposite)',
  causalMask: 'a constant 0/1 mask, used by the causalSelfAttention and maskedFill cases',
  rmsNormComposite: 'what rmsNorm computes without a fused kernel (as softmaxComposite)',
  siluMulComposite: 'what siluMul computes without a fused kernel (as softmaxComposite)',
  ropeComposite: 'what rope computes without a fused kernel (as softmaxComposite)',
  groupedCausalAttentionComposite: 'what groupedCausalAttention computes without a fused kernel (as softmaxComposite)',
};

/** Fused primitives are recorded only on backends that have the kernel. */
const FUSED_KERNEL_OF: Record<string, keyof FusedKernels> = {
  fused_attention: 'attention',
  fused_grouped_attention: 'groupedAttention',
  fused_rms_norm: 'rmsNorm',
  fused_rope: 'rope',
  fused_silu_mul: 'siluMul',
  fused_softmax: 'softmax',
  fused_log_softmax: 'logSoftmax',
  fused_layer_norm: 'layerNorm',
};

/** Primitives that only a composite gradient calls, so a backend with the fused kernel never runs them. */
const REPLACED_BY_FUSED: Record<string, keyof FusedKernels> = {
  gelu_tanh_grad: 'geluTanhBackward',
};

const fixture = loadOpFixture();

/** Run one case: forward (noting recorded graph ops) and, when it has an upstream, backward with it as the seed. */
function runCase(c: OpCase, recorded?: Set<string>): { out: Tensor; xs: Tensor[] } {
  const { xs, ints } = caseInputs(c);
  const out = opFor(c)(xs, ints, c.params);
  if (recorded) graphOps(out, recorded);
  if (c.upstream && out.requiresGrad) out.backward(ops.tensor(decodeValues(c.upstream), c.upstream.shape));
  return { out, xs };
}

/** Compare a case's output and input gradients with PyTorch's. */
function checkCase(c: OpCase): void {
  const { out, xs } = runCase(c);
  assert.deepEqual(out.shape, c.out.shape, `${c.name}: output shape`);
  const fwd = closeness(out.data, decodeValues(c.out), FORWARD_TOL);
  assert.equal(fwd, null, `${c.name}: forward ${fwd}`);
  if (!c.upstream) {
    assert.equal(out.requiresGrad, false, `${c.name}: no input requires grad, so neither may the output`);
    return;
  }
  assert.ok(out.node === null && xs.some((x) => x.grad), `${c.name}: backward reached no input`);
  c.grads.forEach((g, i) => {
    if (!g) return;
    const x = xs[i];
    const got = x.grad ? x.grad.data : new Float32Array(x.size);
    if (x.grad) assert.deepEqual(x.grad.shape, g.shape, `${c.name}: grad ${i} shape`);
    const err = closeness(got, decodeValues(g), GRAD_TOL);
    assert.equal(err, null, `${c.name}: gradient of input ${i} ${err}`);
  });
}

describe('ops.json fixture', () => {
  test('was written by make_ops.py with PyTorch and holds cases', () => {
    assert.equal(fixture.generator, 'test/golden/ops/make_ops.py');
    assert.match(fixture.torch, /^\d+\.\d+/);
    assert.ok(fixture.cases.length > 100, `${fixture.cases.length} cases`);
  });

  test('every fixture op maps to an ajar call', () => {
    const unmapped = [...new Set(fixture.cases.map((c) => c.op))].filter((op) => !(op in OPS));
    assert.deepEqual(unmapped, [], `ops without an entry in OPS: ${unmapped.join(', ')}`);
  });

  test('every op exported by src/tensor/ops.ts has a fixture case (or a stated reason)', () => {
    const inFixture = new Set(fixture.cases.map((c) => c.op));
    const exported = Object.entries(ops).filter(([, v]) => typeof v === 'function').map(([k]) => k);
    const missing = exported.filter((name) => !inFixture.has(name) && !(name in NOT_IN_FIXTURE));
    assert.deepEqual(missing, [], `exported ops with no case in ops.json: ${missing.join(', ')}`);
  });

  test('every case compares at least one value, and differentiable cases every input gradient', () => {
    for (const c of fixture.cases) {
      assert.equal(c.grads.length, c.inputs.length, c.name);
      if (c.upstream) assert.ok(c.grads.every((g) => g !== null), `${c.name}: a float input without a gradient`);
    }
  });
});

forEachBackend('ops vs PyTorch', (backend) => {
  for (const c of fixture.cases) {
    test(c.name, () => checkCase(c));
  }

  test('every name in PRIMITIVES is exercised by at least one case', () => {
    // Graph nodes show the primitives a forward pass records; the spy shows the kernels gradient rules call
    // (step, sign, gelu_*_grad, gt, lt, eq). Values are not compared here: that is the per-case tests' job.
    const seen = new Set<string>();
    setBackend(spyBackend(backend, seen));
    try {
      for (const c of fixture.cases) runCase(c, seen);
    } finally {
      setBackend(backend);
    }
    const expected = ops.PRIMITIVES.filter((p) => (!(p in FUSED_KERNEL_OF) || backend.fused?.[FUSED_KERNEL_OF[p]] !== undefined) &&
      !(p in REPLACED_BY_FUSED && backend.fused?.[REPLACED_BY_FUSED[p]] !== undefined));
    const missing = expected.filter((p) => !seen.has(p));
    assert.deepEqual(missing, [], `primitives no case exercises: ${missing.join(', ')}`);
  });
});
