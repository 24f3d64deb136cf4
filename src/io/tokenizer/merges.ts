// The BPE merge loop shared by every ajar BPE tokenizer: given a word's starting symbols (token ids) and the ranked
// merges, applies the lowest-ranked adjacent pair first (leftmost among equals) until none applies.
// Equal to OpenAI's encoder.py bpe() and to Hugging Face tokenizers' Word::merge_all (without dropout).
import { AjarError } from '../../tensor/errors.js';

// NOTE: a merge is looked up by one number, left * 2^21 + right, so ids must stay below 2^21 (2,097,152);
// and heap keys are rank * 2^32 + position, exact in a double while rank < 2^21.
export const ID_LIMIT = 2 ** 21;
const PAIR_SHIFT = 2 ** 21;
const POS_SHIFT = 2 ** 32;

/**
 * A binary min-heap of merge candidates keyed rank * 2^32 + position: the lowest rank first, and among equal
 * ranks the leftmost, which is the order encoder.py applies merges in.
 */
class CandidateHeap {
  private keys: number[] = [];

  get size(): number {
    return this.keys.length;
  }

  clear(): void {
    this.keys.length = 0;
  }

  peek(): number {
    return this.keys[0];
  }

  push(key: number): void {
    const k = this.keys;
    let i = k.length;
    k.push(key);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (k[parent] <= key) break;
      k[i] = k[parent];
      i = parent;
    }
    k[i] = key;
  }

  pop(): number {
    const k = this.keys;
    const top = k[0];
    const last = k.pop()!;
    const n = k.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && k[r] < k[l] ? r : l;
        if (k[c] >= last) break;
        k[i] = k[c];
        i = c;
      }
      k[i] = last;
    }
    return top;
  }
}

export class BpeMerges {
  /** left * 2^21 + right -> merge rank; a pair listed twice keeps its last rank, as encoder.py's dict (and HF's map) do. */
  private readonly pairRank = new Map<number, number>();
  private readonly mergeLeft: Int32Array;
  private readonly mergeRight: Int32Array;
  private readonly mergeResult: Int32Array;
  private readonly heap = new CandidateHeap();
  private inMerge: Set<number> | null = null;

  /**
   * merges: in rank order, as token strings; vocab: token -> id. A merge whose parts or result are not in the
   * vocabulary is a bad_tokenizer error naming it.
   */
  constructor(merges: ReadonlyArray<readonly [string, string]>, vocab: ReadonlyMap<string, number>, source: string) {
    if (merges.length >= ID_LIMIT) throw new AjarError('bad_tokenizer', `${source}: ${merges.length} merges; at most ${ID_LIMIT - 1} are supported`);
    this.mergeLeft = new Int32Array(merges.length);
    this.mergeRight = new Int32Array(merges.length);
    this.mergeResult = new Int32Array(merges.length);
    merges.forEach(([a, b], rank) => {
      const left = vocab.get(a);
      const right = vocab.get(b);
      const result = vocab.get(a + b);
      if (left === undefined || right === undefined || result === undefined) {
        const missing = [left === undefined ? a : null, right === undefined ? b : null, result === undefined ? a + b : null].filter((t) => t !== null);
        throw new AjarError('bad_tokenizer', `${source}: merge ${rank + 1} (${JSON.stringify(a)} ${JSON.stringify(b)}) uses ${missing.map((t) => JSON.stringify(t)).join(', ')}, not in the vocabulary`);
      }
      this.mergeLeft[rank] = left;
      this.mergeRight[rank] = right;
      this.mergeResult[rank] = result;
      this.pairRank.set(left * PAIR_SHIFT + right, rank);
    });
  }

  /**
   * Merges sym (the word's starting token ids, modified in place) and returns the final ids. Symbols live in a
   * linked list over positions; candidate pairs wait in a heap, so a long word (a page of CJK text has no spaces)
   * costs O(n log n), not O(n^2).
   */
  apply(sym: Int32Array): number[] {
    const n = sym.length;
    if (n <= 1) return Array.from(sym);
    const next = new Int32Array(n); // position of the next live symbol, or n
    const prev = new Int32Array(n); // position of the previous live symbol, or -1
    for (let i = 0; i < n; i++) {
      next[i] = i + 1;
      prev[i] = i - 1;
    }
    const heap = this.heap;
    heap.clear();
    for (let i = 0; i + 1 < n; i++) this.pushCandidate(sym, i, i + 1);

    const batch: number[] = [];
    while (heap.size > 0) {
      // One encoder.py round: every candidate of the lowest rank, leftmost first. Taking the whole batch out
      // before merging matters: a pair formed by this round's merges is applied in a later round, never this one.
      // (HF's merge_all pops one at a time; the two agree, since a merge's result can never re-form the same pair.)
      const rank = Math.floor(heap.peek() / POS_SHIFT);
      batch.length = 0;
      while (heap.size > 0 && Math.floor(heap.peek() / POS_SHIFT) === rank) batch.push(heap.pop() % POS_SHIFT);
      const left = this.mergeLeft[rank];
      const right = this.mergeRight[rank];
      const merged = this.mergeResult[rank];
      for (const pos of batch) {
        // Skip stale candidates: the symbol at pos, or its right neighbour, changed since the pair was queued.
        if (sym[pos] !== left) continue;
        const q = next[pos];
        if (q >= n || sym[q] !== right) continue;
        sym[pos] = merged;
        sym[q] = -1;
        const after = next[q];
        next[pos] = after;
        if (after < n) prev[after] = pos;
        if (prev[pos] >= 0) this.pushCandidate(sym, prev[pos], pos);
        if (after < n) this.pushCandidate(sym, pos, after);
      }
    }
    const ids: number[] = [];
    for (let i = 0; i < n; i = next[i]) ids.push(sym[i]);
    return ids;
  }

  /** Whether some merge has id as its left or right part (a symbol no merge uses can never change). */
  involves(id: number): boolean {
    if (this.inMerge === null) {
      this.inMerge = new Set<number>();
      for (let r = 0; r < this.mergeLeft.length; r++) {
        this.inMerge.add(this.mergeLeft[r]);
        this.inMerge.add(this.mergeRight[r]);
      }
    }
    return this.inMerge.has(id);
  }

  private pushCandidate(sym: Int32Array, pos: number, nextPos: number): void {
    const rank = this.pairRank.get(sym[pos] * PAIR_SHIFT + sym[nextPos]);
    if (rank !== undefined) this.heap.push(rank * POS_SHIFT + pos);
  }
}
