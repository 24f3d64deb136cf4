// The privacy audit of a trained model (`ajar audit --model`): loss-threshold membership inference over member and
// non-member examples, exposure of planted canaries among reference secrets of their format (Carlini et al. 2019,
// "The Secret Sharer"), and verbatim extraction of training text by greedy decoding (Carlini et al. 2021).
import {
  ExampleBatcher, IGNORE_INDEX, referenceCandidates, secretSteps, textExample, type CanaryFormat, type ExampleData, type SecretStep,
  type TokenizerLike,
} from '../data/index.js';
import type { AnyModel, CausalLM } from '../models/types.js';
import { AjarError, crossEntropy, noGrad, reshape, Rng } from '../tensor/index.js';
import { canaryExposure, fitSkewNormal, fittedExposure, membershipInference, type SkewNormal } from './privacy.js';

export interface AuditOptions {
  /** Tokens of each example scored (longer ones are cut); default the model's context. */
  blockSize?: number;
  /** Examples per forward pass; default 16. */
  batchSize?: number;
  /** Reference secrets per canary format: all of them when the format has at most this many others, else a sample; default 2000. */
  references?: number;
  /** Seeds the sample of reference secrets; default 0. */
  seed?: number;
  /** Verbatim extraction: the prefix given (tokens, bos included) and the continuation to reproduce; default 16 and 16. */
  extractPrefix?: number;
  extractTokens?: number;
  /** At most this many member examples are tried for extraction (in file order); default 1000. */
  extractExamples?: number;
  /** Progress lines. */
  status?(line: string): void;
}

export interface CanarySet {
  format: CanaryFormat;
  texts: string[];
  repeats: number;
}

export interface MembershipReport {
  members: number;
  non_members: number;
  /** ROC AUC of the score -loss, members positive. */
  auc: number;
  /** max |TPR - FPR| over thresholds. */
  advantage: number;
  /** Mean per-example loss of each group (nats per token for a language model). */
  member_loss: number;
  non_member_loss: number;
}

export interface CanaryReport {
  count: number;
  repeats: number;
  format: string;
  space_size: number;
  /**
   * 'enumerate': ranked among every other secret; 'search': the secrets at least as likely counted by a pruned search
   * of the format's tree; 'sample': ranked in a uniform sample (or, where the sample is too small to rank it and the
   * search cannot run, a skew-normal fitted to it); 'search+sample': some canaries each way.
   */
  method: 'enumerate' | 'search' | 'sample' | 'search+sample';
  references: number;
  exposure_mean: number;
  exposure_max: number;
  /** log2 |R|: the exposure of a canary ranked first. */
  exposure_max_possible: number;
  /** Canaries whose greedy continuation of the format's text before the secret reproduces the secret (and the rest). */
  extracted: number;
  /** Each canary's exposure, in the canary file's order (the secrets themselves are never reported). */
  exposures: number[];
}

export interface ExtractionReport {
  prefix_tokens: number;
  continuation_tokens: number;
  /** Member examples long enough for prefix + continuation (at most extractExamples of them). */
  examples: number;
  extracted: number;
  /** extracted / examples. */
  rate: number;
}

export interface PrivacyAuditReport {
  task: 'causal-lm' | 'sequence-classification';
  membership: MembershipReport;
  canaries: CanaryReport | null;
  extraction: ExtractionReport | null;
}

/**
 * Each example's loss: `mean` per predicted token (a classifier's cross-entropy, a regressor's squared error) and
 * `sum` over its tokens (a sequence's negative log-likelihood in nats, what exposure ranks). File order.
 */
export function perExampleLosses(model: AnyModel, data: ExampleData, opts: { blockSize?: number; batchSize?: number; padId?: number } = {}): { mean: number[]; sum: number[] } {
  const block = opts.blockSize ?? model.contextLength;
  if (block > model.contextLength) throw new AjarError('bad_flag', `block size ${block} exceeds the model's context length ${model.contextLength}`);
  const batcher = new ExampleBatcher(data, opts.batchSize ?? 16, block, opts.padId ?? 0, 0);
  const mean: number[] = [];
  const sum: number[] = [];
  const wasTraining = model.module.training;
  model.module.eval();
  try {
    noGrad(() => {
      for (const b of batcher.batches()) {
        if (model.task === 'causal-lm') {
          const targets = b.targets;
          if (targets === undefined) throw new Error('unreachable: language-model examples carry their targets');
          const logits = model.forward(b.ids, b.batch); // (B, T, V)
          const losses = crossEntropy(reshape(logits, [b.batch * b.block, logits.shape[2]]), targets, { reduction: 'none' }).data; // (B*T)
          for (let r = 0; r < b.batch; r++) {
            let total = 0;
            let n = 0;
            for (let t = r * b.block; t < (r + 1) * b.block; t++) {
              if (targets[t] === IGNORE_INDEX) continue;
              total += losses[t];
              n++;
            }
            if (n === 0) {
              const ex = data.examples[b.indices[r]];
              throw new AjarError('bad_data', `${data.source}${ex.line !== undefined ? `:${ex.line}` : ''}: the example has no token to predict (one token, or none after the prompt); remove it`);
            }
            mean.push(total / n);
            sum.push(total);
          }
        } else {
          const scores = model.classify(b.ids, b.batch, b.lengths.map((l) => l - 1)); // (B, K)
          if (model.regression) {
            for (let r = 0; r < b.batch; r++) mean.push((scores.data[r] - b.values![r]) ** 2);
          } else {
            mean.push(...crossEntropy(scores, b.labels!, { reduction: 'none' }).data);
          }
          sum.push(...mean.slice(sum.length));
        }
      }
    });
  } finally {
    model.module.train(wasTraining);
  }
  return { mean, sum };
}

/**
 * Greedy decoding from each prefix: whether the model's argmax continuation equals the target tokens exactly.
 * Prefixes of one length with targets of one length share a batch.
 */
export function greedyReproduces(model: CausalLM, items: ReadonlyArray<{ prefix: ArrayLike<number>; target: ArrayLike<number> }>, batchSize = 16): boolean[] {
  const out = new Array<boolean>(items.length).fill(false);
  const groups = new Map<string, number[]>();
  items.forEach((it, i) => {
    const key = `${it.prefix.length}:${it.target.length}`;
    groups.set(key, [...(groups.get(key) ?? []), i]);
  });
  const wasTraining = model.module.training;
  model.module.eval();
  try {
    noGrad(() => {
      for (const members of groups.values()) {
        for (let g = 0; g < members.length; g += batchSize) {
          const rows = members.slice(g, g + batchSize);
          const B = rows.length;
          const P = items[rows[0]].prefix.length;
          const K = items[rows[0]].target.length;
          if (P + K - 1 > model.contextLength) {
            throw new AjarError('bad_flag', `a prefix of ${P} and a continuation of ${K} tokens do not fit the model's context of ${model.contextLength}`);
          }
          const seqs = rows.map((i) => Array.from(items[i].prefix));
          const ok = new Array<boolean>(B).fill(true);
          for (let k = 0; k < K; k++) {
            const T = P + k;
            const ids = new Int32Array(B * T); // (B, T)
            seqs.forEach((s, r) => ids.set(s, r * T));
            const logits = model.forward(ids, B); // (B, T, V)
            const V = logits.shape[2];
            for (let r = 0; r < B; r++) {
              const off = (r * T + T - 1) * V;
              let best = 0;
              for (let v = 1; v < V; v++) if (logits.data[off + v] > logits.data[off + best]) best = v;
              seqs[r].push(best);
              if (best !== items[rows[r]].target[k]) ok[r] = false;
            }
            if (!ok.some(Boolean)) break;
          }
          rows.forEach((i, r) => (out[i] = ok[r]));
        }
      }
    });
  } finally {
    model.module.train(wasTraining);
  }
  return out;
}

function meanOf(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

function membership(model: AnyModel, members: ExampleData, nonMembers: ExampleData, o: { blockSize?: number; batchSize?: number; padId: number }): MembershipReport {
  const m = perExampleLosses(model, members, o).mean;
  const n = perExampleLosses(model, nonMembers, o).mean;
  const { auc, advantage } = membershipInference(m, n);
  return { members: m.length, non_members: n.length, auc, advantage, member_loss: meanOf(m), non_member_loss: meanOf(n) };
}

/** Verbatim extraction over the members: prefix of P tokens, the next K to reproduce. */
function extraction(model: CausalLM, members: ExampleData, P: number, K: number, limit: number, batchSize: number): ExtractionReport {
  const items = members.examples.filter((ex) => ex.ids.length >= P + K).slice(0, limit)
    .map((ex) => ({ prefix: ex.ids.subarray(0, P), target: ex.ids.subarray(P, P + K) }));
  const extracted = items.length === 0 ? 0 : greedyReproduces(model, items, batchSize).filter(Boolean).length;
  return { prefix_tokens: P, continuation_tokens: K, examples: items.length, extracted, rate: items.length === 0 ? 0 : extracted / items.length };
}

/**
 * How many secrets of the format have a negative log-likelihood of at most `threshold`: a breadth-first walk down the
 * format's token tree (steps) that drops a branch as soon as its running negative log-likelihood passes the threshold
 * (log-probabilities only add), so it visits only secrets about as likely as the canary, as the secret sharer's
 * shortest-path search does. null when a level would hold more than `cap` branches (the canary ranks too low for
 * this to pay; the sample then estimates it).
 */
export function countSecretsAtMost(model: CausalLM, steps: readonly SecretStep[], threshold: number, cap: number, batchSize = 64): number | null {
  const first = steps[0];
  let frontier: Array<{ ids: number[]; nll: number }> = ('forced' in first ? [first.forced] : first.choices).map((id) => ({ ids: [id], nll: 0 }));
  const wasTraining = model.module.training;
  model.module.eval();
  try {
    for (const step of steps.slice(1)) {
      const next: Array<{ ids: number[]; nll: number }> = [];
      for (let g = 0; g < frontier.length; g += batchSize) {
        const rows = frontier.slice(g, g + batchSize);
        const T = rows[0].ids.length;
        const ids = new Int32Array(rows.length * T); // (B, T)
        rows.forEach((r, i) => ids.set(r.ids, i * T));
        const logits = noGrad(() => model.forward(ids, rows.length)); // (B, T, V)
        const V = logits.shape[2];
        rows.forEach((r, i) => {
          const off = (i * T + T - 1) * V;
          let max = -Infinity;
          for (let v = 0; v < V; v++) max = Math.max(max, logits.data[off + v]);
          let z = 0;
          for (let v = 0; v < V; v++) z += Math.exp(logits.data[off + v] - max);
          const logZ = max + Math.log(z);
          for (const id of 'forced' in step ? [step.forced] : step.choices) {
            const nll = r.nll - (logits.data[off + id] - logZ);
            if (nll <= threshold) next.push({ ids: [...r.ids, id], nll });
          }
        });
        if (next.length > cap) return null;
      }
      frontier = next;
    }
  } finally {
    model.module.train(wasTraining);
  }
  return frontier.length;
}

/** Sampled secrets at or below a canary's score from which the sample's own rank estimate is used. */
const MIN_BELOW = 8;

function canaryAudit(model: CausalLM, tok: TokenizerLike, set: CanarySet, o: Required<Pick<AuditOptions, 'references' | 'seed' | 'batchSize'>> & { blockSize?: number; padId: number; status?(line: string): void }): CanaryReport {
  const { format, texts } = set;
  const asData = (list: readonly string[], source: string): ExampleData => ({
    kind: 'examples', task: 'lm', source, examples: list.map((t) => textExample(tok, t, source)),
  });
  // NOTE: the score is the whole sequence's negative log-likelihood (the paper's log-perplexity); every candidate
  // shares the format's literal text, so the ranking is decided by the secret.
  const canaryScores = perExampleLosses(model, asData(texts, 'canary'), o).sum;
  const refs = referenceCandidates(format, texts, o.references, new Rng(o.seed));
  o.status?.(`scoring ${refs.texts.length} reference secrets (${refs.method === 'enumerate' ? 'all of them' : `a sample of ${format.spaceSize}`})`);
  const refScores = perExampleLosses(model, asData(refs.texts, 'reference secrets'), o).sum;
  // NOTE: each canary is ranked among the secrets that are not canaries (the others would crowd it out), itself
  // included: |R| - n + 1 candidates.
  const candidates = format.spaceSize - texts.length + 1;
  let method: CanaryReport['method'] = 'enumerate';
  let exposures: number[];
  if (refs.method === 'enumerate') {
    exposures = canaryScores.map((s) => canaryExposure(s, refScores).exposure);
  } else {
    // A large space. Where at least MIN_BELOW sampled secrets score as well as the canary, the sample's rank, scaled to
    // |R|, is accurate. Above that (the high exposures a release gate is about) a sample cannot rank the canary: count
    // the secrets at least as likely by a pruned search when the tokenizer allows it, else (as the secret sharer paper
    // does) extrapolate with a skew-normal fitted to the sample.
    const steps = secretSteps(format, tok, texts);
    const cap = 5 * o.references;
    let fit: SkewNormal | null = null;
    let searched = 0;
    exposures = canaryScores.map((s) => {
      const below = refScores.filter((r) => r <= s).length;
      if (below >= MIN_BELOW) return canaryExposure(s, refScores, format.spaceSize).exposure;
      // NOTE: a little slack, so float rounding between the batched score and the search's cannot drop the canary itself.
      const slack = 1e-4 * Math.max(1, Math.abs(s));
      const count = steps ? countSecretsAtMost(model, steps, s + slack, cap) : null;
      if (count === null) {
        fit ??= fitSkewNormal(refScores);
        return fittedExposure(s, fit, format.spaceSize);
      }
      searched++;
      const otherCanaries = canaryScores.filter((c) => c <= s + slack).length - 1;
      return Math.log2(candidates) - Math.log2(Math.max(1, count - otherCanaries));
    });
    method = searched === texts.length ? 'search' : searched === 0 ? 'sample' : 'search+sample';
  }
  // Extraction of each canary: greedy from the tokens of the format's text before the secret (when the canary's own
  // tokens start with them: a BPE may merge across the boundary) to the end of the canary.
  const eos = tok.eosTokenId !== null ? 1 : 0;
  const prefixIds = textExample(tok, format.prefix, 'canary').ids;
  const prefixLen = prefixIds.length - eos;
  const items: Array<{ prefix: Int32Array; target: Int32Array }> = [];
  for (const t of texts) {
    const full = textExample(tok, t, 'canary').ids;
    const prefix = full.subarray(0, prefixLen);
    if (prefixLen > 0 && full.length - eos > prefixLen && prefix.every((v, j) => v === prefixIds[j])) {
      items.push({ prefix, target: full.subarray(prefixLen, full.length - eos) });
    }
  }
  const extracted = items.length === 0 ? 0 : greedyReproduces(model, items, o.batchSize).filter(Boolean).length;
  return {
    count: texts.length, repeats: set.repeats, format: format.text, space_size: format.spaceSize, method,
    references: refs.texts.length, exposure_mean: meanOf(exposures), exposure_max: Math.max(...exposures),
    exposure_max_possible: Math.log2(format.spaceSize), extracted, exposures,
  };
}

/** Run the audit: membership always; canaries when given (language models); extraction for language models. */
export function auditPrivacy(model: AnyModel, tok: TokenizerLike, members: ExampleData, nonMembers: ExampleData, canaries: CanarySet | null, opts: AuditOptions = {}): PrivacyAuditReport {
  const padId = tok.eosTokenId ?? 0;
  const common = { blockSize: opts.blockSize, batchSize: opts.batchSize ?? 16, padId };
  opts.status?.(`membership inference: ${members.examples.length} members, ${nonMembers.examples.length} non-members`);
  const member = membership(model, members, nonMembers, common);
  if (model.task !== 'causal-lm') {
    if (canaries) throw new AjarError('bad_flag', '--canaries: canary exposure needs a language model; a classifier is audited by membership inference alone');
    return { task: model.task, membership: member, canaries: null, extraction: null };
  }
  const canaryReport = canaries ? canaryAudit(model, tok, canaries, { ...common, references: opts.references ?? 2000, seed: opts.seed ?? 0, status: opts.status }) : null;
  const P = opts.extractPrefix ?? 16;
  const K = opts.extractTokens ?? 16;
  opts.status?.(`verbatim extraction: ${P}-token prefixes, ${K}-token continuations`);
  const extract = extraction(model, members, P, K, opts.extractExamples ?? 1000, common.batchSize);
  return { task: model.task, membership: member, canaries: canaryReport, extraction: extract };
}
