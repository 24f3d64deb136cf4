// The statistics of a privacy audit: loss-threshold membership inference (Yeom et al. 2018, "Privacy Risk in
// Machine Learning"), as the attack's ROC AUC and maximum advantage, and canary exposure (Carlini et al. 2019,
// "The Secret Sharer", section 4): log2 |R| - log2 rank of a planted secret among the candidates of its format.
import { AjarError } from '../tensor/errors.js';
import { logNdtr } from '../tensor/special.js';

export interface MembershipResult {
  /** ROC AUC of the score -loss with members as the positive class: P(member scores higher), ties counting half. */
  auc: number;
  /** max over thresholds of |TPR - FPR|: the attack's best advantage over guessing. */
  advantage: number;
}

/** The loss-threshold attack on per-example losses of training members and of non-members. */
export function membershipInference(memberLosses: readonly number[], nonMemberLosses: readonly number[]): MembershipResult {
  if (memberLosses.length === 0 || nonMemberLosses.length === 0) {
    throw new AjarError('bad_input', 'membership inference needs at least one member and one non-member example');
  }
  // Sweep the threshold over the pooled losses from low to high: predicting "member" for loss <= t.
  const pooled = [
    ...memberLosses.map((l) => ({ l, member: true })),
    ...nonMemberLosses.map((l) => ({ l, member: false })),
  ].sort((a, b) => a.l - b.l);
  const P = memberLosses.length;
  const N = nonMemberLosses.length;
  let tp = 0;
  let fp = 0;
  let area = 0; // trapezoids under (FPR, TPR): the Mann-Whitney statistic with ties counted half
  let advantage = 0;
  for (let i = 0; i < pooled.length;) {
    const l = pooled[i].l;
    let dtp = 0;
    let dfp = 0;
    for (; i < pooled.length && pooled[i].l === l; i++) {
      if (pooled[i].member) dtp++;
      else dfp++;
    }
    area += (dfp / N) * ((tp + dtp / 2) / P);
    tp += dtp;
    fp += dfp;
    advantage = Math.max(advantage, Math.abs(tp / P - fp / N));
  }
  return { auc: area, advantage };
}

export interface ExposureResult {
  /** log2 |R| - log2 rank. */
  exposure: number;
  /** 1 + the candidates whose loss is at most the canary's (estimated over |R| when the references are a sample). */
  rank: number;
  /** log2 |R|: the exposure of a canary ranked first. */
  maxExposure: number;
}

/**
 * Exposure of a canary from its loss and the losses of reference candidates of the same format (the canary
 * excluded). spaceSize is |R|, the number of possible secrets; when the references are a uniform sample of
 * the other |R| - 1 candidates, the count below the canary is scaled up to them.
 */
export function canaryExposure(canaryLoss: number, referenceLosses: readonly number[], spaceSize = referenceLosses.length + 1): ExposureResult {
  if (referenceLosses.length === 0) throw new AjarError('bad_input', 'canary exposure needs reference candidates to rank the canary among');
  if (!(spaceSize > referenceLosses.length)) {
    throw new AjarError('bad_input', `the format's ${spaceSize} possible secrets cannot hold ${referenceLosses.length} other references and the canary`);
  }
  let below = 0;
  for (const l of referenceLosses) if (l <= canaryLoss) below++;
  const rank = 1 + (below * (spaceSize - 1)) / referenceLosses.length;
  const maxExposure = Math.log2(spaceSize);
  return { exposure: maxExposure - Math.log2(rank), rank, maxExposure };
}

/** A skew-normal distribution (Azzalini): density 2/scale phi(z) Phi(shape z), z = (x - loc) / scale. */
export interface SkewNormal {
  loc: number;
  scale: number;
  shape: number;
}

/** The largest |skewness| a skew-normal reaches (shape -> infinity) is 0.9953; moments past it are clamped below it. */
const MAX_SKEW = 0.99;

/**
 * Fit a skew-normal to a sample by the method of moments (mean, variance and skewness of the sample). The secret
 * sharer paper approximates the distribution of the reference secrets' log-perplexities by a skew-normal to reach
 * exposures beyond what a sample can rank.
 */
export function fitSkewNormal(sample: readonly number[]): SkewNormal {
  const n = sample.length;
  if (n < 3) throw new AjarError('bad_input', 'a skew-normal fit needs at least 3 values');
  let mean = 0;
  for (const v of sample) mean += v / n;
  let m2 = 0;
  let m3 = 0;
  for (const v of sample) {
    const d = v - mean;
    m2 += (d * d) / n;
    m3 += (d * d * d) / n;
  }
  if (!(m2 > 0)) throw new AjarError('bad_input', 'a skew-normal fit needs values that are not all equal');
  const skew = Math.max(-MAX_SKEW, Math.min(MAX_SKEW, m3 / m2 ** 1.5));
  const c = Math.abs(skew) ** (2 / 3);
  const delta = Math.sign(skew) * Math.sqrt((Math.PI / 2) * c / (c + ((4 - Math.PI) / 2) ** (2 / 3)));
  const scale = Math.sqrt(m2 / (1 - (2 * delta * delta) / Math.PI));
  return { loc: mean - scale * delta * Math.sqrt(2 / Math.PI), scale, shape: delta / Math.sqrt(1 - delta * delta) };
}

const LOG_SQRT_2PI = 0.5 * Math.log(2 * Math.PI);

/**
 * log P(X <= x) for a skew-normal X, accurate far into the lower tail (where the probability underflows): Simpson's
 * rule over the log density, on an interval that holds all but e^-60 of the mass below x.
 */
export function skewNormalLogCdf(x: number, d: SkewNormal): number {
  const z = (x - d.loc) / d.scale;
  const a = d.shape;
  const logDensity = (t: number): number => Math.LN2 - 0.5 * t * t - LOG_SQRT_2PI + logNdtr(a * t);
  // NOTE: log density g is concave with g'' <= -1 (log phi's -1 plus log Phi's concavity), so below z it stays under
  // g(z) - s u - u^2 / 2 (s = g'(z)): past u = -s + sqrt(s^2 + 120) the rest is below e^-60 of the peak.
  const s = -z + a * Math.exp(-0.5 * (a * z) ** 2 - LOG_SQRT_2PI - logNdtr(a * z));
  const width = -s + Math.sqrt(s * s + 120);
  // About 20 points per unit of t, and per 1/|a| (the width of the density's cut-off on its short side); even, for Simpson.
  const steps = 2 * Math.min(100000, Math.max(2000, Math.ceil(width * (1 + Math.abs(a)) * 10)));
  const h = width / steps;
  const logs = new Float64Array(steps + 1);
  let peak = -Infinity;
  for (let i = 0; i <= steps; i++) {
    logs[i] = logDensity(z - width + i * h);
    if (logs[i] > peak) peak = logs[i];
  }
  let sum = 0;
  for (let i = 0; i <= steps; i++) sum += (i === 0 || i === steps ? 1 : i % 2 === 1 ? 4 : 2) * Math.exp(logs[i] - peak);
  return Math.min(0, peak + Math.log((sum * h) / 3));
}

/**
 * Exposure from a skew-normal fitted to a sample of the reference secrets' scores: -log2 P(score <= the canary's),
 * at most log2 |R|.
 */
export function fittedExposure(canaryScore: number, fit: SkewNormal, spaceSize: number): number {
  const bits = -skewNormalLogCdf(canaryScore, fit) / Math.LN2;
  return Math.max(0, Math.min(Math.log2(spaceSize), bits));
}
