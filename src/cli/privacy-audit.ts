// ajar audit --model DIR --members FILE --non-members FILE [--canaries FILE]: the privacy audit of a trained model
// (membership inference, canary exposure, verbatim extraction); --record writes it where `ajar release open` checks it.
import { basename } from 'node:path';
import { loadRecordExamples, readCanaryFile, type ExampleData } from '../data/index.js';
import { auditPrivacy, type CanaryReport, type PrivacyAuditReport } from '../eval/index.js';
import type { Tokenizer } from '../io/tokenizer/index.js';
import { loadPretrained, type AnyModel } from '../models/index.js';
import { auditRecord, DEFAULT_EXPOSURE_MARGIN, writeAuditRecord } from '../release/index.js';
import { bool, num, parseFlags, requireStr, str } from './args.js';
import { printJson, selectBackend } from './common.js';
import { modelDirArg } from './pull.js';

export const PRIVACY_AUDIT_USAGE = `       ajar audit -m, --model DIR --members FILE --non-members FILE [--canaries FILE] [--record] [--json]
                  [--adapter DIR] [--references N] [--seed N] [--extract-prefix P] [--extract-tokens K]
                  [--extract-examples M] [--block-size N] [--backend native|wasm|js]`;

export const PRIVACY_AUDIT_HELP = `With --model, the privacy audit of a trained model (Carlini et al. 2019, "The Secret Sharer"; Yeom et al. 2018):
  membership inference: each example's loss (a language model's mean per token, a classifier's cross-entropy) on
    --members (examples it was trained on) and --non-members (held-out examples of the same kind); the
    loss-threshold attack's ROC AUC (score -loss, members positive; 0.5 is guessing) and advantage max |TPR - FPR|.
    Plain text is one example per non-empty line; JSONL/CSV one per record (text, prompt + completion, or
    text + label for a classifier).
  canary exposure (--canaries OUT.canaries.json from 'ajar train --canaries'; language models): each canary's
    log-likelihood ranked among reference secrets of its format, exposure = log2 |R| - log2 rank; the mean and
    max, and how many canaries greedy decoding reproduces from the text before the secret. When the format has at
    most --references N (default 2000) other secrets all are ranked (method enumerate). Otherwise N are sampled
    uniformly (--seed): a canary with at least 8 of them scoring as well is ranked in the sample, scaled to |R|
    (method sample); one above them, which no sample of N can rank, gets the exact count of secrets at least as
    likely by a pruned search down the format's tree (method search: character vocabularies, where each secret
    character is one token), or else -log2 P(score <= the canary's) under a skew-normal fitted to the sample, the
    secret sharer paper's approximation.
  verbatim extraction (language models): the share of member examples whose greedy continuation of their first
    --extract-prefix P tokens (default 16, bos included) reproduces the next --extract-tokens K (default 16)
    exactly, over at most --extract-examples M (default 1000) long enough, in file order.
--record writes DIR/privacy_audit.json (the adapter's folder with --adapter; and the privacy_audit key of its
README.md front matter) for the model card; 'ajar release open' refuses a model whose recorded exposure is above
--max-exposure (default: log2 |R| - ${DEFAULT_EXPOSURE_MARGIN} bits) unless --accept-risk.
--json prints {"task", "membership": {"members", "non_members", "auc", "advantage", "member_loss",
"non_member_loss"}, "canaries": {"count", "repeats", "format", "space_size", "method", "references",
"exposure_mean", "exposure_max", "exposure_max_possible", "extracted", "exposures"} | null, "extraction":
{"prefix_tokens", "continuation_tokens", "examples", "extracted", "rate"} | null}.`;

/** A file's examples for this model: a classifier's with its labels; for a language model, text + label records count as text. */
function loadExamples(path: string, tok: Tokenizer, model: AnyModel): ExampleData {
  if (model.task === 'sequence-classification') {
    return loadRecordExamples(model.regression ? { path, task: 'regression' } : { path, task: 'classification', labels: model.labels }, tok);
  }
  const data = loadRecordExamples({ path }, tok);
  return data.task === 'lm' || data.task === 'instruct' ? data : loadRecordExamples({ path, task: 'lm' }, tok);
}

const METHOD_WORDS: Record<CanaryReport['method'], (n: number) => string> = {
  'enumerate': (n) => `ranked among all ${n} other secrets`,
  'search': () => 'the secrets at least as likely counted by a pruned search',
  'sample': (n) => `ranked in ${n} sampled secrets`,
  'search+sample': (n) => `a pruned search, or ${n} sampled secrets`,
};

function fmt(v: number, digits = 3): string {
  return v.toFixed(digits);
}

function printReport(r: PrivacyAuditReport): void {
  const m = r.membership;
  console.log(`membership inference (loss threshold): ROC AUC ${fmt(m.auc)}, advantage ${fmt(m.advantage)} ` +
    `(${m.members} members at mean loss ${fmt(m.member_loss, 4)}, ${m.non_members} non-members at ${fmt(m.non_member_loss, 4)})`);
  const c = r.canaries;
  if (c) {
    console.log(`canary exposure: mean ${fmt(c.exposure_mean, 2)} bits, max ${fmt(c.exposure_max, 2)} of ${fmt(c.exposure_max_possible, 2)} possible ` +
      `(${c.count} canaries x ${c.repeats}, ${METHOD_WORDS[c.method](c.references)}); ` +
      `${c.extracted} of ${c.count} extracted verbatim`);
  }
  const e = r.extraction;
  if (e) {
    console.log(`verbatim extraction: ${e.extracted} of ${e.examples} member examples (${fmt(100 * e.rate, 1)}%) continue their first ` +
      `${e.prefix_tokens} tokens with the next ${e.continuation_tokens} exactly`);
  }
}

export async function privacyAuditCommand(argv: string[]): Promise<number> {
  const p = parseFlags('audit', argv, {
    model: { type: 'string' }, members: { type: 'string' }, 'non-members': { type: 'string' }, canaries: { type: 'string' },
    adapter: { type: 'string' }, references: { type: 'string' }, seed: { type: 'string' }, 'extract-prefix': { type: 'string' },
    'extract-tokens': { type: 'string' }, 'extract-examples': { type: 'string' }, 'block-size': { type: 'string' },
    record: { type: 'boolean' }, json: { type: 'boolean' }, backend: { type: 'string' },
  });
  const modelDir = await modelDirArg(requireStr('audit', p, 'model'), 'audit');
  const membersPath = requireStr('audit', p, 'members');
  const nonMembersPath = requireStr('audit', p, 'non-members');
  const canaryPath = str(p, 'canaries');
  const opts = {
    references: num('audit', p, 'references', { int: true, min: 3 }),
    seed: num('audit', p, 'seed', { int: true, min: 0 }),
    extractPrefix: num('audit', p, 'extract-prefix', { int: true, min: 1 }),
    extractTokens: num('audit', p, 'extract-tokens', { int: true, min: 1 }),
    extractExamples: num('audit', p, 'extract-examples', { int: true, min: 1 }),
    blockSize: num('audit', p, 'block-size', { int: true, min: 2 }),
  };
  const json = bool(p, 'json');
  selectBackend(str(p, 'backend'));
  const canaryFile = canaryPath !== undefined ? readCanaryFile(canaryPath) : null;
  const adapter = str(p, 'adapter');
  const { model, tokenizer } = loadPretrained(modelDir, adapter !== undefined ? { adapter } : {});
  const members = loadExamples(membersPath, tokenizer, model);
  const nonMembers = loadExamples(nonMembersPath, tokenizer, model);
  const canaries = canaryFile ? { format: canaryFile.parsed, texts: canaryFile.canaries.map((c) => c.text), repeats: canaryFile.repeats } : null;
  const report = auditPrivacy(model, tokenizer, members, nonMembers, canaries, {
    ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)),
    status: json ? undefined : (line) => console.error(`ajar audit: ${line}`),
  });
  let recorded: string[] = [];
  if (bool(p, 'record')) {
    recorded = writeAuditRecord(adapter ?? modelDir, auditRecord(report, { members: basename(membersPath), nonMembers: basename(nonMembersPath) }, new Date()));
  }
  if (json) {
    printJson({ ...report, ...(recorded.length > 0 ? { recorded } : {}) });
  } else {
    printReport(report);
    if (recorded.length > 0) console.log(`recorded in ${recorded.join(' and ')}`);
  }
  return 0;
}
