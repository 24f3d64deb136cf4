// Next-token choice from a logits row: repetition penalty, temperature, top-k, top-p, then a seeded draw.
// Semantics follow Hugging Face's logits processors; temperature 0 means greedy (argmax).
import type { Rng } from '../tensor/index.js';

export interface SamplingOptions {
  temperature?: number; // 0 = greedy; default 1
  topK?: number; // 0 or undefined = off
  topP?: number; // 1 or undefined = off
  repetitionPenalty?: number; // 1 or undefined = off (CTRL's penalty, as transformers)
}

export function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

/** transformers' RepetitionPenaltyLogitsProcessor: seen tokens' logits divided (if > 0) or multiplied by penalty. */
export function applyRepetitionPenalty(row: Float32Array, seen: Iterable<number>, penalty: number): void {
  if (penalty === 1) return;
  for (const id of new Set(seen)) {
    const v = row[id];
    row[id] = v > 0 ? v / penalty : v * penalty;
  }
}

/** Choose the next token from a logits row (modified in place). */
export function sampleToken(logits: Float32Array, rng: Rng, opts: SamplingOptions, seen: readonly number[]): number {
  const row = logits;
  if (opts.repetitionPenalty !== undefined) applyRepetitionPenalty(row, seen, opts.repetitionPenalty);
  const temperature = opts.temperature ?? 1;
  if (temperature === 0) return argmax(row);
  // Candidates sorted by logit, descending.
  let order = Array.from({ length: row.length }, (_, i) => i);
  const k = opts.topK ?? 0;
  if (k > 0 && k < row.length) {
    order = topKIndices(row, k);
  } else {
    order.sort((a, b) => row[b] - row[a]);
  }
  const maxLogit = row[order[0]];
  const probs = order.map((i) => Math.exp((row[i] - maxLogit) / temperature));
  let total = probs.reduce((s, p) => s + p, 0);
  const topP = opts.topP ?? 1;
  let keep = probs.length;
  if (topP < 1) {
    // Keep the smallest prefix whose probability mass reaches topP (at least one token).
    let cum = 0;
    for (let i = 0; i < probs.length; i++) {
      cum += probs[i] / total;
      if (cum >= topP) {
        keep = i + 1;
        break;
      }
    }
    total = probs.slice(0, keep).reduce((s, p) => s + p, 0);
  }
  let u = rng.next() * total;
  for (let i = 0; i < keep; i++) {
    u -= probs[i];
    if (u < 0) return order[i];
  }
  return order[keep - 1];
}

/** Indices of the k largest values, descending (ties by lower index). */
function topKIndices(row: Float32Array, k: number): number[] {
  const idx = Array.from({ length: row.length }, (_, i) => i);
  idx.sort((a, b) => row[b] - row[a] || a - b);
  return idx.slice(0, k);
}
