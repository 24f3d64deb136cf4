// ajar's Rng against PyTorch's CPU generator (test/golden/random/make_random.py): the same seed gives the
// same draws as torch.manual_seed (dropout masks included), and a scratch GPT-2 is initialised exactly as
// nanoGPT's GPT(config).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GPT2LMHeadModel } from '../../src/models/gpt2.js';
import { dropout, ones, Rng } from '../../src/tensor/index.js';
import { discardNormal, normalFill, uniformFill } from '../../src/tensor/random.js';
import { useReferenceBackend } from '../helpers/backends.js';
import { readGoldenJson } from '../helpers/golden.js';

interface Call { kind: string; args: number[]; values: number[] }
interface Expected {
  streams: { seed: number; calls: Call[] }[];
  nanogpt: {
    seed: number; config: { vocab_size: number; block_size: number; n_layer: number; n_head: number; n_embd: number };
    data_len: number; batch_size: number; params: Record<string, { shape: number[]; values: number[] }>;
    first_batch_offsets: number[];
  };
}

const expected = readGoldenJson<Expected>('random/random_expected.json');

/** Float32 values equal to the bit (torch 1.13's AVX2 build wrote the fixture). */
function assertSameFloats(got: ArrayLike<number>, want: number[], what: string): void {
  assert.equal(got.length, want.length, what);
  let differing = 0;
  let first = -1;
  for (let i = 0; i < want.length; i++) {
    if (!Object.is(got[i], want[i])) {
      differing++;
      if (first < 0) first = i;
    }
  }
  assert.equal(differing, 0, `${what}: ${differing} of ${want.length} values differ, first at ${first}: ${got[first]} vs torch ${want[first]}`);
}

describe('Rng reproduces torch.manual_seed streams', () => {
  useReferenceBackend();
  for (const s of expected.streams) {
    it(`seed ${s.seed}: randint, normal_ (float and double paths), uniform_, rand in sequence`, () => {
      const rng = new Rng(s.seed);
      for (const c of s.calls) {
        const what = `${c.kind}(${c.args.join(', ')})`;
        if (c.kind === 'randint') {
          const [n, count] = c.args;
          assert.deepEqual(Array.from({ length: count }, () => rng.int(n)), c.values, what);
        } else if (c.kind === 'normal') {
          const [n, std, mean] = c.args;
          const out = new Float32Array(n);
          normalFill(out, rng, std, mean);
          assertSameFloats(out, c.values, `${what} (${n < 16 ? 'double path' : 'normal_fill'})`);
        } else if (c.kind === 'uniform') {
          const [n, from, to] = c.args;
          const out = new Float32Array(n);
          uniformFill(out, rng, from, to);
          assert.deepEqual(Array.from(out), c.values, what);
        } else if (c.kind === 'normal64') {
          // The same uniforms exactly; V8's Math.sin/cos may differ from glibc's in the last bit.
          const got = Array.from({ length: c.args[0] }, () => rng.normal());
          got.forEach((v, i) => assert.ok(Math.abs(v - c.values[i]) <= 4 * Number.EPSILON * Math.abs(c.values[i]), `${what}[${i}]: ${v} vs ${c.values[i]}`));
        } else if (c.kind === 'rand') {
          const out = new Float32Array(c.args[0]);
          uniformFill(out, rng);
          assert.deepEqual(Array.from(out), c.values, what);
        } else if (c.kind === 'dropout') {
          const [n, p] = c.args;
          assert.deepEqual(Array.from(dropout(ones([n]), p, rng).data), c.values, what);
        } else {
          assert.fail(`unknown call kind ${c.kind}`);
        }
      }
    });
  }

  it('getState / setState round-trips mid-stream, including the cached normal', () => {
    const r = new Rng(5);
    r.normal(); // leaves the sine half cached
    for (let i = 0; i < 700; i++) r.nextU32(); // crosses a twist
    const saved = JSON.parse(JSON.stringify(r.getState())) as number[];
    const ahead = [r.normal(), r.normal(), r.next(), r.int(1000)];
    const other = new Rng(1);
    other.setState(saved);
    assert.deepEqual([other.normal(), other.normal(), other.next(), other.int(1000)], ahead);
    assert.throws(() => other.setState([1, 2, 3, 4]), /627 numbers/);
  });

  it('discardNormal(n) leaves the stream where normalFill of n values does', () => {
    for (const n of [1, 5, 15, 16, 17, 100, 1024]) {
      const a = new Rng(11);
      const b = new Rng(11);
      a.normal(); // a cached sine half too
      b.normal();
      discardNormal(a, n);
      normalFill(new Float32Array(n), b);
      assert.deepEqual(a.getState(), b.getState(), `n = ${n}`);
    }
  });

  it('discard(n) skips exactly n 32-bit draws', () => {
    const a = new Rng(9);
    const b = new Rng(9);
    a.discard(1500);
    for (let i = 0; i < 1500; i++) b.nextU32();
    assert.equal(a.nextU32(), b.nextU32());
  });
});

describe("scratch GPT-2 initialisation draws what nanoGPT's model.py draws", () => {
  useReferenceBackend();
  const ng = expected.nanogpt;
  const C = ng.config.n_embd;
  const model = new GPT2LMHeadModel({
    vocab_size: ng.config.vocab_size, n_positions: ng.config.block_size, n_embd: C, n_layer: ng.config.n_layer,
    n_head: ng.config.n_head, tie_word_embeddings: true,
  }, 'test config');
  const rng = new Rng(ng.seed);
  model.initWeights(rng, { bias: false });
  const own = new Map(model.module.namedParameters());

  for (const [name, want] of Object.entries(ng.params)) {
    it(`${name} ${JSON.stringify(want.shape)}`, () => {
      const t = own.get(name);
      assert.ok(t, `ajar has no ${name}`);
      const isLinear = /\.(c_attn|c_proj|c_fc)\.weight$/.test(name);
      let got: Float32Array = t.data;
      if (isLinear) {
        // nanoGPT's nn.Linear is (out, in); ajar's Conv1D stores (in, out).
        const [nOut, nIn] = want.shape;
        assert.deepEqual(t.shape, [nIn, nOut]);
        got = new Float32Array(nOut * nIn);
        for (let o = 0; o < nOut; o++) for (let i = 0; i < nIn; i++) got[o * nIn + i] = t.data[i * nOut + o];
      } else {
        assert.deepEqual(t.shape, want.shape);
      }
      assertSameFloats(got, want.values, name);
    });
  }

  it('then the first get_batch offsets come from the same stream', () => {
    const offsets = Array.from({ length: ng.batch_size }, () => rng.int(ng.data_len - ng.config.block_size));
    assert.deepEqual(offsets, ng.first_batch_offsets);
  });
});
