// The RDP accountant of DP-SGD: Rényi DP of the sampled Gaussian mechanism (Mironov, Talwar, Zhang 2019,
// arXiv:1908.10530, section 3.3) at Opacus's default orders, and its conversion to (epsilon, delta) by
// Balle et al. 2020 (arXiv:1905.09982, theorem 21). Follows Opacus's opacus/accountants/analysis/rdp.py
// (itself TensorFlow Privacy's rdp_accountant.py), the same series in log space, so the numbers agree.
import { AjarError } from '../tensor/errors.js';
import { logErfc } from '../tensor/special.js';

// NOTE: logErfc lives in tensor/special.ts (the privacy audit's skew-normal tail uses it too); re-exported for callers here.
export { logErfc };

/** Opacus's RDPAccountant.DEFAULT_ALPHAS: 1.1, 1.2, ..., 10.9, then 12, 13, ..., 63. */
export const DEFAULT_ORDERS: readonly number[] = [
  ...Array.from({ length: 99 }, (_, i) => 1 + (i + 1) / 10),
  ...Array.from({ length: 52 }, (_, i) => 12 + i),
];

/** log(exp(x) + exp(y)), without overflow; -Infinity stands for 0. */
function logAdd(x: number, y: number): number {
  const a = Math.min(x, y);
  const b = Math.max(x, y);
  if (a === -Infinity) return b;
  return Math.log1p(Math.exp(a - b)) + b;
}

/** log(exp(x) - exp(y)) for x >= y. */
function logSub(x: number, y: number): number {
  if (x < y) throw new Error('unreachable: log-space subtraction with a negative result');
  if (y === -Infinity) return x;
  if (x === y) return -Infinity;
  const d = Math.expm1(x - y);
  // NOTE: Python's math.expm1 raises OverflowError past ~709, where Opacus returns x; exp(x) - exp(y) ~ exp(x).
  if (!Number.isFinite(d)) return x;
  return Math.log(d) + y;
}

/** log C(n, k) for integer n >= k >= 0. */
function logBinomInt(n: number, k: number): number {
  let s = 0;
  for (let j = 1; j <= k; j++) s += Math.log((n - k + j) / j);
  return s;
}

/** log(A_alpha) for integer alpha: a finite binomial sum. */
function logAInt(q: number, sigma: number, alpha: number): number {
  let logA = -Infinity;
  for (let i = 0; i <= alpha; i++) {
    const logCoef = logBinomInt(alpha, i) + i * Math.log(q) + (alpha - i) * Math.log(1 - q);
    logA = logAdd(logA, logCoef + (i * i - i) / (2 * sigma ** 2));
  }
  return logA;
}

/** log(A_alpha) for fractional alpha: two series split at z0, summed until their terms fall below e^-30. */
function logAFrac(q: number, sigma: number, alpha: number): number {
  let logA0 = -Infinity;
  let logA1 = -Infinity;
  const z0 = sigma ** 2 * Math.log(1 / q - 1) + 0.5;
  let coef = 1; // C(alpha, i), by the recurrence C(alpha, i+1) = C(alpha, i) (alpha - i) / (i + 1)
  for (let i = 0; ; i++) {
    if (i > 0) coef *= (alpha - (i - 1)) / i;
    const logCoef = Math.log(Math.abs(coef));
    const j = alpha - i;
    const logT0 = logCoef + i * Math.log(q) + j * Math.log(1 - q);
    const logT1 = logCoef + j * Math.log(q) + i * Math.log(1 - q);
    const logE0 = Math.log(0.5) + logErfc((i - z0) / (Math.SQRT2 * sigma));
    const logE1 = Math.log(0.5) + logErfc((z0 - j) / (Math.SQRT2 * sigma));
    const logS0 = logT0 + (i * i - i) / (2 * sigma ** 2) + logE0;
    const logS1 = logT1 + (j * j - j) / (2 * sigma ** 2) + logE1;
    if (coef > 0) {
      logA0 = logAdd(logA0, logS0);
      logA1 = logAdd(logA1, logS1);
    } else {
      logA0 = logSub(logA0, logS0);
      logA1 = logSub(logA1, logS1);
    }
    if (Math.max(logS0, logS1) < -30) break;
  }
  return logAdd(logA0, logA1);
}

/** RDP of one step of the sampled Gaussian mechanism (rate q, noise multiplier sigma) at order alpha. */
export function rdpOfStep(q: number, sigma: number, alpha: number): number {
  if (q === 0) return 0;
  if (sigma === 0) return Infinity;
  if (q === 1) return alpha / (2 * sigma ** 2);
  if (!Number.isFinite(alpha)) return Infinity;
  const logA = Number.isInteger(alpha) ? logAInt(q, sigma, alpha) : logAFrac(q, sigma, alpha);
  return logA / (alpha - 1);
}

/** RDP of `steps` compositions, at each order. */
export function computeRdp(q: number, sigma: number, steps: number, orders: readonly number[] = DEFAULT_ORDERS): number[] {
  return orders.map((a) => rdpOfStep(q, sigma, a) * steps);
}

export interface PrivacySpent {
  epsilon: number;
  /** The RDP order at which epsilon is smallest (NaN when there is no privacy). */
  order: number;
}

/** (epsilon, delta)-DP from RDP values (Balle et al. 2020): the minimum over orders. */
export function privacySpent(orders: readonly number[], rdp: readonly number[], delta: number): PrivacySpent {
  let best = NaN;
  let order = NaN;
  for (let k = 0; k < orders.length; k++) {
    const a = orders[k];
    const eps = rdp[k] - (Math.log(delta) + Math.log(a)) / (a - 1) + Math.log((a - 1) / a);
    if (Number.isNaN(eps)) continue;
    if (Number.isNaN(best) || eps < best) {
      best = eps;
      order = a;
    }
  }
  return Number.isNaN(best) ? { epsilon: Infinity, order: NaN } : { epsilon: best, order };
}

export interface MechanismSpec {
  sampleRate: number;
  noiseMultiplier: number;
  steps: number;
  delta: number;
}

/** Check a mechanism's numbers, naming the flag that is wrong. */
export function checkMechanism(m: MechanismSpec, flag: (field: keyof MechanismSpec) => string): void {
  if (!(m.sampleRate > 0 && m.sampleRate <= 1)) {
    throw new AjarError('bad_flag', `${flag('sampleRate')} must be in (0, 1], got ${m.sampleRate}`);
  }
  if (!(m.noiseMultiplier >= 0)) throw new AjarError('bad_flag', `${flag('noiseMultiplier')} must be at least 0, got ${m.noiseMultiplier}`);
  if (!(Number.isInteger(m.steps) && m.steps >= 0)) {
    throw new AjarError('bad_flag', `${flag('steps')} must be a whole number of steps, got ${m.steps}`);
  }
  if (!(m.delta > 0 && m.delta < 1)) throw new AjarError('bad_flag', `${flag('delta')} must be in (0, 1), got ${m.delta}`);
}

/** Epsilon after `steps` steps of DP-SGD at sampling rate q and noise multiplier sigma (Opacus's RDPAccountant). */
export function epsilonOf(m: MechanismSpec, orders: readonly number[] = DEFAULT_ORDERS): PrivacySpent {
  return privacySpent(orders, computeRdp(m.sampleRate, m.noiseMultiplier, m.steps, orders), m.delta);
}

/** Opacus's MAX_SIGMA: past this the budget cannot be met. */
const MAX_SIGMA = 1e6;

/**
 * The noise multiplier that keeps epsilon just under a target after `steps` steps: Opacus's get_noise_multiplier
 * (double from 10 until under the target, then bisect until within epsilonTolerance below it).
 */
export function noiseMultiplierFor(targetEpsilon: number, delta: number, sampleRate: number, steps: number,
  epsilonTolerance = 0.01): number {
  if (!(targetEpsilon > 0)) throw new AjarError('bad_flag', `the target epsilon must be above 0, got ${targetEpsilon}`);
  const eps = (sigma: number): number => epsilonOf({ sampleRate, noiseMultiplier: sigma, steps, delta }).epsilon;
  let low = 0;
  let high = 10;
  let epsHigh = Infinity;
  while (epsHigh > targetEpsilon) {
    high *= 2;
    epsHigh = eps(high);
    if (high > MAX_SIGMA) {
      throw new AjarError('bad_flag', `epsilon ${targetEpsilon} at delta ${delta} cannot be reached in ${steps} steps at sample rate ${sampleRate}: ` +
        'raise the target epsilon, or train fewer steps or on more data');
    }
  }
  while (targetEpsilon - epsHigh > epsilonTolerance) {
    const sigma = (low + high) / 2;
    const e = eps(sigma);
    if (e < targetEpsilon) {
      high = sigma;
      epsHigh = e;
    } else {
      low = sigma;
    }
  }
  return high;
}

/** The default delta for N examples: the largest power of ten below 1/N (1e-5 for 50,000 examples). */
export function defaultDelta(n: number): number {
  // NOTE: strictly below: for N = 1000, 1/N is 1e-3 itself, so 1e-4.
  // 10 ** -4 is 0.00009999999999999999 in floating point; the literal 1e-4 is the double nearest to it.
  const pow10 = (p: number): number => Number(`1e${p}`);
  let p = Math.floor(Math.log10(1 / n));
  while (pow10(p) >= 1 / n) p--;
  return pow10(p);
}
