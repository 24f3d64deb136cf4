// The training loop (nanoGPT's train.py, generalised to classification, regression and instruction data):
// evaluate every eval_interval steps, AdamW/SGD with warmup + cosine, clipping, accumulation, dropout,
// checkpoints for an exact --resume, keep-best, metrics.jsonl, progress, and a clean stop on Ctrl-C.
import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  ExampleBatcher, StreamBatcher, canaryCharacters, canaryFilePath, checkBlockSize, drawCanaries, loadTrainAndValidation, parseCanaryFormat,
  plantCanaries, secretOf, splitValidation, writeCanaryFile, type DataSpec, type Dataset, type ExampleBatch, type ExampleData, type LMBatch, type StreamData,
} from '../data/index.js';
import { classificationReport, regressionReport, type ClassificationReport, type RegressionReport } from '../eval/index.js';
import { CharTokenizer, loadTokenizer, type Tokenizer } from '../io/tokenizer/index.js';
import { writeFileAtomic } from '../io/atomic.js';
import { readRegularJson } from '../io/safe-read.js';
import { buildModel, loadPretrained, type AnyModel } from '../models/index.js';
import {
  AjarError, crossEntropy, mseLoss, noGrad, reshape, Rng, tensor, transientGraph, type Tensor,
} from '../tensor/index.js';
import { loadCheckpoint, saveCheckpoint, type TrainerState } from './checkpoint.js';
import type { TrainConfig } from './config.js';
import { AdamW, SGD, clipGradNorm, decayGroups, type Optimizer } from './optim.js';
import { DpSgd, PRIVACY_FILE } from './dp.js';
import { MeanGradient, countTargets, lmTargets, perExampleLoss, type GradientMode, type TrainBatch } from './gradient.js';
import { checkpointHoldsModel, createTrainMode, type TrainMode } from './mode.js';
import { EtaEstimator, evaluationsLeft } from './eta.js';
import { lrAt } from './schedule.js';

export interface TrainEvents {
  /** A plain log line (also for non-TTY progress). */
  log?(line: string): void;
  /**
   * Called after every optimizer step. tokensPerS counts training time only (evaluation left out); etaS is the time
   * left (steps at their moving-average time plus the evaluations to come), NaN for the first few steps; epsilon is
   * DP-SGD's privacy spent so far, when training with --dp.
   */
  progress?(p: { step: number; maxIters: number; loss: number; lr: number; tokensPerS: number; elapsedS: number; etaS: number; epsilon?: number }): void;
  /** An evaluation (eval_iters batches of train and of val data) starts at `step`; progress resumes after it. */
  evaluating?(step: number): void;
  /** Milliseconds of a monotonic clock; default performance.now (tests pass a fake one). */
  clock?(): number;
  /** Tokenising, loading and other set-up work. */
  status?(line: string): void;
  /** When it returns true the loop saves a checkpoint and stops after the current step. */
  shouldStop?(): boolean;
  /** The hub id init_from was pulled from (a LoRA adapter records it as its base_model_name_or_path). */
  baseModelId?: string;
}

export interface TrainSummary {
  out_dir: string;
  iters: number;
  /** The latest evaluation's estimates over eval_iters batches (as nanoGPT prints "train loss, val loss"). */
  train_loss: number | null;
  val_loss: number | null;
  best_val_loss: number | null;
  seconds: number;
  /** Training tokens per second of the optimizer steps' own time (evaluation and checkpoints left out). */
  tokens_per_s: number;
  stopped_early: boolean;
  task: string;
  metrics?: ClassificationReport | RegressionReport;
  /** With --canaries: the file beside the run folder that holds the planted secrets, for `ajar audit --canaries`. */
  canaries_file?: string;
}

/** Where a bundled GPT-2 vocabulary lives (assets/gpt2 in the package). */
const GPT2_ASSETS = new URL('../../../assets/gpt2/', import.meta.url);

function isCharTokenizerSpec(s: string): boolean {
  return s === 'char';
}

export class Trainer {
  readonly cfg: TrainConfig;
  readonly outDir: string;
  tokenizer!: Tokenizer;
  model!: AnyModel;
  /** What trains and what is saved: the whole model, or LoRA adapters over a frozen base. */
  mode!: TrainMode;
  optimizer!: Optimizer;
  /** How a step's gradient is formed: the mean over micro-batches, or DP-SGD's noised per-example sum. */
  gradient!: GradientMode;
  train!: Dataset;
  val!: Dataset;
  private rng!: Rng;
  private streamBatcher: StreamBatcher | null = null;
  private exampleBatcher: ExampleBatcher | null = null;
  private step = 0;
  private bestVal: number | null = null;
  private tokensSeen = 0;
  private elapsedBefore = 0;
  private lastTrainLoss: number | null = null;
  private lastValLoss: number | null = null;
  private lastMetrics: ClassificationReport | RegressionReport | undefined;
  private bestMetrics: ClassificationReport | RegressionReport | undefined;
  private canaryFile: string | undefined;

  constructor(cfg: TrainConfig, private readonly events: TrainEvents = {}) {
    this.cfg = cfg;
    this.outDir = resolve(cfg.out);
  }

  private get task(): string {
    return this.train.task;
  }

  private log(line: string): void {
    this.events.log?.(line);
  }

  /** Tokenizer, data, model, optimizer; restores a checkpoint when resuming. */
  setup(): void {
    const c = this.cfg;
    const resumeCk = c.resume ? loadCheckpoint(this.outDir) : null;
    if (c.resume && !resumeCk) {
      throw new AjarError('bad_checkpoint', `--resume: no checkpoint in ${join(this.outDir, 'checkpoint')} (train without --resume first)`);
    }
    if (!c.resume && existsSync(join(this.outDir, 'checkpoint'))) {
      throw new AjarError('out_exists', `${this.outDir} already holds a training run: pass --resume to continue it, or choose another --out`);
    }
    if (resumeCk) this.checkResumeCompatible(resumeCk.state.config);
    // A checkpoint holds either the whole model or (LoRA) only the trained tensors over the --init-from base.
    const fromCheckpoint = resumeCk !== null && checkpointHoldsModel(c);
    let pretrained: { model: AnyModel; tokenizer: Tokenizer } | null = null;
    if (resumeCk) {
      // The run's own folder (written at the first checkpoint) holds its tokenizer and config.
      this.tokenizer = loadTokenizer(join(this.outDir, 'checkpoint'));
    }
    if (!fromCheckpoint && c.init_from !== 'scratch') {
      this.events.status?.(`loading ${c.init_from}`);
      pretrained = loadPretrained(c.init_from);
      if (!resumeCk) this.tokenizer = pretrained.tokenizer;
    } else if (!resumeCk) {
      this.tokenizer = this.scratchTokenizer();
    }
    this.loadData();
    // One generator for everything, seeded before the model is built (nanoGPT seeds torch before GPT(config)):
    // initialisation, then training batches and evaluation batches, in nanoGPT's order.
    this.rng = new Rng(c.seed);
    if (fromCheckpoint) {
      const dir = join(this.outDir, 'checkpoint');
      this.model = buildModel(readRegularJson(join(dir, 'config.json'), { code: 'bad_checkpoint', kind: 'config', root: dir }) as Record<string, unknown>);
    } else {
      this.model = this.buildModelFor(pretrained?.model ?? null);
    }
    checkBlockSize(c.block_size, this.model.contextLength);
    this.mode = createTrainMode(c, this.model, this.rng, this.events.baseModelId ?? c.init_from);
    if (resumeCk) this.mode.restore(resumeCk.model, join(this.outDir, 'checkpoint', 'model.safetensors'));
    const groups = decayGroups(this.mode.parameters(), c.weight_decay);
    this.optimizer = c.optimizer === 'sgd'
      ? new SGD(groups, { lr: c.lr, momentum: c.momentum })
      : new AdamW(groups, { lr: c.lr, beta1: c.beta1, beta2: c.beta2 });
    if (this.train.kind === 'stream') {
      this.streamBatcher = new StreamBatcher(this.train, c.batch_size, c.block_size, this.rng);
    } else {
      // Under --dp a language-modelling document is one example however long: its windows are rows of one batch.
      this.exampleBatcher = new ExampleBatcher(this.train, c.batch_size, c.block_size, this.padId(), c.seed, { windows: c.dp });
    }
    this.gradient = c.dp ? this.dpGradient() : new MeanGradient(c.grad_accum);
    if (resumeCk) {
      const s = resumeCk.state;
      this.optimizer.loadStateDict(resumeCk.optimizer);
      try {
        this.rng.setState(s.rng);
      } catch {
        throw new AjarError('bad_checkpoint', `--resume: ${join(this.outDir, 'checkpoint')} was written by an older ajar whose random generator differs; train again without --resume`);
      }
      if (s.data && this.exampleBatcher) this.exampleBatcher.setState(s.data);
      this.step = s.step;
      this.bestVal = s.best_val_loss;
      this.tokensSeen = s.tokens_seen;
      this.elapsedBefore = s.elapsed_s;
      this.log(`resumed from ${join(this.outDir, 'checkpoint')} at step ${s.step}`);
    }
    this.model.module.train(true);
  }

  /**
   * DP-SGD over the training examples. The unit of privacy is one example: a JSONL or CSV record, or a document of
   * plain text (--dp-unit: a line, a paragraph, a file of a folder), all its windows together.
   */
  private dpGradient(): DpSgd {
    const c = this.cfg;
    const batcher = this.exampleBatcher;
    if (!batcher || this.train.kind !== 'examples') throw new Error('unreachable: --dp loads its data as examples');
    const settings = {
      examples: this.train.examples.length, batchSize: c.batch_size, maxGradNorm: c.dp_max_grad_norm,
      noiseMultiplier: c.dp_noise_multiplier, targetEpsilon: c.dp_target_epsilon, delta: c.dp_delta, plannedSteps: c.max_iters,
    };
    const trained = new Set(this.mode.parameters());
    const named = [...this.model.module.namedParameters()].filter(([, t]) => trained.has(t));
    const dp = new DpSgd(settings, this.mode.parameters(), named, (indices) => ({ ex: batcher.batchOf(indices) }), this.rng);
    const unit = c.dp_unit ?? (this.train.task === 'lm' ? 'record' : 'example');
    this.log(`DP-SGD over ${settings.examples} training ${unit}s: sample rate ${dp.sampleRate.toPrecision(4)}, noise multiplier ${dp.noiseMultiplier.toPrecision(4)}, ` +
      `max grad norm ${c.dp_max_grad_norm}, delta ${dp.delta}; epsilon after ${c.max_iters} steps ${dp.epsilon(c.max_iters).toFixed(3)}`);
    return dp;
  }

  private scratchTokenizer(): Tokenizer {
    const spec = this.cfg.tokenizer;
    if (isCharTokenizerSpec(spec)) {
      // nanoGPT's shakespeare_char: the vocabulary is every character of the text (train and validation).
      const texts = [this.cfg.data, this.cfg.val_data].filter((p): p is string => p !== null).map((p) => readDataText(p));
      // Canaries may hold characters the data lacks (digits): the vocabulary gets every character they can hold.
      if (this.cfg.canaries > 0) texts.push(canaryCharacters(parseCanaryFormat(this.cfg.canary_format)));
      return CharTokenizer.fromText(texts.join(''));
    }
    if (spec === 'gpt2') return loadTokenizer(new URL(GPT2_ASSETS).pathname);
    return loadTokenizer(spec);
  }

  private dataSpec(path: string): DataSpec {
    const c = this.cfg;
    const spec: DataSpec = {
      path, format: c.format ?? undefined, task: c.task ?? undefined, textField: c.text_field, labelField: c.label_field,
      promptField: c.prompt_field, completionField: c.completion_field,
    };
    // DP-SGD protects examples: language-modelling data becomes documents (plain text cut by --dp-unit, records whole).
    if (c.dp) spec.documents = c.dp_unit ?? 'record';
    return spec;
  }

  private loadData(): void {
    const c = this.cfg;
    this.events.status?.(`tokenising ${c.data}`);
    const { train, val } = loadTrainAndValidation(this.dataSpec(c.data), this.tokenizer, {
      val: c.val_data ? this.dataSpec(c.val_data) : undefined,
      valFraction: c.val_fraction,
      seed: c.seed,
    });
    if (val) {
      this.train = train;
      this.val = val;
    } else {
      const split = splitValidation(train, c.val_fraction, c.seed);
      this.train = split.train;
      this.val = split.val;
    }
    // NOTE: planted after the validation split, so that every copy is in the training data.
    if (c.canaries > 0) this.plantCanaries();
  }

  /**
   * --canaries: draw the secrets (seeded by --seed, so a resumed run draws the same ones), plant them in the training
   * data, and keep them in OUT.canaries.json beside the run folder, never inside what `ajar release` ships.
   */
  private plantCanaries(): void {
    const c = this.cfg;
    const format = parseCanaryFormat(c.canary_format);
    const canaries = drawCanaries(format, c.canaries, c.seed);
    this.train = plantCanaries(this.train, format, canaries, c.canary_repeats, this.tokenizer, c.seed);
    this.canaryFile = canaryFilePath(this.outDir);
    writeCanaryFile(this.canaryFile, {
      format: c.canary_format, repeats: c.canary_repeats, space_size: format.spaceSize, seed: c.seed, data: resolve(c.data), model: this.outDir,
      canaries: canaries.map((text) => ({ text, secret: secretOf(format, text) })),
    });
    this.log(`planted ${c.canaries} canar${c.canaries === 1 ? 'y' : 'ies'} of ${JSON.stringify(c.canary_format)} x ${c.canary_repeats} in the training data; ` +
      `the secrets are in ${this.canaryFile} (outside the run folder: keep it private, audit with 'ajar audit --canaries')`);
  }

  private padId(): number {
    return this.tokenizer.eosTokenId ?? 0;
  }

  /** A new model for this task: from scratch (GPT-2 init) or from a pretrained trunk. */
  private buildModelFor(base: AnyModel | null): AnyModel {
    const c = this.cfg;
    const task = this.train.task;
    const rng = this.rng;
    const headConfig: Record<string, unknown> = {};
    if (task === 'classification' || task === 'regression') {
      const labels = task === 'classification' ? (this.train as ExampleData).labels ?? [] : ['value'];
      Object.assign(headConfig, {
        architectures: ['GPT2ForSequenceClassification'],
        id2label: Object.fromEntries(labels.map((l, i) => [String(i), l])),
        label2id: Object.fromEntries(labels.map((l, i) => [l, i])),
        num_labels: labels.length,
        problem_type: task === 'regression' ? 'regression' : 'single_label_classification',
        pad_token_id: this.padId(),
      });
    }
    if (base) {
      if (base.task === 'causal-lm' && headConfig.architectures === undefined) return base;
      if (base.task === 'sequence-classification' && headConfig.architectures !== undefined) {
        const sameLabels = JSON.stringify(base.config.id2label) === JSON.stringify(headConfig.id2label);
        if (sameLabels) return base;
      }
      // A new head on the pretrained trunk: transformer.* from the checkpoint, the head initialised.
      const config = { ...base.config, ...headConfig };
      if (headConfig.architectures === undefined) config.architectures = ['GPT2LMHeadModel'];
      const model = buildModel(config, `${c.init_from}/config.json`);
      model.initWeights(rng, { bias: c.bias });
      const trunk = new Map([...base.stateDict()].filter(([k]) => k.startsWith('transformer.')));
      const own = new Map(model.module.namedParameters());
      for (const [k, v] of trunk) own.get(k)?.data.set(v.data);
      return model;
    }
    if (c.arch === 'llama') {
      if (headConfig.architectures !== undefined) {
        throw new AjarError('bad_config', `--arch llama trains language models; ${task} data needs --arch gpt2 (a GPT-2 classifier)`);
      }
      const model = buildModel(this.llamaScratchConfig(), 'scratch config');
      model.initWeights(rng);
      return model;
    }
    const config: Record<string, unknown> = {
      architectures: ['GPT2LMHeadModel'],
      model_type: 'gpt2',
      vocab_size: this.tokenizer.vocabSize,
      n_positions: c.block_size,
      n_ctx: c.block_size,
      n_embd: c.n_embd,
      n_layer: c.n_layer,
      n_head: c.n_head,
      n_inner: null,
      activation_function: c.activation,
      resid_pdrop: c.dropout,
      embd_pdrop: c.dropout,
      attn_pdrop: c.dropout,
      layer_norm_epsilon: 1e-5,
      initializer_range: 0.02,
      bos_token_id: this.tokenizer.bosTokenId,
      eos_token_id: this.tokenizer.eosTokenId,
      tie_word_embeddings: true,
      ...headConfig,
    };
    const model = buildModel(config, 'scratch config');
    model.initWeights(rng, { bias: c.bias });
    return model;
  }

  /** config.json of a LlamaForCausalLM from scratch: the train keys in transformers' LlamaConfig fields. */
  private llamaScratchConfig(): Record<string, unknown> {
    const c = this.cfg;
    return {
      architectures: ['LlamaForCausalLM'],
      model_type: 'llama',
      vocab_size: this.tokenizer.vocabSize,
      hidden_size: c.n_embd,
      intermediate_size: c.intermediate_size ?? Math.ceil((8 * c.n_embd) / 3 / 8) * 8,
      num_hidden_layers: c.n_layer,
      num_attention_heads: c.n_head,
      num_key_value_heads: c.n_kv_head ?? c.n_head,
      hidden_act: 'silu',
      max_position_embeddings: c.block_size,
      rms_norm_eps: 1e-5,
      rope_theta: c.rope_theta,
      rope_scaling: null,
      attention_dropout: c.dropout,
      attention_bias: false,
      mlp_bias: false,
      initializer_range: 0.02,
      tie_word_embeddings: true,
      bos_token_id: this.tokenizer.bosTokenId,
      eos_token_id: this.tokenizer.eosTokenId,
    };
  }

  private checkResumeCompatible(saved: Record<string, unknown>): void {
    const keys: (keyof TrainConfig)[] = ['arch', 'n_layer', 'n_head', 'n_kv_head', 'n_embd', 'block_size', 'batch_size', 'optimizer', 'data', 'seed',
      'lora', 'lora_r', 'lora_alpha', 'lora_targets', 'use_rslora', 'dp', 'dp_noise_multiplier', 'dp_target_epsilon', 'dp_delta', 'dp_max_grad_norm', 'dp_unit',
      'canaries', 'canary_format', 'canary_repeats'];
    for (const k of keys) {
      if (saved[k] !== undefined && JSON.stringify(saved[k]) !== JSON.stringify(this.cfg[k])) {
        throw new AjarError('bad_checkpoint', `--resume: ${k.replace(/_/g, '-')} was ${JSON.stringify(saved[k])} in the checkpoint, now ${JSON.stringify(this.cfg[k])}; resume with the same settings`);
      }
    }
  }

  /**
   * Loss of one batch (with the graph, for backward) and the tokens/examples it covers: the batch mean, or with
   * perExample (DP-SGD, example data) the sum over examples of each one's mean loss.
   */
  private batchLoss(training: boolean, lm?: LMBatch, ex?: ExampleBatch, perExample = false): { loss: Tensor; tokens: number } {
    const opts = training ? { rng: this.rng } : {};
    if (perExample && ex) return perExampleLoss(this.model, ex, opts);
    let tokens = 0;
    const build = (): Tensor => {
      const r = this.meanLoss(opts, lm, ex);
      tokens = r.tokens;
      return r.loss;
    };
    // NOTE: only the loss leaves the graph, so backward gives each activation back once it has used it; DP-SGD's
    // per-example pass (perExample) reads activations after its backward, so its graph keeps them.
    const loss = perExample ? build() : transientGraph(build);
    return { loss, tokens };
  }

  /** The batch's mean loss, with its graph. */
  private meanLoss(opts: { rng?: Rng }, lm?: LMBatch, ex?: ExampleBatch): { loss: Tensor; tokens: number } {
    if (lm) {
      if (this.model.task !== 'causal-lm') throw new Error('unreachable: stream data needs a language model');
      const logits = this.model.forward(lm.x, lm.batch, opts); // (B, T, V)
      const V = logits.shape[2];
      return { loss: crossEntropy(reshape(logits, [lm.batch * lm.block, V]), lm.y), tokens: lm.batch * lm.block };
    }
    const b = ex!;
    if (this.model.task === 'causal-lm') {
      const logits = this.model.forward(b.ids, b.batch, opts); // (B, T, V)
      const V = logits.shape[2];
      const targets = b.targets ?? lmTargets(b);
      return { loss: crossEntropy(reshape(logits, [b.batch * b.block, V]), targets), tokens: b.batch * b.block };
    }
    const last = b.lengths.map((l) => l - 1);
    const scores = this.model.classify(b.ids, b.batch, last, opts); // (B, K)
    if (this.model.regression) {
      return { loss: mseLoss(reshape(scores, [b.batch]), tensor(b.values!)), tokens: b.batch * b.block };
    }
    return { loss: crossEntropy(scores, b.labels!), tokens: b.batch * b.block };
  }

  private nextTrainBatch(): TrainBatch {
    return this.streamBatcher ? { lm: this.streamBatcher.next() } : { ex: this.exampleBatcher!.next() };
  }

  /**
   * Mean loss over eval_iters batches of a split. Stream data samples windows from the training generator, as
   * nanoGPT's estimate_loss does, so a seed evaluates on nanoGPT's batches (a resumed run draws them again
   * from the checkpoint's generator state, which is taken before the step's draws); example data is a full
   * ordered pass, with classification/regression metrics on the validation split.
   */
  evaluate(split: 'train' | 'val'): number {
    const ds = split === 'train' ? this.train : this.val;
    const c = this.cfg;
    this.model.module.eval();
    try {
      return noGrad(() => {
        if (ds.kind === 'stream') {
          const batcher = new StreamBatcher(ds as StreamData, c.batch_size, Math.min(c.block_size, ds.ids.length - 1), this.rng);
          let total = 0;
          for (let i = 0; i < c.eval_iters; i++) total += this.batchLoss(false, batcher.next()).loss.item();
          return total / c.eval_iters;
        }
        return this.evaluateExamples(ds as ExampleData, split === 'val');
      });
    } finally {
      this.model.module.train(true);
    }
  }

  private evaluateExamples(ds: ExampleData, withMetrics: boolean): number {
    const c = this.cfg;
    const batcher = new ExampleBatcher(ds, c.batch_size, c.block_size, this.padId(), c.seed);
    let total = 0;
    let count = 0;
    const truth: number[] = [];
    const pred: number[] = [];
    let batches = 0;
    for (const b of batcher.batches()) {
      if (!withMetrics && batches >= c.eval_iters) break;
      batches++;
      const { loss } = this.batchLoss(false, undefined, b);
      const weight = this.model.task === 'causal-lm' ? countTargets(b.targets ?? lmTargets(b)) : b.batch;
      total += loss.item() * weight;
      count += weight;
      if (withMetrics && this.model.task === 'sequence-classification') {
        const scores = this.model.classify(b.ids, b.batch, b.lengths.map((l) => l - 1)); // (B, K)
        const K = scores.shape[1];
        for (let r = 0; r < b.batch; r++) {
          if (this.model.regression) {
            truth.push(b.values![r]);
            pred.push(scores.data[r]);
          } else {
            truth.push(b.labels![r]);
            let best = 0;
            for (let k = 1; k < K; k++) if (scores.data[r * K + k] > scores.data[r * K + best]) best = k;
            pred.push(best);
          }
        }
      }
    }
    if (withMetrics && this.model.task === 'sequence-classification') {
      this.lastMetrics = this.model.regression ? regressionReport(truth, pred) : classificationReport(this.model.labels, truth, pred);
    }
    return count > 0 ? total / count : NaN;
  }

  private appendMetrics(record: Record<string, unknown>): void {
    appendFileSync(join(this.outDir, 'metrics.jsonl'), `${JSON.stringify(record)}\n`);
  }

  /** Save the model (or adapter) as it is now: the one whose latest evaluation gave lastValLoss / lastMetrics. */
  private saveRunFolder(dir: string): void {
    const valLoss = this.lastValLoss;
    const metrics = this.lastMetrics;
    const privacy = this.gradient.privacy(this.step);
    this.mode.save(dir, this.tokenizer, {
      step: this.step, val_loss: valLoss, ...(metrics ? { metrics: summarizeMetrics(metrics) } : {}), ...(privacy ? { privacy } : {}),
    });
    if (privacy) writeFileAtomic(join(dir, PRIVACY_FILE), `${JSON.stringify(privacy, null, 2)}\n`);
  }

  /** Save the run; `rng` is the generator's state at the start of step this.step, before any of its draws. */
  private checkpoint(elapsed: number, rng: number[] = this.rng.getState()): void {
    const state: TrainerState = {
      step: this.step,
      rng,
      data: this.exampleBatcher ? this.exampleBatcher.getState() : null,
      best_val_loss: this.bestVal,
      tokens_seen: this.tokensSeen,
      elapsed_s: elapsed,
      config: this.cfg as unknown as Record<string, unknown>,
    };
    // The checkpoint folder doubles as a loadable model folder (config + tokenizer) for resume.
    saveCheckpoint(this.outDir, { state, model: this.mode.checkpointTensors(), optimizer: this.optimizer.stateDict() }, (dir) => {
      this.tokenizer.save(dir, { modelMaxLength: this.model.contextLength });
      writeFileAtomic(join(dir, 'config.json'), `${JSON.stringify({ ...this.model.config, architectures: [this.model.architecture] }, null, 2)}\n`);
    });
  }

  /** Run to max_iters (or until asked to stop). */
  async run(): Promise<TrainSummary> {
    const c = this.cfg;
    mkdirSync(this.outDir, { recursive: true });
    if (!c.resume) rmSync(join(this.outDir, 'metrics.jsonl'), { force: true });
    const clock = (): number => this.events.clock?.() ?? performance.now();
    const start = clock();
    const elapsed = (): number => this.elapsedBefore + (clock() - start) / 1000;
    const eta = new EtaEstimator();
    const schedule = { lr: c.lr, warmupIters: c.warmup_iters, decayIters: c.lr_decay_iters!, minLr: c.min_lr!, decay: c.decay_lr };
    const params = this.optimizer.groups.flatMap((g) => g.params);
    // NOTE: throughput counts the optimizer steps' own time; evaluation and checkpoints are left out, or every
    // evaluation would read as a slowdown of training.
    let windowTokens = 0;
    let windowMs = 0;
    let trainMs = 0;
    let tokensPerS = 0;
    let stoppedEarly = false;
    let savedBest = false;
    const startTokens = this.tokensSeen;
    this.log(`training ${this.model.architecture} (${this.mode.describe()}) ` +
      `on ${this.train.source}: task ${this.task}, ${c.max_iters} iterations, batch ${c.batch_size} x ${c.block_size}`);
    let finalRng: number[] | undefined; // the generator before the last step's draws, for the final checkpoint
    for (;;) {
      const it = this.step;
      const lastIter = it === c.max_iters;
      if (lastIter) finalRng = this.rng.getState();
      if (it > 0 && !lastIter && it % c.checkpoint_interval! === 0) this.checkpoint(elapsed());
      // nanoGPT draws a step's first training batch before that step's evaluation (train.py fetches the next
      // batch right after each forward pass), so stream batches come first, the last step's too, though it is
      // not trained on; example data has its own order.
      const first = this.streamBatcher ? this.nextTrainBatch() : null;
      if (it % c.eval_interval === 0 || lastIter) {
        this.events.evaluating?.(it);
        const evalStart = clock();
        const trainLoss = this.evaluate('train');
        const valLoss = this.evaluate('val');
        eta.recordEval((clock() - evalStart) / 1000);
        this.lastValLoss = valLoss;
        const improved = this.bestVal === null || valLoss < this.bestVal;
        if (improved) {
          this.bestVal = valLoss;
          this.bestMetrics = this.lastMetrics;
        }
        const record: Record<string, unknown> = { step: it, train_loss_eval: trainLoss, val_loss: valLoss, best_val_loss: this.bestVal, elapsed_s: elapsed() };
        if (this.lastMetrics) record.val_metrics = summarizeMetrics(this.lastMetrics);
        this.appendMetrics(record);
        this.log(`step ${it}: train loss ${trainLoss.toFixed(4)}, val loss ${valLoss.toFixed(4)}${improved ? ' (best)' : ''}`);
        this.lastTrainLoss = trainLoss;
        // keep_best: the saved model is the best so far; otherwise the latest evaluated one.
        if ((improved || !c.keep_best) && (it > 0 || c.max_iters === 0)) {
          this.saveRunFolder(this.outDir);
          savedBest = true;
        }
      }
      if (lastIter) break;
      // One optimizer step: grad_accum micro-batches.
      const lr = lrAt(schedule, it);
      const stepStart = clock();
      this.optimizer.lr = lr;
      this.optimizer.zeroGrad();
      const formed = this.gradient.formGradient({
        first,
        nextBatch: () => this.nextTrainBatch(),
        loss: (batch, perExample) => this.batchLoss(true, batch.lm, batch.ex, perExample),
      });
      windowTokens += formed.tokens;
      this.tokensSeen += formed.tokens;
      // NOTE: a DP-SGD step's Poisson batch may be empty (its gradient is noise alone): its loss is NaN, not a divergence.
      const loss = formed.loss;
      if (!Number.isFinite(loss) && formed.tokens > 0) {
        throw new AjarError('diverged', `training diverged at step ${it} (loss ${loss}); lower --lr or check the data`);
      }
      if (c.grad_clip > 0 && this.gradient.globalClip) clipGradNorm(params, c.grad_clip);
      this.optimizer.step();
      this.step++;
      const report = this.gradient.report(this.step);
      const stepMs = clock() - stepStart;
      windowMs += stepMs;
      trainMs += stepMs;
      eta.recordStep(stepMs / 1000);
      if (windowMs > 1000 || tokensPerS === 0) {
        tokensPerS = (windowTokens * 1000) / Math.max(1e-3, windowMs);
        if (windowMs > 1000) {
          windowTokens = 0;
          windowMs = 0;
        }
      }
      if (this.step % c.log_interval === 0 || this.step === c.max_iters) {
        this.appendMetrics({ step: this.step, train_loss: Number.isFinite(loss) ? loss : null, lr, tokens_per_s: tokensPerS, elapsed_s: elapsed(), ...report });
      }
      this.events.progress?.({
        step: this.step, maxIters: c.max_iters, loss, lr, tokensPerS, elapsedS: elapsed(),
        etaS: eta.eta(c.max_iters - this.step, evaluationsLeft(this.step, c.max_iters, c.eval_interval)), ...report,
      });
      // Let signal handlers (Ctrl-C) run between steps.
      await new Promise<void>((r) => setImmediate(r));
      if (this.events.shouldStop?.()) {
        this.checkpoint(elapsed());
        this.log(`stopped at step ${this.step}; checkpoint saved in ${join(this.outDir, 'checkpoint')} (continue with --resume)`);
        stoppedEarly = true;
        break;
      }
    }
    if (!stoppedEarly) {
      this.checkpoint(elapsed(), finalRng);
      if (!savedBest) this.saveRunFolder(this.outDir);
      this.writeResults();
    }
    const seconds = elapsed();
    return {
      out_dir: this.outDir,
      iters: this.step,
      train_loss: this.lastTrainLoss,
      val_loss: this.lastValLoss,
      best_val_loss: this.bestVal,
      seconds,
      tokens_per_s: trainMs > 0 ? ((this.tokensSeen - startTokens) * 1000) / trainMs : 0,
      stopped_early: stoppedEarly,
      task: this.task,
      metrics: this.savedMetrics(),
      ...(this.canaryFile !== undefined ? { canaries_file: this.canaryFile } : {}),
    };
  }

  /** Validation metrics of the model that was saved: the best one with keep_best, else the last. */
  private savedMetrics(): ClassificationReport | RegressionReport | undefined {
    return this.cfg.keep_best ? this.bestMetrics : this.lastMetrics;
  }

  /** Evaluation results beside the model, for model cards and `ajar release`. */
  private writeResults(): void {
    const record = {
      task: this.task,
      dataset: this.cfg.val_data ?? `${this.cfg.data} (held-out ${this.cfg.val_fraction})`,
      metrics: { val_loss: this.cfg.keep_best ? this.bestVal : this.lastValLoss, ...(this.savedMetrics() ? summarizeMetrics(this.savedMetrics()!) : {}) },
      iters: this.step,
      date: new Date().toISOString(),
      source: 'ajar train',
    };
    writeFileAtomic(join(this.outDir, 'ajar_results.json'), `${JSON.stringify([record], null, 2)}\n`);
    writeFileAtomic(join(this.outDir, 'training_args.json'), `${JSON.stringify(this.cfg, null, 2)}\n`);
  }
}

function summarizeMetrics(m: ClassificationReport | RegressionReport): Record<string, number> {
  if ('accuracy' in m) return { accuracy: m.accuracy, macro_f1: m.macro_f1, majority_baseline: m.majority_baseline };
  return { mse: m.mse, mae: m.mae };
}

/** A data file's text, or a folder's files' texts joined (a folder of documents). */
function readDataText(path: string): string {
  try {
    if (statSync(path).isDirectory()) {
      return readdirSync(path).filter((n) => !n.startsWith('.')).sort().map((n) => join(path, n))
        .filter((f) => statSync(f).isFile()).map((f) => readFileSync(f, 'utf8')).join('\n');
    }
    return readFileSync(path, 'utf8');
  } catch {
    throw new AjarError('bad_data', `${path} cannot be read (does it exist?)`);
  }
}
