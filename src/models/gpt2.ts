// GPT-2 (Radford et al. 2019, "Language Models are Unsupervised Multitask Learners") as Hugging Face
// transformers' modeling_gpt2.py GPT2LMHeadModel defines it: learned positions, pre-LayerNorm blocks,
// Conv1D weights stored (in, out), activation from config.activation_function, tied LM head.
import {
  Conv1D, Embedding, KVCache, LayerNorm, Linear, Module, ModuleList, asTensorSource, causalAttention, lmHeadLogits, type TensorSource, type Weights,
} from '../nn/index.js';
import {
  add, causalSelfAttention, dropout, embedding, gelu, groupedCausalAttention, mul, permute, relu, reshape, sigmoid, silu, slice, AjarError, getBackend, type Rng, type Tensor,
} from '../tensor/index.js';
import { discardNormal, normalFill } from '../tensor/random.js';
import { CONFIG_MAXIMA, ConfigReader, checkTokenInput, extraLayersNote } from './config.js';
import type { CausalLM, ForwardOptions, SequenceClassifier } from './types.js';

/** config.json fields GPT-2 reads, with transformers' GPT2Config defaults (the 124M model). */
export interface GPT2Config {
  vocab_size: number; // 50257 // GPT-2's BPE
  n_positions: number; // 1024
  n_embd: number; // 768
  n_layer: number; // 12
  n_head: number; // 12
  n_inner: number | null; // null means 4 * n_embd
  activation_function: string; // 'gelu_new'
  resid_pdrop: number; // 0.1
  embd_pdrop: number; // 0.1
  attn_pdrop: number; // 0.1
  layer_norm_epsilon: number; // 1e-5
  initializer_range: number; // 0.02
  scale_attn_weights: boolean; // true
  scale_attn_by_inverse_layer_idx: boolean; // false
  tie_word_embeddings: boolean; // true
  eos_token_id: number | null; // 50256
}

export function readGPT2Config(raw: Record<string, unknown>, label = 'config.json'): GPT2Config {
  const r = new ConfigReader(raw, label);
  const cfg: GPT2Config = {
    vocab_size: r.int('vocab_size', 50257),
    n_positions: r.int('n_positions', (raw.n_ctx as number | undefined) ?? 1024),
    n_embd: r.int('n_embd', 768),
    n_layer: r.int('n_layer', 12),
    n_head: r.int('n_head', 12),
    n_inner: r.optInt('n_inner', null),
    activation_function: r.str('activation_function', 'gelu_new'),
    resid_pdrop: r.num('resid_pdrop', 0.1),
    embd_pdrop: r.num('embd_pdrop', 0.1),
    attn_pdrop: r.num('attn_pdrop', 0.1),
    layer_norm_epsilon: r.num('layer_norm_epsilon', 1e-5),
    initializer_range: r.num('initializer_range', 0.02),
    scale_attn_weights: r.bool('scale_attn_weights', true),
    scale_attn_by_inverse_layer_idx: r.bool('scale_attn_by_inverse_layer_idx', false),
    tie_word_embeddings: r.bool('tie_word_embeddings', true),
    eos_token_id: r.tokenId('eos_token_id', 50256),
  };
  if (cfg.n_embd % cfg.n_head !== 0) {
    throw new AjarError('bad_config', `${label}: n_embd (${cfg.n_embd}) must be divisible by n_head (${cfg.n_head})`);
  }
  if (raw.reorder_and_upcast_attn === true) {
    // NOTE: only changes float16 numerics in transformers; in float32 it computes the same thing.
  }
  activation(cfg.activation_function, label); // validate early
  return cfg;
}

/** transformers' ACT2FN names -> our ops. */
function activation(name: string, label: string): (x: Tensor) => Tensor {
  switch (name) {
    case 'gelu_new':
    case 'gelu_pytorch_tanh':
    case 'gelu_fast':
      return (x) => gelu(x, 'tanh');
    case 'gelu':
      return (x) => gelu(x, 'erf');
    case 'relu':
      return relu;
    case 'silu':
    case 'swish':
      return silu;
    case 'quick_gelu':
      return (x) => mul(x, sigmoid(mul(x, 1.702)));
    default:
      throw new AjarError('bad_config', `${label}: activation_function "${name}" is not supported ` +
        '(known: gelu_new, gelu_pytorch_tanh, gelu_fast, gelu, relu, silu, swish, quick_gelu)');
  }
}

class GPT2Attention extends Module {
  readonly c_attn: Conv1D;
  readonly c_proj: Conv1D;
  constructor(readonly cfg: GPT2Config, readonly layerIdx: number) {
    super();
    this.c_attn = this.child('c_attn', new Conv1D(cfg.n_embd, 3 * cfg.n_embd));
    this.c_proj = this.child('c_proj', new Conv1D(cfg.n_embd, cfg.n_embd));
  }

  forward(x: Tensor, opts: ForwardOptions, drop: (t: Tensor, p: number) => Tensor): Tensor {
    const [B, T, C] = x.shape;
    const nh = this.cfg.n_head;
    const hs = C / nh;
    const qkv = this.c_attn.forward(x); // (B, T, 3C)
    let scale = this.cfg.scale_attn_weights ? 1 / Math.sqrt(hs) : 1;
    if (this.cfg.scale_attn_by_inverse_layer_idx) scale /= this.layerIdx + 1;
    const pdrop = this.cfg.attn_pdrop;
    const attnDropout = this.training && opts.rng !== undefined && pdrop > 0; // as hidden()'s drop decides
    if (!opts.cache && !attnDropout) {
      // No cache and no attention dropout: one op over the packed projections.
      return drop(this.c_proj.forward(causalSelfAttention(qkv, nh, scale)), this.cfg.resid_pdrop);
    }
    if (opts.cache?.seqAxis === 1) {
      // With a (B, T, C) cache (generation on a backend with the fused grouped kernel, newCache): heads side by side,
      // so a decoding step appends one row in place and the kernel reads every head from it without permuted copies.
      const part = (i: number): Tensor => slice(qkv, 2, i * C, (i + 1) * C); // (B, T, C)
      const [k, v] = opts.cache.append(this.layerIdx, part(1), part(2)); // (B, past + T, C)
      const y = groupedCausalAttention(part(0), k, v, {
        nHead: nh, nKvHead: nh, scale, dropout: attnDropout ? (t) => drop(t, pdrop) : undefined,
      }); // (B, T, C)
      return drop(this.c_proj.forward(y), this.cfg.resid_pdrop);
    }
    const heads = (i: number): Tensor =>
      permute(reshape(slice(qkv, 2, i * C, (i + 1) * C), [B, T, nh, hs]), [0, 2, 1, 3]); // (B, nh, T, hs)
    const q = heads(0);
    let k = heads(1);
    let v = heads(2);
    if (opts.cache) [k, v] = opts.cache.append(this.layerIdx, k, v); // (B, nh, past + T, hs)
    const y = causalAttention(q, k, v, scale, (t) => drop(t, pdrop)); // (B, nh, T, hs)
    const merged = reshape(permute(y, [0, 2, 1, 3]), [B, T, C]); // (B, T, C)
    return drop(this.c_proj.forward(merged), this.cfg.resid_pdrop);
  }
}

class GPT2MLP extends Module {
  readonly c_fc: Conv1D;
  readonly c_proj: Conv1D;
  private readonly act: (x: Tensor) => Tensor;
  constructor(readonly cfg: GPT2Config) {
    super();
    const inner = cfg.n_inner ?? 4 * cfg.n_embd;
    this.c_fc = this.child('c_fc', new Conv1D(cfg.n_embd, inner));
    this.c_proj = this.child('c_proj', new Conv1D(inner, cfg.n_embd));
    this.act = activation(cfg.activation_function, 'config.json');
  }

  forward(x: Tensor, drop: (t: Tensor, p: number) => Tensor): Tensor {
    return drop(this.c_proj.forward(this.act(this.c_fc.forward(x))), this.cfg.resid_pdrop);
  }
}

class GPT2Block extends Module {
  readonly ln_1: LayerNorm;
  readonly attn: GPT2Attention;
  readonly ln_2: LayerNorm;
  readonly mlp: GPT2MLP;
  constructor(cfg: GPT2Config, layerIdx: number) {
    super();
    this.ln_1 = this.child('ln_1', new LayerNorm(cfg.n_embd, cfg.layer_norm_epsilon));
    this.attn = this.child('attn', new GPT2Attention(cfg, layerIdx));
    this.ln_2 = this.child('ln_2', new LayerNorm(cfg.n_embd, cfg.layer_norm_epsilon));
    this.mlp = this.child('mlp', new GPT2MLP(cfg));
  }

  forward(x: Tensor, opts: ForwardOptions, drop: (t: Tensor, p: number) => Tensor): Tensor {
    const h = add(x, this.attn.forward(this.ln_1.forward(x), opts, drop));
    return add(h, this.mlp.forward(this.ln_2.forward(h), drop));
  }
}

class GPT2Transformer extends Module {
  readonly wte: Embedding;
  readonly wpe: Embedding;
  readonly h: GPT2Block[] = [];
  readonly ln_f: LayerNorm;
  constructor(cfg: GPT2Config) {
    super();
    this.wte = this.child('wte', new Embedding(cfg.vocab_size, cfg.n_embd));
    this.wpe = this.child('wpe', new Embedding(cfg.n_positions, cfg.n_embd));
    const list = this.child('h', new ModuleList());
    for (let i = 0; i < cfg.n_layer; i++) this.h.push(list.push(new GPT2Block(cfg, i)));
    this.ln_f = this.child('ln_f', new LayerNorm(cfg.n_embd, cfg.layer_norm_epsilon));
  }
}


class GPT2Root extends Module {
  readonly transformer: GPT2Transformer;
  readonly lm_head: Linear | null;
  readonly score: Linear | null;
  constructor(cfg: GPT2Config, numLabels: number | null) {
    super();
    this.transformer = this.child('transformer', new GPT2Transformer(cfg));
    const lmHead = numLabels === null && !cfg.tie_word_embeddings;
    this.lm_head = lmHead ? this.child('lm_head', new Linear(cfg.n_embd, cfg.vocab_size, false)) : null;
    this.score = numLabels !== null ? this.child('score', new Linear(cfg.n_embd, numLabels, false)) : null;
  }
}

/** Checkpoint tensors that GPT-2 loaders ignore: the causal-mask buffers of older transformers versions. */
const IGNORED = /(^|\.)attn\.(bias|masked_bias)$/;

type StateDict = Map<string, { shape: readonly number[]; data: Float32Array }>;

/** The GPT-2 trunk shared by the LM and classification heads: embeddings, blocks, ln_f, loading, init. */
abstract class GPT2Base {
  abstract readonly architecture: string;
  readonly cfg: GPT2Config;
  readonly module: GPT2Root;

  constructor(readonly config: Record<string, unknown>, label: string, numLabels: number | null) {
    this.cfg = readGPT2Config(config, label);
    this.module = new GPT2Root(this.cfg, numLabels);
  }

  get vocabSize(): number {
    return this.cfg.vocab_size;
  }

  get contextLength(): number {
    return this.cfg.n_positions;
  }

  get eosTokenId(): number | null {
    return this.cfg.eos_token_id;
  }

  newCache(): KVCache {
    // NOTE: (B, T, C) per layer where the backend has the fused grouped kernel; without it (the reference backend) the
    // composite would permute the whole cache every step, so keys and values stay (B, nh, T, hs) for the matmuls.
    const f = getBackend().fused;
    return new KVCache(this.cfg.n_layer, f?.groupedAttention && f.groupedAttentionBackward ? 1 : 2);
  }

  /** The final hidden states (B, T, C) after ln_f: the input to the LM head or a classification head. */
  hidden(ids: Int32Array, batch: number, opts: ForwardOptions = {}): Tensor {
    const past = opts.cache ? opts.cache.length : 0;
    const T = checkTokenInput('gpt2', ids, batch, past, this.cfg.n_positions, this.cfg.vocab_size);
    const tr = this.module.transformer;
    const training = this.module.training && opts.rng !== undefined;
    const drop = (t: Tensor, p: number): Tensor => (training && p > 0 ? dropout(t, p, opts.rng!, true) : t);
    // NOTE: positions are looked up per row, (B, T), not once as (T) and broadcast: the same values, but every op
    // on a parameter then has the batch as its outermost dimension, which DP-SGD's per-example gradients need.
    const pos = new Int32Array(batch * T);
    for (let b = 0; b < batch; b++) for (let t = 0; t < T; t++) pos[b * T + t] = past + t;
    let x = add(tr.wte.forward(ids, [batch, T]), tr.wpe.forward(pos, [batch, T])); // (B, T, C)
    x = drop(x, this.cfg.embd_pdrop);
    for (const block of tr.h) x = block.forward(x, opts, drop);
    return tr.ln_f.forward(x); // (B, T, C)
  }

  /** Checkpoint names this model may ignore besides the legacy buffers. */
  protected optionalNames(name: string): boolean {
    return name === 'lm_head.weight' && this.cfg.tie_word_embeddings;
  }

  /** Parameter name -> checkpoint name: a checkpoint may store the trunk without the 'transformer.' prefix. */
  private resolver(weights: TensorSource): (name: string) => string {
    const prefixed = [...weights.keys()].some((k) => k.startsWith('transformer.'));
    return (name: string): string => {
      if (name.startsWith('transformer.') && !prefixed) return name.slice('transformer.'.length);
      return name;
    };
  }

  checkWeights(weights: Weights, label: string): void {
    const source = asTensorSource(weights);
    const resolve = this.resolver(source);
    const expected = new Set(this.module.namedParameters().map(([n]) => resolve(n)));
    const extra = [...source.keys()].filter((k) => !expected.has(k) && !IGNORED.test(k) && !this.optionalNames(k));
    if (extra.length > 0) {
      throw new AjarError('bad_weights', `${label}: unexpected tensors for ${this.architecture}: ${extra.slice(0, 5).join(', ')}` +
        `${extra.length > 5 ? ` and ${extra.length - 5} more` : ''}${extraLayersNote(extra, 'n_layer', this.cfg.n_layer)} `
        + "(is config.json's architecture right?)");
    }
    this.module.checkStateDict(source, label, resolve, (n) => this.shapeFields(n));
  }

  /** The config.json fields, with their values, that set a parameter's shape (or its presence: the layer count). */
  private shapeFields(name: string): string {
    const { vocab_size: V, n_positions: P, n_embd: C, n_layer: L } = this.cfg;
    const layer = /\.h\.\d+\./.test(name) ? `, n_layer ${L}` : '';
    if (/\.wte\./.test(name)) return `vocab_size ${V}, n_embd ${C}`;
    if (/\.wpe\./.test(name)) return `n_positions ${P}, n_embd ${C}`;
    if (/mlp\./.test(name)) return `n_inner ${this.cfg.n_inner ?? `null (4 x n_embd)`}, n_embd ${C}${layer}`;
    if (/^score\./.test(name)) return `num_labels, n_embd ${C}`;
    return `n_embd ${C}${layer}`;
  }

  loadWeights(weights: Weights, label: string): void {
    this.checkWeights(weights, label);
    const source = asTensorSource(weights);
    this.module.loadStateDict(source, label, this.resolver(source));
  }

  /** Tensors to save, named as transformers saves them; a tied lm_head is not stored (wte holds it). */
  stateDict(): StateDict {
    const out: StateDict = new Map();
    for (const [name, t] of this.module.namedParameters()) out.set(name, { shape: t.shape, data: t.data });
    return out;
  }

  /**
   * GPT-2's initialisation as nanoGPT's model.py does it, drawn in nanoGPT's order from a PyTorch-compatible
   * generator, so that after `new Rng(seed)` the weights equal nanoGPT's GPT(config) after
   * torch.manual_seed(seed) (Conv1D weights hold the transpose of nanoGPT's nn.Linear ones):
   * 1. building the modules draws their default initialisation (nn.Embedding's N(0, 1), nn.Linear's Kaiming
   *    uniform weight and, with `bias`, uniform bias), which is then overwritten: the same draws are spent here;
   * 2. apply(_init_weights): every Linear and Embedding weight redrawn from N(0, 0.02) in module order (wte,
   *    wpe, each block's c_attn, c_proj, c_fc, mlp c_proj, then lm_head, which is wte when tied);
   * 3. every c_proj.weight redrawn from N(0, 0.02 / sqrt(2 n_layer));
   * LayerNorm weights 1, biases 0. A classification `score` head (nanoGPT has none) is drawn last, N(0, 0.02).
   */
  initWeights(rng: Rng, opts: { bias?: boolean } = {}): void {
    const bias = opts.bias ?? true;
    const std = this.cfg.initializer_range;
    const root = this.module;
    const tr = root.transformer;
    const tied = root.lm_head === null;
    const lmHead = root.lm_head?.weight ?? tr.wte.weight;
    // nn.Linear(in, out) as nanoGPT builds it, and the Conv1D (in, out) that stores its transpose here.
    const linears = tr.h.flatMap((b) => [b.attn.c_attn, b.attn.c_proj, b.mlp.c_fc, b.mlp.c_proj]);
    // Draws whose values are overwritten later are only spent (discardNormal / discard), not computed.
    // 1. construction
    discardNormal(rng, tr.wte.weight.size);
    discardNormal(rng, tr.wpe.weight.size);
    for (const l of linears) rng.discard(l.weight.size + (bias ? l.bias.size : 0));
    rng.discard(lmHead.size);
    // 2. apply(_init_weights); a tied wte is drawn again as lm_head, each c_proj again in 3.
    if (tied) discardNormal(rng, tr.wte.weight.size);
    else normalFill(tr.wte.weight.data, rng, std);
    normalFill(tr.wpe.weight.data, rng, std);
    const projections = new Set(tr.h.flatMap((b) => [b.attn.c_proj, b.mlp.c_proj]));
    for (const l of linears) {
      if (projections.has(l)) discardNormal(rng, l.weight.size);
      else drawLinear(l, rng, std);
    }
    normalFill(lmHead.data, rng, std);
    // 3. the residual projections
    for (const l of projections) drawLinear(l, rng, std / Math.sqrt(2 * this.cfg.n_layer));
    for (const l of linears) l.bias.data.fill(0);
    for (const ln of [...tr.h.flatMap((b) => [b.ln_1, b.ln_2]), tr.ln_f]) {
      ln.weight.data.fill(1);
      ln.bias.data.fill(0);
    }
    if (root.score) normalFill(root.score.weight.data, rng, std);
  }
}

/** N(0, std) into a Conv1D in nn.Linear's (out, in) order: torch fills the Linear row by row. */
function drawLinear(l: Conv1D, rng: Rng, std: number): void {
  const [nIn, nOut] = l.weight.shape;
  const rowMajor = new Float32Array(nIn * nOut);
  normalFill(rowMajor, rng, std);
  getBackend().permute(rowMajor, [nOut, nIn], [1, 0], l.weight.data);
}

export class GPT2LMHeadModel extends GPT2Base implements CausalLM {
  readonly architecture = 'GPT2LMHeadModel';
  readonly task = 'causal-lm';

  constructor(config: Record<string, unknown>, label = 'config.json') {
    super(config, label, null);
  }

  forward(ids: Int32Array, batch: number, opts: ForwardOptions = {}): Tensor {
    const x = this.hidden(ids, batch, opts); // (B, T, C)
    return lmHeadLogits(x, this.module.lm_head, this.module.transformer.wte); // (B, T, V)
  }
}

/**
 * GPT2ForSequenceClassification: a bias-free `score` layer on the hidden state of each row's last real token
 * (transformers pools at the last non-padding token). num_labels 1 with problem_type "regression" is regression.
 */
export class GPT2ForSequenceClassification extends GPT2Base implements SequenceClassifier {
  readonly architecture = 'GPT2ForSequenceClassification';
  readonly task = 'sequence-classification';
  readonly numLabels: number;
  readonly labels: string[];
  readonly regression: boolean;

  constructor(config: Record<string, unknown>, label = 'config.json') {
    const { numLabels, labels } = readLabels(config, label);
    super(config, label, numLabels);
    this.numLabels = numLabels;
    this.labels = labels;
    this.regression = config.problem_type === 'regression' || (numLabels === 1 && config.problem_type === undefined);
  }

  protected override optionalNames(name: string): boolean {
    return name === 'lm_head.weight';
  }

  /** Scores (B, numLabels) at position lastIndex[b] of each row of ids (B, T). */
  classify(ids: Int32Array, batch: number, lastIndex: Int32Array, opts: ForwardOptions = {}): Tensor {
    const x = this.hidden(ids, batch, opts); // (B, T, C)
    const [B, T, C] = x.shape;
    const rows = new Int32Array(B);
    for (let b = 0; b < B; b++) {
      const li = lastIndex[b];
      if (!(li >= 0 && li < T)) throw new AjarError('bad_input', `gpt2: last index ${li} outside a row of ${T} tokens`);
      rows[b] = b * T + li;
    }
    const pooled = gatherRowsOf(reshape(x, [B * T, C]), rows); // (B, C)
    return this.module.score!.forward(pooled); // (B, numLabels)
  }
}

/** Rows of a (N, C) tensor, differentiable (an embedding lookup into the activations). */
function gatherRowsOf(x: Tensor, rows: Int32Array): Tensor {
  return embedding(x, rows, [rows.length]);
}

/** num_labels and label names from id2label (transformers' convention), or num_labels alone. */
function readLabels(config: Record<string, unknown>, label: string): { numLabels: number; labels: string[] } {
  const id2label = config.id2label;
  if (id2label && typeof id2label === 'object') {
    const entries = Object.entries(id2label as Record<string, unknown>);
    const labels = new Array<string>(entries.length);
    for (const [k, v] of entries) {
      const i = Number(k);
      if (!Number.isInteger(i) || i < 0 || i >= entries.length) {
        throw new AjarError('bad_config', `${label}: id2label keys must be 0..${entries.length - 1}, got "${k}"`);
      }
      labels[i] = String(v);
    }
    return { numLabels: entries.length, labels };
  }
  const n = config.num_labels;
  if (typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= CONFIG_MAXIMA.num_labels) {
    return { numLabels: n, labels: Array.from({ length: n }, (_, i) => `LABEL_${i}`) };
  }
  if (n !== undefined) throw new AjarError('bad_config', `${label}: "num_labels" must be an integer from 1 to ${CONFIG_MAXIMA.num_labels}, got ${JSON.stringify(n)}`);
  throw new AjarError('bad_config', `${label}: a sequence classifier needs "id2label" or "num_labels"`);
}
