// Buffer lifetime in backward: transientGraph's activations go back to the backend once used (never a leaf's, the
// result's or a view of it), zeroGrad() gives back the .grad that backward made, and a tied table's embedding
// gradient is added into the pending one. Expected gradients come from the same graph without these paths.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { getBackend, hasBackend, setBackend, type Backend } from '../../src/tensor/backend.js';
import { add, embedding, exp, matmul, mul, randn, reshape, sum, tanh, transpose } from '../../src/tensor/ops.js';
import { Rng } from '../../src/tensor/random.js';
import { Tensor, transientGraph } from '../../src/tensor/tensor.js';
import { forEachBackend } from '../helpers/backends.js';

/**
 * The backend with a free() that records each buffer and poisons it with NaN before passing it on, so a buffer
 * given back too early shows up as NaN in the gradients.
 */
function withSpyFree(b: Backend, freed: Set<Float32Array>): Backend {
  return {
    ...b,
    free: (buf: Float32Array) => {
      freed.add(buf);
      buf.fill(NaN);
      b.free?.(buf);
    },
  };
}

forEachBackend('buffer lifetime', (b) => {
  const freed = new Set<Float32Array>();
  let prev: Backend | undefined;
  before(() => {
    prev = hasBackend() ? getBackend() : undefined;
    setBackend(withSpyFree(b, freed));
  });
  after(() => {
    if (prev) setBackend(prev);
  });

  /** x (4, 3) and w (3, 5), fresh leaves with the same values each call. */
  function leaves(): [Tensor, Tensor] {
    const rng = new Rng(7);
    return [randn([4, 3], rng).requireGrad(), randn([3, 5], rng).requireGrad()];
  }

  /** a = x w, used by a view and by exp (a buffer two graph tensors share); h = tanh(a view), the result a view of h. */
  function body(x: Tensor, w: Tensor, seen: Tensor[]): Tensor {
    const a = matmul(x, w); // (4, 5)
    const r = reshape(a, [20]);
    const e = exp(a);
    const h = tanh(mul(r, reshape(e, [20]))); // (20)
    seen.push(a, e, h);
    return reshape(h, [4, 5]);
  }

  test('transientGraph: same gradients, activations given back once used, never leaves or the result', () => {
    const [x0, w0] = leaves();
    const plain = body(x0, w0, []);
    sum(mul(plain, plain)).backward();

    freed.clear();
    const [x, w] = leaves();
    const seen: Tensor[] = [];
    const out = transientGraph(() => body(x, w, seen));
    const kept = Float32Array.from(out.data);
    sum(mul(out, out)).backward();
    assert.deepEqual(x.grad!.data, x0.grad!.data);
    assert.deepEqual(w.grad!.data, w0.grad!.data);
    const [a, e, h] = seen;
    assert.ok(freed.has(a.data) && freed.has(e.data), 'the activations a and exp(a) were given back');
    assert.ok(!freed.has(h.data), 'the result shares h\'s buffer: kept');
    assert.deepEqual(out.data, kept);
    for (const t of [x, w]) assert.ok(!freed.has(t.data) && !freed.has(t.grad!.data), 'leaves and their .grad are kept');
  });

  test('without transientGraph no activation is given back', () => {
    freed.clear();
    const [x, w] = leaves();
    const seen: Tensor[] = [];
    const out = body(x, w, seen);
    sum(mul(out, out)).backward();
    for (const t of seen) assert.ok(!freed.has(t.data));
  });

  test('zeroGrad() gives back the .grad backward made, and sets aside one the caller put there', () => {
    freed.clear();
    const [x, w] = leaves();
    sum(matmul(x, w)).backward();
    const made = x.grad!.data;
    x.zeroGrad();
    assert.equal(x.grad, null);
    assert.ok(freed.has(made), 'backward\'s buffer went back');
    const mine = new Tensor(new Float32Array(15), [3, 5]);
    w.grad = mine;
    w.zeroGrad();
    assert.ok(!freed.has(mine.data), 'a caller\'s .grad is not given back');
    sum(matmul(x, w)).backward();
    assert.equal(w.grad!.data, mine.data, 'the next backward writes into the buffer set aside');
  });

  test('a table used by a product and an embedding (tied) gets the sum of both gradients, rounded as two leaves\' sum', () => {
    const rng = new Rng(11);
    const V = 6;
    const D = 4;
    const table = randn([V, D], rng);
    const h = randn([5, D], rng);
    const ids = Int32Array.from([2, 5, 2, 0, 2, 5, 1]); // repeated ids sum their rows first
    // Either order of the two contributions (backward meets the embedding last when its loss comes first).
    for (const embeddingFirst of [true, false]) {
      const graph = (head: Tensor, emb: Tensor): Tensor => {
        const logits = matmul(h, transpose(head)); // (5, V)
        const rows = embedding(emb, ids); // (7, D)
        const [l1, l2] = [sum(mul(tanh(logits), logits)), sum(mul(rows, rows))];
        return embeddingFirst ? add(l2, l1) : add(l1, l2);
      };
      const tied = new Tensor(Float32Array.from(table.data), table.shape).requireGrad();
      graph(tied, tied).backward();
      const head = new Tensor(Float32Array.from(table.data), table.shape).requireGrad();
      const emb = new Tensor(Float32Array.from(table.data), table.shape).requireGrad();
      graph(head, emb).backward();
      const expected = new Float32Array(V * D);
      getBackend().binary('add', head.grad!.data, [V, D], emb.grad!.data, [V, D], expected, [V, D]);
      assert.deepEqual(tied.grad!.data, expected);
    }
  });
});
