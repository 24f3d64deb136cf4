// Evaluation of sequence classifiers and regressors over example data: every example once, in file order,
// scored at its last real token; classification and regression reports as classification.ts defines them.
import { ExampleBatcher, type ExampleData } from '../data/index.js';
import type { SequenceClassifier } from '../models/types.js';
import { AjarError, crossEntropy, mseLoss, noGrad, reshape, tensor } from '../tensor/index.js';
import { classificationReport, regressionReport, type ClassificationReport, type RegressionReport } from './classification.js';

export interface ExampleEvalOptions {
  blockSize?: number; // default: the model's context
  batchSize?: number; // default 16
  padId?: number; // default 0 (right padding cannot reach real tokens under causal attention)
  onProgress?: (done: number, total: number) => void;
}

export type ClassifierEvalResult =
  | ({ task: 'classification'; loss: number } & ClassificationReport)
  | ({ task: 'regression'; loss: number } & RegressionReport);

export function evaluateClassifier(model: SequenceClassifier, data: ExampleData, opts: ExampleEvalOptions = {}): ClassifierEvalResult {
  const block = opts.blockSize ?? model.contextLength;
  if (block > model.contextLength) {
    throw new AjarError('bad_flag', `block size ${block} exceeds the model's context length ${model.contextLength}`);
  }
  if (!model.regression && data.task !== 'classification') {
    throw new AjarError('bad_data', `${data.source}: the model is a classifier, but the data's task is ${data.task} (give {"text","label"} records)`);
  }
  if (!model.regression) {
    // The data's label ids must mean what the model's do.
    const labels = data.labels ?? [];
    for (const l of labels) {
      if (!model.labels.includes(l)) {
        throw new AjarError('bad_data', `${data.source}: label '${l}' is not one of the model's labels (${model.labels.join(', ')})`);
      }
    }
  }
  const batcher = new ExampleBatcher(data, opts.batchSize ?? 16, block, opts.padId ?? 0, 0);
  const truth: number[] = [];
  const pred: number[] = [];
  let lossSum = 0;
  const wasTraining = model.module.training;
  model.module.eval();
  try {
    noGrad(() => {
      for (const b of batcher.batches()) {
        const scores = model.classify(b.ids, b.batch, b.lengths.map((l) => l - 1)); // (B, K)
        const K = scores.shape[1];
        if (model.regression) {
          const values = b.values!;
          lossSum += mseLoss(reshape(scores, [b.batch]), tensor(values)).item() * b.batch;
          for (let r = 0; r < b.batch; r++) {
            truth.push(values[r]);
            pred.push(scores.data[r]);
          }
        } else {
          // Map the data's label ids onto the model's.
          const mapped = Int32Array.from(b.labels!, (id) => model.labels.indexOf(data.labels![id]));
          lossSum += crossEntropy(scores, mapped, { reduction: 'sum' }).item();
          for (let r = 0; r < b.batch; r++) {
            truth.push(mapped[r]);
            let best = 0;
            for (let k = 1; k < K; k++) if (scores.data[r * K + k] > scores.data[r * K + best]) best = k;
            pred.push(best);
          }
        }
        opts.onProgress?.(truth.length, data.examples.length);
      }
    });
  } finally {
    model.module.train(wasTraining);
  }
  const loss = lossSum / truth.length;
  return model.regression
    ? { task: 'regression', loss, ...regressionReport(truth, pred) }
    : { task: 'classification', loss, ...classificationReport(model.labels, truth, pred) };
}
