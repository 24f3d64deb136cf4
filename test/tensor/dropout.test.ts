// Inverted dropout's properties: the zero fraction is p, kept values are scaled by 1/(1-p), the gradient is the
// mask, and a seed fixes the mask. (That the mask is torch's own for the same generator state is checked in
// random.golden.test.ts.)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dropout, ones, randn, sum, tensor } from '../../src/tensor/ops.js';
import { Rng } from '../../src/tensor/random.js';
import { forEachBackend } from '../helpers/backends.js';

const P = 0.25;
const N = 100_000;
const SCALE = Math.fround(1 / (1 - P)); // float32, as the mask stores it

forEachBackend('dropout', () => {
  test(`p = ${P} over ${N} elements zeroes a fraction within 0.01 of p and scales the rest by 1/(1-p)`, () => {
    const y = dropout(ones([N]), P, new Rng(11));
    let zeros = 0;
    for (const v of y.data) {
      if (v === 0) zeros++;
      else assert.equal(v, SCALE);
    }
    assert.ok(Math.abs(zeros / N - P) <= 0.01, `zero fraction ${zeros / N}`);
  });

  test('kept values are x / (1 - p), dropped ones 0, and the gradient equals the mask', () => {
    const x = randn([50, 40], new Rng(1)).requireGrad();
    const y = dropout(x, P, new Rng(12));
    assert.deepEqual(y.shape, [50, 40]);
    sum(y).backward();
    const g = x.grad!.data;
    for (let i = 0; i < x.size; i++) {
      const kept = y.data[i] !== 0;
      assert.equal(g[i], kept ? SCALE : 0, `gradient at ${i}`);
      const want = kept ? Math.fround(x.data[i] * SCALE) : 0;
      assert.ok(y.data[i] === want, `value at ${i}: ${y.data[i]}, expected ${want}`); // -0 for a dropped negative
    }
  });

  test('the same seed gives the same mask; another seed a different one', () => {
    const x = ones([4096]);
    const a = dropout(x, P, new Rng(99)).toArray();
    assert.deepEqual(dropout(x, P, new Rng(99)).toArray(), a);
    assert.notDeepEqual(dropout(x, P, new Rng(100)).toArray(), a);
    const r = new Rng(99);
    const state = r.getState();
    const first = dropout(x, P, r).toArray();
    r.setState(state);
    assert.deepEqual(dropout(x, P, r).toArray(), first, 'restoring the Rng state restores the mask');
  });

  test('training = false and p = 0 are the identity and draw nothing', () => {
    const x = tensor([1, -2, 3]).requireGrad();
    const r = new Rng(5);
    const before = r.getState();
    assert.equal(dropout(x, P, r, false), x);
    assert.equal(dropout(x, 0, r), x);
    assert.deepEqual(r.getState(), before);
  });

  test('p outside [0, 1) is refused', () => {
    assert.throws(() => dropout(ones([2]), 1, new Rng(0)), RangeError);
    assert.throws(() => dropout(ones([2]), -0.1, new Rng(0)), /p must be in \[0, 1\)/);
  });
});
