// `ajar release open`: a folder Hugging Face transformers loads with from_pretrained (config.json, model.safetensors
// with tied weights once, tokenizer files, generation_config.json), plus a model card, the licence text and
// SHA256SUMS over every file. Written into a staging folder and published with one rename.
import { existsSync, readdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { entryExists, readRegularFile } from '../io/safe-read.js';
import { isRecord, readJsonFile } from '../io/tokenizer/files.js';
import { CharTokenizer, type Tokenizer } from '../io/tokenizer/index.js';
import { loadPretrained, saveModelFolder } from '../models/index.js';
import type { AnyModel } from '../models/types.js';
import { AjarError } from '../tensor/errors.js';
import { exposureRefusal, readAuditRecord } from './audit.js';
import { hubIdOfCachePath, renderCard } from './card.js';
import { contentHash, sha256Hex, sortByBytes, Staging, sumsText, writeNewFile } from './files.js';
import { resolveLicense } from './licenses.js';
import { appendReleaseRecord } from './records.js';
import { hasMetrics, readPrivacy, readResults, readTrainingArgs, RESULTS_FILE } from './results.js';

export const SUMS_FILE = 'SHA256SUMS';

export interface OpenReleaseOptions {
  modelDir: string;
  out: string;
  license: string;
  /** The model's name in the card and model-index; default the model folder's name. */
  name: string;
  /** A Markdown file: its front matter is merged over the generated one, its body goes under the title. */
  cardFile?: string;
  licenseFile?: string;
  licenseName?: string;
  /** Copyright holder (MIT needs one; Apache-2.0's appendix line is filled when given). */
  author?: string;
  /** Hub dataset ids for the card's `datasets`; the first is the one model-index's results name. */
  datasets?: string[];
  /** ISO 639-1 codes of the languages the model handles, for the card's `language`. */
  languages?: string[];
  /** Hub id of the model this one was fine-tuned from. */
  baseModel?: string;
  /** Release without evaluation results (the card says so). */
  noEval?: boolean;
  now?: Date;
  log?: (line: string) => void;
  /** Append the release record to modelDir (default true; a hybrid release writes its own record instead). */
  record?: boolean;
  /** The release gate's limit on the recorded canary exposure, in bits; default the largest possible minus 2. */
  maxExposure?: number;
  /** Release even when the recorded privacy audit is over the limit. */
  acceptRisk?: boolean;
}

export interface OpenReleaseResult {
  out: string;
  files: Array<{ name: string; sha256: string; bytes: number }>;
  license: string;
  model_sha256: string;
  results: number;
  /** Where the record was appended; null when opts.record is false. */
  recordPath: string | null;
}

function readCardFile(path: string): string {
  try {
    if (!statSync(path).isFile()) throw new Error('not a file');
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new AjarError('bad_flag', `--card ${path} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/** The chat template of the source folder, carried over: chat_template.jinja, and tokenizer_config.json's key. */
function carryChatTemplate(modelDir: string, staging: Staging): void {
  const jinja = join(modelDir, 'chat_template.jinja');
  if (entryExists(jinja)) writeNewFile(staging.path('chat_template.jinja'), readRegularFile(jinja, { code: 'bad_tokenizer', kind: 'tokenizer', root: modelDir }));
  const srcConfig = join(modelDir, 'tokenizer_config.json');
  if (!entryExists(srcConfig)) return;
  const src = readJsonFile(srcConfig); // loadPretrained read it already, through the same checks
  if (!isRecord(src) || src.chat_template === undefined || src.chat_template === null) return;
  const outPath = staging.path('tokenizer_config.json');
  const written = JSON.parse(readFileSync(outPath, 'utf8')) as Record<string, unknown>;
  written.chat_template = src.chat_template;
  writeReplace(outPath, `${JSON.stringify(written, null, 2)}\n`);
}

/**
 * transformers' AutoTokenizer cannot load ajar's own char tokenizer class: a character-level release carries the
 * same vocabulary as tokenizer.json (WordLevel, one token per character) read by PreTrainedTokenizerFast.
 * NOTE: clean_up_tokenization_spaces false, or transformers' decode would drop the space before "." and ",".
 */
function writeHubCharTokenizer(staging: Staging, tokenizer: CharTokenizer, contextLength: number): void {
  writeNewFile(staging.path('tokenizer.json'), `${JSON.stringify(tokenizer.toTokenizerJson(), null, 2)}\n`);
  const config = { tokenizer_class: 'PreTrainedTokenizerFast', clean_up_tokenization_spaces: false, model_max_length: contextLength };
  writeReplace(staging.path('tokenizer_config.json'), `${JSON.stringify(config, null, 2)}\n`);
}

/**
 * generation_config.json as transformers reads it: the special token ids the model has, and sampling (ajar generate's
 * default) up to the context length. NOTE: transformers' defaults are greedy and max_length 20, which a
 * character-level model spends on 20 characters and GPT-2's learned positions cannot go past n_positions anyway.
 */
export function generationConfig(model: AnyModel, tokenizer: Tokenizer): Record<string, unknown> {
  const gen: Record<string, unknown> = {};
  if (tokenizer.bosTokenId !== null) gen.bos_token_id = tokenizer.bosTokenId;
  if (tokenizer.eosTokenId !== null) gen.eos_token_id = tokenizer.eosTokenId;
  if (typeof model.config.pad_token_id === 'number') gen.pad_token_id = model.config.pad_token_id;
  gen.do_sample = true;
  gen.max_length = model.contextLength;
  return gen;
}

/** Replace a staged file: a new file, then a rename over the old one. */
function writeReplace(path: string, text: string): void {
  const tmp = `${path}.new`;
  writeNewFile(tmp, text);
  renameSync(tmp, path);
}

export function releaseOpen(opts: OpenReleaseOptions): OpenReleaseResult {
  const log = opts.log ?? (() => undefined);
  const now = opts.now ?? new Date();
  const out = resolve(opts.out);
  // Every refusal comes before any work: licence, card, evaluation results, output folder.
  const license = resolveLicense(opts.license, {
    licenseFile: opts.licenseFile, licenseName: opts.licenseName, author: opts.author, year: now.getUTCFullYear(),
  });
  const userCard = opts.cardFile !== undefined ? readCardFile(opts.cardFile) : undefined;
  for (const code of opts.languages ?? []) {
    if (!/^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/.test(code)) {
      throw new AjarError('bad_flag', `--language ${JSON.stringify(code)} is not a language code: give ISO 639-1 codes such as en or fr`);
    }
  }
  const results = readResults(opts.modelDir).filter(hasMetrics);
  if (results.length === 0 && !opts.noEval) {
    throw new AjarError('no_eval_results', `${opts.modelDir} has no evaluation results (${RESULTS_FILE} from 'ajar train' or `
      + `'ajar eval --record'): evaluate it first with 'ajar eval --model ${opts.modelDir} --data FILE --record', `
      + 'or pass --no-eval to release it without results (the card will say so)');
  }
  const trainingArgs = readTrainingArgs(opts.modelDir);
  const privacy = readPrivacy(opts.modelDir);
  const privacyAudit = readAuditRecord(opts.modelDir);
  const refusal = exposureRefusal(privacyAudit, opts.maxExposure);
  if (refusal !== null) {
    if (!opts.acceptRisk) throw new AjarError('privacy_risk', `${opts.modelDir}: ${refusal}; train with --dp, or pass --accept-risk to release it anyway`);
    log(`warning: ${refusal}; released anyway (--accept-risk)`);
  }
  const staging = new Staging(out, 'release');
  try {
    log(`loading ${opts.modelDir}`);
    const { model, tokenizer } = loadPretrained(opts.modelDir);
    const modelSha = contentHash(opts.modelDir);
    log('writing config.json, model.safetensors, tokenizer and generation config');
    saveModelFolder(staging.dir, model, tokenizer);
    if (tokenizer instanceof CharTokenizer) writeHubCharTokenizer(staging, tokenizer, model.contextLength);
    if (model.task === 'causal-lm') {
      writeReplace(staging.path('generation_config.json'), `${JSON.stringify(generationConfig(model, tokenizer), null, 2)}\n`);
    }
    // NOTE: {} only for a tokenizer with no special token at all (a character vocabulary); the others write theirs.
    if (!existsSync(staging.path('special_tokens_map.json'))) writeNewFile(staging.path('special_tokens_map.json'), '{}\n');
    carryChatTemplate(opts.modelDir, staging);
    writeNewFile(staging.path('LICENSE'), license.text);
    log('writing the model card');
    const card = renderCard({
      name: opts.name,
      model: {
        architecture: model.architecture, task: model.task, config: model.config, parameters: model.module.numParameters(),
        contextLength: model.contextLength, vocabSize: model.vocabSize, tokenizerKind: tokenizer.kind,
      },
      license, results, trainingArgs, privacy, privacyAudit, datasets: opts.datasets ?? [], languages: opts.languages ?? [],
      baseModel: opts.baseModel ?? hubIdOfCachePath(trainingArgs?.init_from), userCard, date: now,
    });
    writeNewFile(staging.path('README.md'), card);
    const files = sortByBytes(readdirSync(staging.dir)).map((name) => {
      const bytes = readFileSync(staging.path(name));
      return { name, sha256: sha256Hex(bytes), bytes: bytes.length };
    });
    writeNewFile(staging.path(SUMS_FILE), sumsText(files));
    staging.publish('release');
    const recordPath = opts.record === false ? null : appendReleaseRecord(opts.modelDir, {
      kind: 'open', out, date: now.toISOString(), model_sha256: modelSha, name: opts.name, license: license.id,
    });
    return { out, files, license: license.id, model_sha256: modelSha, results: results.length, recordPath };
  } finally {
    staging.discard();
  }
}
