// The privacy audit against outside references. test/golden/privacy/make_audit_golden.py computes, in plain PyTorch and
// numpy on an overfitted character model with a planted canary: each example's loss, sklearn's ROC AUC and the best
// |TPR - FPR| of the loss-threshold attack, each canary's rank and exposure among all secrets of its format, and
// greedy verbatim extraction. make_skewnorm.py gives the skew-normal log CDF by mpmath at 50 digits.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadRecordExamples, parseCanaryFormat, referenceCandidates, secretSteps, textExample } from '../../src/data/index.js';
import { canaryExposure, countSecretsAtMost, fitSkewNormal, fittedExposure, perExampleLosses, skewNormalLogCdf } from '../../src/eval/index.js';
import { loadPretrained } from '../../src/models/index.js';
import { Rng } from '../../src/tensor/index.js';
import { useReferenceBackend } from '../helpers/backends.js';
import { runCli } from '../helpers/cli.js';
import { goldenPath, maxRelDiff, readGoldenJson } from '../helpers/golden.js';

interface Expected {
  member_losses: number[];
  non_member_losses: number[];
  auc: number;
  advantage: number;
  canaries: Array<{ nll: number; rank: number; exposure: number }>;
  extraction: { prefix_tokens: number; continuation_tokens: number; examples: number; extracted: number };
}

const expected = readGoldenJson<Expected>('privacy/expected.json');
const model = goldenPath('privacy/memorised');
const members = goldenPath('privacy/members.txt');
const nonMembers = goldenPath('privacy/non_members.txt');
const canaries = goldenPath('privacy/canaries.json');

describe('ajar audit against PyTorch and numpy (test/golden/privacy)', () => {
  it('per-example losses equal PyTorch\'s within 1e-5', () => {
    useReferenceBackend();
    const { model: m, tokenizer } = loadPretrained(model);
    const got = perExampleLosses(m, loadRecordExamples({ path: members }, tokenizer)).mean;
    assert.ok(maxRelDiff(got, expected.member_losses) < 1e-5, `members: ${maxRelDiff(got, expected.member_losses)}`);
    const gotNon = perExampleLosses(m, loadRecordExamples({ path: nonMembers }, tokenizer)).mean;
    assert.ok(maxRelDiff(gotNon, expected.non_member_losses) < 1e-5, `non-members: ${maxRelDiff(gotNon, expected.non_member_losses)}`);
  });

  it('membership AUC and advantage, canary exposure and extraction equal the references', () => {
    const r = runCli(['audit', '--model', model, '--members', members, '--non-members', nonMembers, '--canaries', canaries,
      '--extract-prefix', '6', '--extract-tokens', '6', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const got = JSON.parse(r.stdout) as {
      membership: { auc: number; advantage: number; members: number; non_members: number };
      canaries: { method: string; references: number; exposures: number[]; exposure_max: number; exposure_mean: number; extracted: number; exposure_max_possible: number };
      extraction: { examples: number; extracted: number; rate: number };
    };
    assert.equal(got.membership.members, expected.member_losses.length);
    assert.equal(got.membership.non_members, expected.non_member_losses.length);
    assert.ok(Math.abs(got.membership.auc - expected.auc) < 1e-12, `auc ${got.membership.auc} vs ${expected.auc}`);
    assert.ok(Math.abs(got.membership.advantage - expected.advantage) < 1e-12, `advantage ${got.membership.advantage} vs ${expected.advantage}`);
    // |R| = 676, two canaries: every one of the 674 other secrets is ranked.
    assert.equal(got.canaries.method, 'enumerate');
    assert.equal(got.canaries.references, 674);
    assert.ok(Math.abs(got.canaries.exposure_max_possible - Math.log2(676)) < 1e-9);
    expected.canaries.forEach((c, i) => {
      assert.ok(Math.abs(got.canaries.exposures[i] - c.exposure) < 1e-9, `canary ${i}: exposure ${got.canaries.exposures[i]} vs ${c.exposure} (rank ${c.rank})`);
    });
    assert.ok(Math.abs(got.canaries.exposure_max - Math.max(...expected.canaries.map((c) => c.exposure))) < 1e-9);
    // The planted canary is reproduced by greedy decoding from "the key is "; the unplanted one is not.
    assert.equal(got.canaries.extracted, 1);
    assert.equal(got.extraction.examples, expected.extraction.examples);
    assert.equal(got.extraction.extracted, expected.extraction.extracted);
  });
});

describe('the pruned search over a format\'s secrets', () => {
  it('counts exactly the secrets that score at most a threshold, as scoring all 17,576 of them does', () => {
    useReferenceBackend();
    const { model: m, tokenizer } = loadPretrained(model);
    if (m.task !== 'causal-lm') throw new Error('a language model');
    const format = parseCanaryFormat('the key is {letters:3}');
    const all = referenceCandidates(format, [], format.spaceSize, new Rng(0)).texts;
    assert.equal(all.length, 17576);
    const data = { kind: 'examples' as const, task: 'lm' as const, source: 'all', examples: all.map((t) => textExample(tokenizer, t, 'all')) };
    const scores = perExampleLosses(m, data, { batchSize: 256 }).sum.sort((a, b) => a - b);
    const steps = secretSteps(format, tokenizer, ['the key is abc']);
    assert.ok(steps !== null);
    for (const k of [1, 7, 40]) {
      // Halfway between the k-th and the (k+1)-th score: exactly k secrets lie below.
      const threshold = (scores[k - 1] + scores[k]) / 2;
      assert.equal(countSecretsAtMost(m, steps, threshold, 100000), k, `k ${k}`);
    }
    assert.equal(countSecretsAtMost(m, steps, scores[500], 100), null, 'over the cap');
  });
});

describe('exposure by the secret sharer\'s definition', () => {
  it('a hand-checked case: one digit, the canary ranked third of ten', () => {
    // Format "{digits:1}": |R| = 10. Scores are the digit itself, so canary "2" has "0" and "1" below it: rank 3.
    const format = parseCanaryFormat('{digits:1}');
    const refs = referenceCandidates(format, ['2'], 2000, new Rng(0));
    assert.equal(refs.method, 'enumerate');
    assert.deepEqual(refs.texts, ['0', '1', '3', '4', '5', '6', '7', '8', '9']);
    const r = canaryExposure(2, refs.texts.map(Number));
    assert.equal(r.rank, 3);
    assert.equal(r.exposure, Math.log2(10) - Math.log2(3));
  });

  it('samples distinct non-canary secrets when the space is larger than the budget', () => {
    const format = parseCanaryFormat('my PIN is {digits:6}');
    const refs = referenceCandidates(format, ['my PIN is 123456'], 500, new Rng(3));
    assert.equal(refs.method, 'sample');
    assert.equal(new Set(refs.texts).size, 500);
    assert.ok(refs.texts.every((t) => /^my PIN is \d{6}$/.test(t) && t !== 'my PIN is 123456'));
  });
});

describe('the skew-normal approximation of exposure', () => {
  it('log CDF equals mpmath at 50 digits, deep into the lower tail', () => {
    const cases = readGoldenJson<Array<{ x: number; loc: number; scale: number; shape: number; logcdf: number }>>('privacy/skewnorm.json');
    for (const c of cases) {
      const got = skewNormalLogCdf(c.x, { loc: c.loc, scale: c.scale, shape: c.shape });
      const tol = 1e-7 * Math.max(1, Math.abs(c.logcdf));
      assert.ok(Math.abs(got - c.logcdf) <= tol, `x ${c.x} loc ${c.loc} scale ${c.scale} shape ${c.shape}: ${got} vs ${c.logcdf}`);
    }
  });

  it('the method-of-moments fit recovers a skew-normal from a sample drawn by its definition', () => {
    // X = loc + scale (delta |U0| + sqrt(1 - delta^2) U1), U0, U1 standard normal: skew-normal with shape delta / sqrt(1 - delta^2).
    const rng = new Rng(11);
    const truth = { loc: 70, scale: 10, shape: 2 };
    const delta = truth.shape / Math.sqrt(1 + truth.shape ** 2);
    const sample = Array.from({ length: 200000 }, () => truth.loc + truth.scale * (delta * Math.abs(rng.normal()) + Math.sqrt(1 - delta * delta) * rng.normal()));
    const fit = fitSkewNormal(sample);
    assert.ok(Math.abs(fit.loc - truth.loc) < 0.3, `loc ${fit.loc}`);
    assert.ok(Math.abs(fit.scale - truth.scale) < 0.3, `scale ${fit.scale}`);
    assert.ok(Math.abs(fit.shape - truth.shape) < 0.3, `shape ${fit.shape}`);
    // A canary at the sample's 1/1024 quantile has about 10 bits of exposure; one far below is capped at log2 |R|.
    const sorted = [...sample].sort((a, b) => a - b);
    const q = sorted[Math.floor(sample.length / 1024)];
    assert.ok(Math.abs(fittedExposure(q, fit, 1e6) - 10) < 0.5, `exposure ${fittedExposure(q, fit, 1e6)}`);
    assert.equal(fittedExposure(-1e3, fit, 1e6), Math.log2(1e6));
  });
});
