// The sampler against the definition it implements (Hugging Face's TemperatureLogitsWarper, TopKLogitsWarper and
// TopPLogitsWarper, then a draw): written out here the plain way, a full sort of the row by logit, descending (ties
// by lower id), top-k's first k, top-p's shortest prefix reaching p, and the uniform draw walking that order. The
// sampler ranks only what it must; for the same seed it must pick the same token, and its draws must follow the
// softmax of the kept tokens.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sampleToken, type SamplingOptions } from '../../src/generate/sampling.js';
import { Rng } from '../../src/tensor/index.js';

/** The definition: kept ids in rank order and their unnormalised probabilities. */
function kept(row: Float32Array, opts: SamplingOptions): { ids: number[]; probs: number[] } {
  const t = opts.temperature ?? 1;
  let ids = Array.from({ length: row.length }, (_, i) => i).sort((a, b) => row[b] - row[a] || a - b);
  if (opts.topK) ids = ids.slice(0, opts.topK);
  const max = row[ids[0]];
  let probs = ids.map((i) => Math.exp((row[i] - max) / t));
  if ((opts.topP ?? 1) < 1) {
    const total = probs.reduce((s, p) => s + p, 0);
    let cum = 0;
    let keep = probs.length;
    for (let i = 0; i < probs.length; i++) {
      cum += probs[i] / total;
      if (cum >= opts.topP!) {
        keep = i + 1;
        break;
      }
    }
    ids = ids.slice(0, keep);
    probs = probs.slice(0, keep);
  }
  return { ids, probs };
}

function reference(row: Float32Array, u01: number, opts: SamplingOptions): number {
  const { ids, probs } = kept(row, opts);
  let u = u01 * probs.reduce((s, p) => s + p, 0);
  for (let i = 0; i < ids.length; i++) {
    u -= probs[i];
    if (u < 0) return ids[i];
  }
  return ids[ids.length - 1];
}

/** A GPT-2-sized row: a few strong candidates over a broad spread, like a language model's logits. */
function lmRow(rng: Rng, v = 50257): Float32Array {
  const row = new Float32Array(v);
  for (let i = 0; i < v; i++) row[i] = rng.normal() * 2;
  for (let j = 0; j < 20; j++) row[Math.floor(rng.next() * v)] += 8 + rng.next() * 4;
  return row;
}

const SETTINGS: SamplingOptions[] = [
  { temperature: 1 }, { temperature: 0.7 }, { temperature: 1.5, topP: 0.9 }, { temperature: 1, topP: 0.5 },
  { temperature: 0.8, topK: 40 }, { temperature: 1, topK: 50, topP: 0.95 },
];

describe('sampling: the same tokens as the definition, without ranking the whole row', () => {
  it('picks the token a walk of the fully sorted row picks, for the same seed', () => {
    const gen = new Rng(11);
    for (const opts of SETTINGS) {
      for (let r = 0; r < 25; r++) {
        const row = lmRow(gen);
        const seed = 1000 + r;
        const u01 = new Rng(seed).next();
        assert.equal(sampleToken(row.slice(), new Rng(seed), opts, []), reference(row, u01, opts), `${JSON.stringify(opts)} row ${r}`);
      }
    }
  });

  it('a flat row, heavy ties and a small vocabulary agree too', () => {
    const gen = new Rng(3);
    for (const opts of SETTINGS) {
      for (let r = 0; r < 40; r++) {
        const row = new Float32Array(65).map(() => Math.round(gen.normal() * 2)); // many equal logits
        if (r === 0) row.fill(0.5);
        const u01 = new Rng(r).next();
        assert.equal(sampleToken(row.slice(), new Rng(r), opts, []), reference(row, u01, opts), `${JSON.stringify(opts)} row ${r}`);
      }
    }
  });

  it('draws follow the softmax of the kept tokens (chi-square over 20,000 draws)', () => {
    const row = new Float32Array([2, 1, 0.5, 0.5, 0, -1, -3, -Infinity, 1.5, -0.5]);
    for (const opts of [{ temperature: 1 }, { temperature: 0.5, topP: 0.8 }, { temperature: 2, topK: 4 }] as SamplingOptions[]) {
      const { ids, probs } = kept(row, opts);
      const total = probs.reduce((s, p) => s + p, 0);
      const counts = new Map<number, number>();
      const rng = new Rng(5);
      const n = 20_000;
      for (let i = 0; i < n; i++) {
        const t = sampleToken(row.slice(), rng, opts, []);
        counts.set(t, (counts.get(t) ?? 0) + 1);
      }
      for (const t of counts.keys()) assert.ok(ids.includes(t), `${JSON.stringify(opts)}: drew ${t}, which is not kept`);
      let chi2 = 0;
      ids.forEach((id, i) => {
        const expected = (n * probs[i]) / total;
        if (expected === 0) {
          assert.equal(counts.get(id) ?? 0, 0, `${JSON.stringify(opts)}: drew ${id}, of probability 0`);
          return;
        }
        chi2 += ((counts.get(id) ?? 0) - expected) ** 2 / expected;
      });
      // NOTE: at most 9 degrees of freedom; 27.9 is chi-square's 0.999 quantile there.
      assert.ok(chi2 < 27.9, `${JSON.stringify(opts)}: chi-square ${chi2.toFixed(1)}`);
    }
  });

  it('never draws a token whose logit is -Infinity; top-k 1 and temperature 0 are the argmax', () => {
    const row = new Float32Array([-Infinity, 3, -Infinity, 2.5]);
    const rng = new Rng(9);
    for (let i = 0; i < 500; i++) assert.ok([1, 3].includes(sampleToken(row.slice(), rng, { temperature: 1 }, [])));
    const lm = lmRow(new Rng(4));
    const best = lm.indexOf(Math.max(...lm));
    assert.equal(sampleToken(lm.slice(), new Rng(1), { temperature: 1, topK: 1 }, []), best);
    assert.equal(sampleToken(lm.slice(), new Rng(1), { temperature: 0 }, []), best);
  });
});
