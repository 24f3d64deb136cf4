// Classification and regression metrics: accuracy, per-class precision/recall/F1, macro-F1 and the confusion
// matrix (rows = true label, columns = predicted), as scikit-learn defines them; MSE and MAE for regression.

export interface ClassMetrics {
  label: string;
  precision: number;
  recall: number;
  f1: number;
  support: number; // true examples of this class
}

export interface ClassificationReport {
  accuracy: number;
  macro_f1: number;
  per_class: ClassMetrics[];
  confusion: number[][]; // [true][predicted]
  examples: number;
  majority_baseline: number; // accuracy of always predicting the most frequent true class
}

/** NOTE: a class never predicted has precision 0 (scikit-learn's zero_division=0), likewise recall and F1. */
export function classificationReport(labels: string[], truth: ArrayLike<number>, pred: ArrayLike<number>): ClassificationReport {
  const k = labels.length;
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  for (let i = 0; i < truth.length; i++) confusion[truth[i]][pred[i]]++;
  let correct = 0;
  for (let c = 0; c < k; c++) correct += confusion[c][c];
  const per_class = labels.map((label, c) => {
    const tp = confusion[c][c];
    const support = confusion[c].reduce((s, v) => s + v, 0);
    const predicted = confusion.reduce((s, row) => s + row[c], 0);
    const precision = predicted > 0 ? tp / predicted : 0;
    const recall = support > 0 ? tp / support : 0;
    const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
    return { label, precision, recall, f1, support };
  });
  const present = per_class.filter((m) => m.support > 0 || confusion.some((row) => row[labels.indexOf(m.label)] > 0));
  const macro_f1 = present.length > 0 ? present.reduce((s, m) => s + m.f1, 0) / present.length : 0;
  const maxSupport = Math.max(0, ...per_class.map((m) => m.support));
  return {
    accuracy: truth.length > 0 ? correct / truth.length : 0,
    macro_f1,
    per_class,
    confusion,
    examples: truth.length,
    majority_baseline: truth.length > 0 ? maxSupport / truth.length : 0,
  };
}

export interface RegressionReport {
  mse: number;
  mae: number;
  examples: number;
}

export function regressionReport(truth: ArrayLike<number>, pred: ArrayLike<number>): RegressionReport {
  let se = 0;
  let ae = 0;
  for (let i = 0; i < truth.length; i++) {
    const d = pred[i] - truth[i];
    se += d * d;
    ae += Math.abs(d);
  }
  const n = truth.length;
  return { mse: n > 0 ? se / n : NaN, mae: n > 0 ? ae / n : NaN, examples: n };
}
