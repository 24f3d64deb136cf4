// StreamBatcher (nanoGPT's get_batch windows) and ExampleBatcher (shuffled, right-padded epochs): windows match the
// data at their offsets, seeds decide everything, every example once per epoch, and a saved state resumes exactly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExampleBatcher, IGNORE_INDEX, StreamBatcher, epochPermutation } from '../../src/data/index.js';
import type { ExampleBatch, ExampleData, StreamData } from '../../src/data/index.js';
import { Rng } from '../../src/tensor/random.js';

function rampStream(n: number): StreamData {
  const ids = new Int32Array(n);
  for (let i = 0; i < n; i++) ids[i] = (i * 7 + 3) % 101; // distinct enough to locate windows
  return { kind: 'stream', task: 'lm', ids, source: 'ramp' };
}

test('StreamBatcher: x = data[i:i+T], y = data[i+1:i+1+T] at offsets randint(len - T) drawn from the rng', () => {
  const data = rampStream(200);
  const B = 4;
  const T = 16;
  const batcher = new StreamBatcher(data, B, T, new Rng(1337));
  const ref = new Rng(1337); // the same draws, made by hand
  for (let step = 0; step < 5; step++) {
    const { x, y, batch, block } = batcher.next();
    assert.equal(batch, B);
    assert.equal(block, T);
    assert.equal(x.length, B * T);
    for (let b = 0; b < B; b++) {
      const i = ref.int(200 - T);
      assert.equal(batcher.offsets[b], i);
      assert.deepEqual(Array.from(x.subarray(b * T, (b + 1) * T)), Array.from(data.ids.subarray(i, i + T)));
      assert.deepEqual(Array.from(y.subarray(b * T, (b + 1) * T)), Array.from(data.ids.subarray(i + 1, i + 1 + T)));
    }
  }
});

test('StreamBatcher: the same seed gives the same batches, another seed others; the smallest data works', () => {
  const data = rampStream(300);
  const a = new StreamBatcher(data, 3, 8, new Rng(7));
  const b = new StreamBatcher(data, 3, 8, new Rng(7));
  const c = new StreamBatcher(data, 3, 8, new Rng(8));
  let differs = false;
  for (let i = 0; i < 4; i++) {
    const ba = a.next();
    assert.deepEqual(ba, b.next());
    if (JSON.stringify(Array.from(ba.x)) !== JSON.stringify(Array.from(c.next().x))) differs = true;
  }
  assert.ok(differs);
  // len = T + 1: the only window is offset 0
  const tight = new StreamBatcher(rampStream(9), 2, 8, new Rng(0));
  const { x, y } = tight.next();
  assert.deepEqual(Array.from(x.subarray(0, 8)), Array.from(rampStream(9).ids.subarray(0, 8)));
  assert.deepEqual(Array.from(y.subarray(8, 16)), Array.from(rampStream(9).ids.subarray(1, 9)));
});

test('StreamBatcher: the rng state resumes the batch sequence', () => {
  const data = rampStream(500);
  const rng = new Rng(42);
  const a = new StreamBatcher(data, 2, 10, rng);
  a.next();
  const saved = rng.getState();
  const expected = [a.next(), a.next()];
  const rng2 = new Rng(0);
  rng2.setState(saved);
  const b = new StreamBatcher(data, 2, 10, rng2);
  assert.deepEqual([b.next(), b.next()], expected);
});

test('StreamBatcher.sequential: non-overlapping windows covering the stream once', () => {
  const data = rampStream(35); // (35 - 1) / 8 -> 4 windows
  const batcher = new StreamBatcher(data, 3, 8, new Rng(0));
  const batches = [...batcher.sequential()];
  assert.deepEqual(batches.map((b) => b.batch), [3, 1]);
  const xs = batches.flatMap((b) => Array.from(b.x));
  const ys = batches.flatMap((b) => Array.from(b.y));
  assert.deepEqual(xs, Array.from(data.ids.subarray(0, 32)));
  assert.deepEqual(ys, Array.from(data.ids.subarray(1, 33)));
});

/** Examples of lengths 1..n, ids = 10 * (index + 1) + position, labels index % 3. */
function classification(n: number): ExampleData {
  const examples = Array.from({ length: n }, (_, i) => ({
    ids: Int32Array.from({ length: i + 1 }, (_, p) => 10 * (i + 1) + p),
    label: i % 3,
    line: i + 1,
  }));
  return { kind: 'examples', task: 'classification', examples, labels: ['a', 'b', 'c'], source: 'cls.jsonl' };
}

function row(a: ArrayLike<number>, b: number, T: number): number[] {
  return Array.from(a as Int32Array).slice(b * T, (b + 1) * T);
}

test('ExampleBatcher.batches: right padding, masks, lengths, labels, truncation to the block size', () => {
  const data = classification(5); // lengths 1..5
  const batcher = new ExampleBatcher(data, 3, 4, 99, 0);
  const [first, second] = [...batcher.batches()];
  assert.equal(first.batch, 3);
  assert.equal(first.block, 3); // longest of lengths 1, 2, 3
  assert.deepEqual(Array.from(first.indices), [0, 1, 2]);
  assert.deepEqual(row(first.ids, 0, 3), [10, 99, 99]);
  assert.deepEqual(row(first.ids, 1, 3), [20, 21, 99]);
  assert.deepEqual(row(first.ids, 2, 3), [30, 31, 32]);
  assert.deepEqual(Array.from(first.attentionMask), [1, 0, 0, 1, 1, 0, 1, 1, 1]);
  assert.deepEqual(Array.from(first.lengths), [1, 2, 3]);
  assert.deepEqual(Array.from(first.labels!), [0, 1, 2]);
  assert.equal(first.targets, undefined);
  assert.equal(first.values, undefined);
  // lengths 4 and 5 -> truncated to the block size 4 from the right
  assert.equal(second.batch, 2);
  assert.equal(second.block, 4);
  assert.deepEqual(row(second.ids, 1, 4), [50, 51, 52, 53]);
  assert.deepEqual(Array.from(second.lengths), [4, 4]);
  assert.deepEqual(Array.from(second.labels!), [0, 1]);
  // padToBlock pads every batch to the block size
  const fixed = [...new ExampleBatcher(data, 3, 4, 99, 0, { padToBlock: true }).batches()][0];
  assert.equal(fixed.block, 4);
  assert.deepEqual(row(fixed.ids, 0, 4), [10, 99, 99, 99]);
});

test('ExampleBatcher: instruct targets are -100 on the prompt and the padding; regression values', () => {
  const data: ExampleData = {
    kind: 'examples', task: 'instruct', source: 'sft.jsonl',
    examples: [
      { ids: Int32Array.from([1, 2, 3, 4, 9]), targets: Int32Array.from([-100, 3, 4, 9, -100]) },
      { ids: Int32Array.from([5, 6, 9]), targets: Int32Array.from([6, 9, -100]) },
    ],
  };
  const [b] = [...new ExampleBatcher(data, 2, 8, 0, 1).batches()];
  assert.equal(b.block, 5);
  assert.deepEqual(row(b.targets!, 0, 5), [IGNORE_INDEX, 3, 4, 9, IGNORE_INDEX]);
  assert.deepEqual(row(b.targets!, 1, 5), [6, 9, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX]);
  assert.deepEqual(row(b.ids, 1, 5), [5, 6, 9, 0, 0]);
  // truncated to 3: the last kept position keeps its target, the next token of the whole example
  const [cut] = [...new ExampleBatcher(data, 2, 3, 0, 1).batches()];
  assert.deepEqual(row(cut.targets!, 0, 3), [IGNORE_INDEX, 3, 4]);

  const reg: ExampleData = {
    kind: 'examples', task: 'regression', source: 'r.jsonl',
    examples: [{ ids: Int32Array.from([1]), value: 0.25 }, { ids: Int32Array.from([2, 3]), value: -4 }],
  };
  const [rb] = [...new ExampleBatcher(reg, 4, 8, 0, 1).batches()];
  assert.deepEqual(Array.from(rb.values!), [0.25, -4]);
  assert.equal(rb.labels, undefined);
});

function drain(batcher: ExampleBatcher, batches: number): ExampleBatch[] {
  return Array.from({ length: batches }, () => batcher.next());
}

test('epochs: every example exactly once per epoch; the order depends on (seed, epoch) only', () => {
  const n = 23;
  const data = classification(n);
  const batcher = new ExampleBatcher(data, 5, 64, 0, 1234);
  assert.equal(batcher.batchesPerEpoch, 5);
  for (let epoch = 0; epoch < 3; epoch++) {
    assert.equal(batcher.epoch, epoch);
    const batches = drain(batcher, 5);
    assert.deepEqual(batches.map((b) => b.batch), [5, 5, 5, 5, 3]); // the remainder closes the epoch
    const seen = batches.flatMap((b) => Array.from(b.indices));
    assert.deepEqual([...seen].sort((a, b) => a - b), Array.from({ length: n }, (_, i) => i));
    assert.deepEqual(seen, Array.from(epochPermutation(n, 1234, epoch)));
    // the rows really are those examples
    for (const b of batches) {
      for (let r = 0; r < b.batch; r++) assert.equal(b.ids[r * b.block], 10 * (b.indices[r] + 1));
    }
  }
  assert.equal(batcher.epoch, 3);
  assert.notDeepEqual(Array.from(epochPermutation(n, 1234, 0)), Array.from(epochPermutation(n, 1234, 1)));
  assert.notDeepEqual(Array.from(epochPermutation(n, 1234, 0)), Array.from(epochPermutation(n, 1235, 0)));
  assert.deepEqual(Array.from(epochPermutation(n, 1234, 2)), Array.from(epochPermutation(n, 1234, 2)));
  // the shuffle is not the identity
  assert.notDeepEqual(Array.from(epochPermutation(n, 1234, 0)), Array.from({ length: n }, (_, i) => i));
});

test('ExampleBatcher state: save mid-epoch and across an epoch boundary, restore in a new batcher, same batches', () => {
  const data = classification(11);
  for (const stopAfter of [1, 3, 4, 7]) {
    const a = new ExampleBatcher(data, 3, 16, 0, 99);
    drain(a, stopAfter);
    const state = a.getState();
    const expected = drain(a, 6);
    const b = new ExampleBatcher(data, 3, 16, 0, 99);
    b.setState(JSON.parse(JSON.stringify(state)) as typeof state);
    assert.equal(b.epoch, state.epoch);
    assert.deepEqual(drain(b, 6), expected, `resumed after ${stopAfter} batches`);
  }
  const c = new ExampleBatcher(data, 3, 16, 0, 99);
  drain(c, 4); // 11 examples / 3 = 4 batches: one epoch
  assert.deepEqual(c.getState(), { epoch: 1, cursor: 0 });
  // batches() does not move the state
  assert.equal([...c.batches()].length, 4);
  assert.deepEqual(c.getState(), { epoch: 1, cursor: 0 });
});

test('a batch larger than the data gives the whole (shuffled) data each step', () => {
  const data = classification(4);
  const b = new ExampleBatcher(data, 10, 8, 0, 5);
  const first = b.next();
  assert.equal(first.batch, 4);
  assert.equal(b.epoch, 1);
  assert.deepEqual([...first.indices].sort(), [0, 1, 2, 3]);
});
