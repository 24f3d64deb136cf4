// The RDP accountant against the values Opacus's and TensorFlow Privacy's own tests publish.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AjarError } from '../../src/tensor/errors.js';
import {
  DEFAULT_ORDERS, computeRdp, defaultDelta, epsilonOf, logErfc, noiseMultiplierFor, privacySpent,
} from '../../src/train/accountant.js';
import { runCli } from '../helpers/cli.js';

function closeRel(actual: number, expected: number, rel: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= rel * Math.abs(expected), `${what}: ${actual} vs ${expected} (relative ${rel})`);
}

function closeAbs(actual: number, expected: number, abs: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= abs, `${what}: ${actual} vs ${expected} (absolute ${abs})`);
}

describe('RDP accountant', () => {
  it("has Opacus's default orders: 1.1 ... 10.9, then 12 ... 63", () => {
    assert.equal(DEFAULT_ORDERS.length, 99 + 52);
    closeRel(DEFAULT_ORDERS[0], 1.1, 1e-15, 'first');
    closeRel(DEFAULT_ORDERS[98], 10.9, 1e-15, '99th');
    assert.deepEqual(DEFAULT_ORDERS.slice(99, 101), [12, 13]);
    assert.equal(DEFAULT_ORDERS.at(-1), 63);
  });

  it("matches Opacus's test_rdp_accountant: q 0.04, sigma 1.5, 2250 steps, delta 1e-5 -> 7.32911117143", () => {
    // opacus/tests/accountants_test.py: steps = int(90 / 0.04); assertAlmostEqual(epsilon, 7.32911117143)
    const r = epsilonOf({ sampleRate: 0.04, noiseMultiplier: 1.5, steps: 2250, delta: 1e-5 });
    closeRel(r.epsilon, 7.32911117143, 1e-6, 'epsilon');
    assert.ok(r.order > 1 && r.order < 63, `the optimal order ${r.order} is inside the range`);
  });

  it("solves for the noise multiplier as Opacus's get_noise_multiplier", () => {
    // opacus/tests/accountants_test.py: test_get_noise_multiplier_rdp_steps (2000 steps) -> 1.3562 to 4 places,
    // and _rdp_epochs (90 epochs at q 0.04, i.e. int(90 / 0.04) = 2250 steps) -> 1.416 to 4 places.
    closeAbs(noiseMultiplierFor(8, 1e-5, 0.04, 2000), 1.3562, 5e-5, 'sigma for 2000 steps');
    closeAbs(noiseMultiplierFor(8, 1e-5, 0.04, 2250), 1.416, 5e-5, 'sigma for 90 epochs');
    // Opacus's overshoot test: the solved sigma never gives more than the target.
    const s = noiseMultiplierFor(3, 1e-6, 0.01, 5000);
    assert.ok(epsilonOf({ sampleRate: 0.01, noiseMultiplier: s, steps: 5000, delta: 1e-6 }).epsilon < 3);
    assert.throws(() => noiseMultiplierFor(1e-9, 1e-5, 1, 100000), (e: unknown) => e instanceof AjarError && /cannot be reached/.test(e.message));
  });

  it("matches TensorFlow Privacy's rdp_accountant_test.py RDP values", () => {
    // test_compute_rdp_scalar: compute_rdp(0.1, 2, 10, 5) == 0.07737 to 5 places (integer order).
    closeAbs(computeRdp(0.1, 2, 10, [5])[0], 0.07737, 5e-6, 'scalar');
    // test_compute_rdp_sequence: delta=1e-5 (fractional orders 1.5 and 2.5 exercise the two-sided series).
    const orders = [1.5, 2.5, 5, 50, 100, Infinity];
    const want = [0.00065, 0.001085, 0.00218075, 0.023846, 167.416307, Infinity];
    const got = computeRdp(0.01, 2.5, 50, orders);
    for (let k = 0; k < 5; k++) closeAbs(got[k], want[k], 1e-5, `order ${orders[k]}`);
    assert.equal(got[5], Infinity);
    // test_compute_rdp_no_data / _no_sampling
    assert.equal(computeRdp(0, 10, 1, [20])[0], 0);
    assert.equal(computeRdp(1, 10, 1, [20])[0], 0.1);
  });

  it("converts RDP to (epsilon, delta) as TensorFlow Privacy's get_privacy_spent tests expect", () => {
    // test_get_privacy_spent_check_target_delta: constant RDP 1.1 at orders 2..32 -> order 32, eps 1.32783806176.
    const orders = Array.from({ length: 31 }, (_, i) => i + 2);
    const r = privacySpent(orders, orders.map(() => 1.1), 1e-5);
    assert.equal(r.order, 32);
    closeRel(r.epsilon, 1.32783806176, 1e-9, 'pure DP');
    // ... and the Gaussian mechanism without sampling, sigma 4.530877117, is exactly (1, 1e-6)-DP (7 places).
    const fine = Array.from({ length: 99000 }, (_, i) => 0.001 * (i + 1000));
    const g = privacySpent(fine, computeRdp(1, 4.530877117, 1, fine), 1e-6);
    closeAbs(g.epsilon, 1, 5e-8, 'Gaussian');
  });

  it('computes log erfc where erfc underflows', () => {
    // erfc(0.5), erfc(2), erfc(-1) to 16 digits (Abramowitz & Stegun table 7.1, or any CAS); erfc(30) ~ 2.56e-393
    // by its asymptotic series exp(-x^2)/(x sqrt(pi)) (1 - 1/(2x^2) + 3/(4x^4) - 15/(8x^6) + ...), A&S 7.1.23.
    closeRel(logErfc(0.5), Math.log(0.4795001221869535), 1e-13, 'erfc(0.5)');
    closeRel(logErfc(2), Math.log(0.004677734981047266), 1e-13, 'erfc(2)');
    closeRel(logErfc(-1), Math.log(1.842700792949715), 1e-13, 'erfc(-1)');
    closeRel(logErfc(30), -900 - Math.log(30 * Math.sqrt(Math.PI)) + Math.log1p(-1 / 1800 + 3 / (4 * 30 ** 4) - 15 / (8 * 30 ** 6) + 105 / (16 * 30 ** 8)), 1e-12, 'erfc(30)');
  });

  it('defaults delta to the largest power of ten below 1/N', () => {
    assert.equal(defaultDelta(50000), 1e-5);
    assert.equal(defaultDelta(60000), 1e-5);
    assert.equal(defaultDelta(1000), 1e-4);
    assert.equal(defaultDelta(7), 0.1);
  });
});

describe('ajar privacy', () => {
  it('epsilon --json prints {epsilon, order}', () => {
    const r = runCli(['privacy', 'epsilon', '--sample-rate', '0.04', '--noise-multiplier', '1.5', '--steps', '2250', '--delta', '1e-5', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { epsilon: number; order: number };
    assert.deepEqual(Object.keys(j), ['epsilon', 'order']);
    closeRel(j.epsilon, 7.32911117143, 1e-6, 'epsilon');
  });

  it('bad or missing numbers are one line on stderr and exit code 2', () => {
    for (const [args, pattern] of [
      [['privacy', 'epsilon', '--sample-rate', '1.5', '--noise-multiplier', '1', '--steps', '10', '--delta', '1e-5'], /--sample-rate must be in \(0, 1\]/],
      [['privacy', 'epsilon', '--sample-rate', '0.1', '--steps', '10', '--delta', '1e-5'], /--noise-multiplier is required/],
      [['privacy', 'epsilon', '--sample-rate', '0.1', '--noise-multiplier', '1', '--steps', '10', '--delta', '2'], /--delta must be in \(0, 1\)/],
      [['privacy', 'spend'], /unknown subcommand 'spend'/],
    ] as const) {
      const r = runCli([...args]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, pattern);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
  });
});
