// Classification and regression metrics against hand-computed values (scikit-learn's definitions:
// precision_recall_fscore_support with zero_division=0, f1 average='macro', confusion_matrix rows = truth).
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { classificationReport, regressionReport } from '../../src/eval/classification.js';

it('precision, recall, F1, macro-F1, accuracy and the confusion matrix', () => {
  // truth: a a a a b b b c c c   pred: a a b c b b a c c a
  const truth = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2];
  const pred = [0, 0, 1, 2, 1, 1, 0, 2, 2, 0];
  const r = classificationReport(['a', 'b', 'c'], truth, pred);
  // confusion (rows truth a,b,c; columns predicted a,b,c): a: 2 1 1; b: 1 2 0; c: 1 0 2
  assert.deepEqual(r.confusion, [[2, 1, 1], [1, 2, 0], [1, 0, 2]]);
  assert.equal(r.accuracy, 6 / 10);
  // a: tp 2, predicted 4, support 4 -> P 0.5, R 0.5, F1 0.5
  // b: tp 2, predicted 3, support 3 -> P 2/3, R 2/3, F1 2/3
  // c: tp 2, predicted 3, support 3 -> P 2/3, R 2/3, F1 2/3
  const near = (x: number, y: number): boolean => Math.abs(x - y) < 1e-12;
  assert.ok(near(r.per_class[0].f1, 0.5));
  assert.ok(near(r.per_class[1].precision, 2 / 3) && near(r.per_class[1].recall, 2 / 3));
  assert.ok(near(r.macro_f1, (0.5 + 2 / 3 + 2 / 3) / 3));
  assert.equal(r.majority_baseline, 0.4);
  assert.deepEqual(r.per_class.map((m) => m.support), [4, 3, 3]);
});

it('a class never predicted has precision 0 and F1 0 (zero_division=0)', () => {
  // truth: a a b b   pred: a a a a -> b: tp 0, predicted 0 -> P 0, R 0, F1 0; a: P 0.5, R 1, F1 2/3
  const r = classificationReport(['a', 'b'], [0, 0, 1, 1], [0, 0, 0, 0]);
  assert.equal(r.per_class[1].precision, 0);
  assert.equal(r.per_class[1].f1, 0);
  assert.ok(Math.abs(r.macro_f1 - (2 / 3 + 0) / 2) < 1e-12);
});

it('MSE and MAE', () => {
  // errors 1, -2, 0.5 -> MSE (1 + 4 + 0.25) / 3 = 1.75, MAE (1 + 2 + 0.5) / 3 = 7/6
  const r = regressionReport([1, 2, 3], [2, 0, 3.5]);
  assert.ok(Math.abs(r.mse - 1.75) < 1e-12);
  assert.ok(Math.abs(r.mae - 7 / 6) < 1e-12);
});
