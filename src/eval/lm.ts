// Language-model evaluation as `ajar eval` defines it: consecutive non-overlapping windows of at most
// blockSize tokens; every token after the first of a window is predicted; mean loss in nats per prediction.
import type { CausalLM } from '../models/types.js';
import { AjarError, crossEntropy, noGrad, reshape } from '../tensor/index.js';

export interface LMEvalResult {
  loss: number; // mean cross-entropy, nats per predicted token
  perplexity: number; // exp(loss)
  tokens: number; // number of predicted tokens
  accuracy: number; // share of predictions whose argmax is the target
}

export interface LMEvalOptions {
  blockSize?: number; // default: the model's context length
  batchSize?: number; // windows per forward pass (full-length windows only); default 8
  onProgress?: (doneTokens: number, totalTokens: number) => void;
}

export function evaluateLM(model: CausalLM, ids: readonly number[], opts: LMEvalOptions = {}): LMEvalResult {
  const block = opts.blockSize ?? model.contextLength;
  if (!Number.isInteger(block) || block < 2) throw new AjarError('bad_flag', `block size must be an integer >= 2, got ${block}`);
  if (block > model.contextLength) {
    throw new AjarError('bad_flag', `block size ${block} exceeds the model's context length ${model.contextLength}`);
  }
  const windows: [number, number][] = [];
  for (let s = 0; s < ids.length; s += block) windows.push([s, Math.min(ids.length, s + block)]);
  const predicted = windows.reduce((n, [s, e]) => n + Math.max(0, e - s - 1), 0);
  if (predicted === 0) {
    throw new AjarError('bad_input', `the data has ${ids.length} token(s): at least 2 are needed to predict one`);
  }
  const batchSize = opts.batchSize ?? 8;
  const wasTraining = model.module.training;
  model.module.eval();
  let total = 0; // float64 sum of per-token losses
  let correct = 0;
  let done = 0;
  try {
    let i = 0;
    while (i < windows.length) {
      const len = windows[i][1] - windows[i][0];
      // Group consecutive windows of the same length into one batch.
      let j = i + 1;
      while (j < windows.length && j - i < batchSize && windows[j][1] - windows[j][0] === len) j++;
      const B = j - i;
      if (len >= 2) {
        const input = new Int32Array(B * len);
        const targets = new Int32Array(B * len).fill(-100);
        for (let b = 0; b < B; b++) {
          const s = windows[i + b][0];
          for (let t = 0; t < len; t++) input[b * len + t] = ids[s + t];
          for (let t = 0; t < len - 1; t++) targets[b * len + t] = ids[s + t + 1];
        }
        noGrad(() => {
          const logits = model.forward(input, B); // (B, T, V)
          const V = logits.shape[2];
          const flat = reshape(logits, [B * len, V]);
          total += crossEntropy(flat, targets, { reduction: 'sum' }).item();
          for (let r = 0; r < B * len; r++) {
            if (targets[r] < 0) continue;
            let best = 0;
            const off = r * V;
            for (let v = 1; v < V; v++) if (flat.data[off + v] > flat.data[off + best]) best = v;
            if (best === targets[r]) correct++;
          }
        });
        done += B * (len - 1);
        opts.onProgress?.(done, predicted);
      }
      i = j;
    }
  } finally {
    model.module.train(wasTraining);
  }
  const loss = total / predicted;
  return { loss, perplexity: Math.exp(loss), tokens: predicted, accuracy: correct / predicted };
}
