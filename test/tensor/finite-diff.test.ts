// Autograd against central finite differences: for each op's representative case in ops.json ("rep": true, inputs
// chosen away from kinks and ties), d/dx sum(out * upstream) from backward() matches (L(x+h) - L(x-h)) / 2h.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { noGrad } from '../../src/tensor/tensor.js';
import { tensor } from '../../src/tensor/ops.js';
import { forEachBackend } from '../helpers/backends.js';
import { caseInputs, decodeValues, loadOpFixture, opFor, type OpCase } from './op-table.js';

// NOTE: the engine is float32, so L is summed in float64 from float32 outputs and h is large enough that the
// rounding of one output (~6e-8 relative) stays far below the tolerance after dividing by 2h.
const REL_STEP = 1e-3; // h = REL_STEP * max(1, |x|)
const TOL = 5e-3; // |fd - autograd| <= TOL * (1 + max(|fd|, |autograd|)); observed worst is under 1e-3
const MAX_CHECKED = 400; // elements per input; larger inputs are sampled evenly

const fixture = loadOpFixture();
const reps = fixture.cases.filter((c) => c.rep);

function checkFiniteDiff(c: OpCase): void {
  const { xs, ints } = caseInputs(c);
  const op = opFor(c);
  const upstream = decodeValues(c.upstream!);
  const out = op(xs, ints, c.params);
  out.backward(tensor(upstream, c.upstream!.shape));

  /** L = sum(out * upstream) in float64, without recording a graph. */
  const loss = (): number => noGrad(() => {
    const y = op(xs, ints, c.params).data;
    let s = 0;
    for (let i = 0; i < y.length; i++) s += y[i] * upstream[i];
    return s;
  });

  xs.forEach((x, k) => {
    const auto = x.grad ? x.grad.data : new Float32Array(x.size);
    const stride = Math.max(1, Math.ceil(x.size / MAX_CHECKED));
    for (let i = 0; i < x.size; i += stride) {
      const orig = x.data[i];
      const h = REL_STEP * Math.max(1, Math.abs(orig));
      x.data[i] = orig + h;
      const up = x.data[i]; // the float32 value actually used
      const lUp = loss();
      x.data[i] = orig - h;
      const down = x.data[i];
      const lDown = loss();
      x.data[i] = orig;
      const fd = (lUp - lDown) / (up - down);
      const ad = auto[i];
      const bound = TOL * (1 + Math.max(Math.abs(fd), Math.abs(ad)));
      assert.ok(Math.abs(fd - ad) <= bound,
        `${c.name}: input ${k}[${i}] = ${orig}: autograd ${ad}, finite difference ${fd}`);
    }
  });
}

test('every differentiable op in ops.json has exactly one representative case', () => {
  const ops = new Set(fixture.cases.filter((c) => c.upstream).map((c) => c.op));
  for (const op of ops) {
    const n = reps.filter((c) => c.op === op).length;
    assert.equal(n, 1, `op ${op} has ${n} representative cases`);
  }
});

forEachBackend('finite differences', () => {
  for (const c of reps) {
    test(c.name, () => checkFiniteDiff(c));
  }
});
