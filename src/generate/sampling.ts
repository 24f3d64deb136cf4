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

/** Buckets of logit ranges the ranking is cut into; only the buckets a draw lands in are sorted. */
const BUCKETS = 4096;

/**
 * Choose the next token from a logits row (modified in place). The candidates are ranked by logit, descending (ties
 * by lower id); top-k keeps the first k, top-p the shortest prefix whose probability reaches p, and the seeded draw
 * walks the kept ones in that order.
 * NOTE: ranking a 50,257-token row by a full sort took tens of milliseconds a token, more than decoding it. Without
 * top-k, tokens go into buckets of equal logit range (a counting sort, so bucket order is rank order and ties keep
 * id order) with each bucket's probability mass summed; top-p and the draw walk bucket masses and sort only the
 * bucket where they stop. Top-k selects its k in linear time. Sums run in another order than a walk of the fully
 * sorted row, so a seed can pick another token only where the draw falls within rounding of a boundary.
 */
export function sampleToken(logits: Float32Array, rng: Rng, opts: SamplingOptions, seen: readonly number[]): number {
  const row = logits;
  if (opts.repetitionPenalty !== undefined) applyRepetitionPenalty(row, seen, opts.repetitionPenalty);
  const temperature = opts.temperature ?? 1;
  if (temperature === 0) return argmax(row);
  const k = opts.topK ?? 0;
  const topP = opts.topP ?? 1;
  if (k > 0 && k < row.length) return drawFromRanked(row, topKIndices(row, k), temperature, topP, rng);
  return drawBucketed(row, temperature, topP, rng);
}

/** Top-p then the draw over ids already ranked (at least one). */
function drawFromRanked(row: Float32Array, order: number[], temperature: number, topP: number, rng: Rng): number {
  const maxLogit = row[order[0]];
  const probs = order.map((i) => Math.exp((row[i] - maxLogit) / temperature));
  let total = probs.reduce((s, p) => s + p, 0);
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

/** Top-p then the draw over the whole row, sorting only the buckets where they stop. */
function drawBucketed(row: Float32Array, temperature: number, topP: number, rng: Rng): number {
  const V = row.length;
  const maxLogit = row[argmax(row)];
  let minLogit = maxLogit;
  for (let i = 0; i < V; i++) if (row[i] < minLogit && Number.isFinite(row[i])) minLogit = row[i];
  const scale = maxLogit > minLogit ? (BUCKETS - 1) / (maxLogit - minLogit) : 0;
  const w = new Float64Array(V);
  const bucketOf = new Int32Array(V);
  const start = new Int32Array(BUCKETS + 1);
  const mass = new Float64Array(BUCKETS);
  let sum = 0;
  for (let i = 0; i < V; i++) {
    const x = (maxLogit - row[i]) * scale;
    const b = x >= 0 ? Math.min(BUCKETS - 1, Math.floor(x)) : BUCKETS - 1; // NOTE: NaN and -Infinity go last
    const wi = Math.exp((row[i] - maxLogit) / temperature) || 0;
    w[i] = wi;
    bucketOf[i] = b;
    start[b + 1]++;
    mass[b] += wi;
    sum += wi;
  }
  for (let b = 0; b < BUCKETS; b++) start[b + 1] += start[b];
  const ids = new Int32Array(V);
  const fill = start.slice(0, BUCKETS);
  for (let i = 0; i < V; i++) ids[fill[bucketOf[i]]++] = i;
  const ranked = (b: number): number[] => {
    const out = Array.from(ids.subarray(start[b], start[b + 1]));
    out.sort((x, y) => row[y] - row[x] || x - y);
    return out;
  };
  // The kept tokens: every bucket before `lastBucket`, and of that one its first `lastCount` in rank order.
  let lastBucket = BUCKETS - 1;
  while (lastBucket > 0 && start[lastBucket] === start[lastBucket + 1]) lastBucket--;
  let lastRanked: number[] | undefined;
  let lastCount = start[lastBucket + 1] - start[lastBucket];
  let total = sum;
  if (topP < 1) {
    let cum = 0;
    for (let b = 0; b < BUCKETS; b++) {
      if (start[b] === start[b + 1]) continue;
      if ((cum + mass[b]) / sum < topP) {
        cum += mass[b];
        continue;
      }
      lastBucket = b;
      lastRanked = ranked(b);
      lastCount = lastRanked.length;
      for (let j = 0; j < lastRanked.length; j++) {
        cum += w[lastRanked[j]];
        if (cum / sum >= topP) {
          lastCount = j + 1;
          break;
        }
      }
      break;
    }
    total = 0;
    for (let b = 0; b < lastBucket; b++) total += mass[b];
    for (let j = 0; j < lastCount; j++) total += w[lastRanked![j]];
  }
  let u = rng.next() * total;
  let lastSeen = -1;
  for (let b = 0; b <= lastBucket; b++) {
    if (start[b] === start[b + 1]) continue;
    if (b < lastBucket && u >= mass[b]) {
      u -= mass[b];
      continue;
    }
    const order = b === lastBucket && lastRanked !== undefined ? lastRanked : ranked(b);
    const n = b === lastBucket ? lastCount : order.length;
    for (let j = 0; j < n; j++) {
      lastSeen = order[j];
      u -= w[order[j]];
      if (u < 0) return order[j];
    }
  }
  // NOTE: rounding left u just above zero: the last kept token, as a walk of the sorted row ends.
  return lastSeen >= 0 ? lastSeen : argmax(row);
}

/** Indices of the k largest values, descending (ties by lower index), selected in linear expected time. */
function topKIndices(row: Float32Array, k: number): number[] {
  const kth = kthLargest(Float32Array.from(row), k);
  const out: number[] = [];
  for (let i = 0; i < row.length; i++) if (row[i] > kth) out.push(i);
  for (let i = 0; i < row.length && out.length < k; i++) if (row[i] === kth) out.push(i);
  out.sort((a, b) => row[b] - row[a] || a - b);
  return out;
}

/** The k-th largest of xs (1-based), by quickselect; xs is reordered. */
function kthLargest(xs: Float32Array, k: number): number {
  let lo = 0;
  let hi = xs.length - 1;
  const target = k - 1; // NOTE: position in descending order
  while (lo < hi) {
    const pivot = xs[(lo + hi) >>> 1];
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (xs[i] > pivot) i++;
      while (xs[j] < pivot) j--;
      if (i <= j) {
        const t = xs[i];
        xs[i] = xs[j];
        xs[j] = t;
        i++;
        j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else return xs[target];
  }
  return xs[target];
}
