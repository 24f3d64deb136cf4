// The statistics of a privacy audit: loss-threshold membership inference (Yeom et al. 2018, "Privacy Risk in
// Machine Learning"), as the attack's ROC AUC and maximum advantage, and canary exposure (Carlini et al. 2019,
// "The Secret Sharer", section 4): log2 |R| - log2 rank of a planted secret among the candidates of its format.
import { AjarError } from '../tensor/errors.js';

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
