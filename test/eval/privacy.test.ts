// Privacy audit statistics against their definitions: the attack's AUC as the Mann-Whitney pair count, its
// advantage as max |TPR - FPR| over thresholds, and exposure as log2 |R| - log2 rank (Carlini et al. 2019).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { canaryExposure, membershipInference } from '../../src/eval/privacy.js';
import { Rng } from '../../src/tensor/index.js';

/** AUC by its definition: over all (member, non-member) pairs, 1 when the member's loss is lower, 1/2 on a tie. */
function pairwiseAuc(members: number[], non: number[]): number {
  let s = 0;
  for (const m of members) for (const n of non) s += m < n ? 1 : m === n ? 0.5 : 0;
  return s / (members.length * non.length);
}

/** max |TPR - FPR| by its definition: every threshold t (predict member when loss <= t), tried one by one. */
function bruteAdvantage(members: number[], non: number[]): number {
  let best = 0;
  for (const t of [-Infinity, ...members, ...non]) {
    const tpr = members.filter((l) => l <= t).length / members.length;
    const fpr = non.filter((l) => l <= t).length / non.length;
    best = Math.max(best, Math.abs(tpr - fpr));
  }
  return best;
}

describe('membership inference statistics', () => {
  it('a worked example: members 1, 2, 3 against non-members 2, 4, 5', () => {
    // Pairs with the member lower: 3 + 2.5 (one tie) + 2 = 7.5 of 9; the best threshold (3) gives TPR 1, FPR 1/3.
    const r = membershipInference([1, 2, 3], [2, 4, 5]);
    assert.ok(Math.abs(r.auc - 7.5 / 9) < 1e-12, `auc ${r.auc}`);
    assert.ok(Math.abs(r.advantage - 2 / 3) < 1e-12, `advantage ${r.advantage}`);
  });

  it('equals the pairwise AUC and the threshold-by-threshold advantage on random losses with ties', () => {
    const rng = new Rng(7);
    for (let trial = 0; trial < 20; trial++) {
      // Losses on a coarse grid so that ties occur, members shifted lower.
      const members = Array.from({ length: 1 + rng.int(40) }, () => Math.round(rng.normal() * 4) / 4);
      const non = Array.from({ length: 1 + rng.int(40) }, () => Math.round((rng.normal() + 0.5) * 4) / 4);
      const r = membershipInference(members, non);
      assert.ok(Math.abs(r.auc - pairwiseAuc(members, non)) < 1e-12, `trial ${trial}: auc ${r.auc}`);
      assert.ok(Math.abs(r.advantage - bruteAdvantage(members, non)) < 1e-12, `trial ${trial}: advantage ${r.advantage}`);
    }
  });

  it('separable losses give AUC 1 and advantage 1; identical ones AUC 1/2 and advantage 0', () => {
    assert.deepEqual(membershipInference([0.1, 0.2], [0.3, 0.9]), { auc: 1, advantage: 1 });
    assert.deepEqual(membershipInference([1, 2], [1, 2]), { auc: 0.5, advantage: 0 });
  });
});

describe('canary exposure', () => {
  it('is log2 |R| for a canary ranked first and falls by one bit per doubling of the rank', () => {
    const refs = [0.5, 1, 2, 3, 4, 5, 6];
    assert.equal(canaryExposure(0.1, refs).exposure, 3); // |R| = 8, rank 1
    assert.equal(canaryExposure(2.5, refs).exposure, 1); // three references at or below it: rank 4, 3 - 2 bits
    assert.equal(canaryExposure(6, refs).rank, 8); // ranked last (a tie counts against the canary): exposure 0
    assert.equal(canaryExposure(6, refs).exposure, 0);
  });

  it('scales a sample of references up to the whole space of secrets', () => {
    // 6-digit PINs: |R| = 10^6. One of 4 sampled references below the canary: a quarter of the other 999,999.
    const r = canaryExposure(1, [0.5, 2, 3, 4], 1e6);
    assert.equal(r.rank, 1 + 999999 / 4);
    assert.ok(Math.abs(r.exposure - (Math.log2(1e6) - Math.log2(1 + 999999 / 4))) < 1e-12);
    assert.ok(Math.abs(r.maxExposure - 6 * Math.log2(10)) < 1e-12);
  });
});
