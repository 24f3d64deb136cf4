// The Llama family (Touvron et al. 2023, "LLaMA: Open and Efficient Foundation Language Models"; Llama 2 and 3)
// as Hugging Face transformers' modeling_llama.py defines LlamaForCausalLM: RMSNorm pre-norm blocks, rotate-half
// RoPE, grouped-query attention (num_key_value_heads), a SwiGLU MLP. Mistral (sliding_window) and Qwen2
// (q/k/v biases) are the same network with other config defaults, as modeling_mistral.py / modeling_qwen2.py.
import { KVCache, Embedding, Linear, Module, ModuleList, RMSNorm, asTensorSource, lmHeadLogits, type Weights } from '../nn/index.js';
import {
  add, dropout, groupedCausalAttention, rope, siluMul, tensor, AjarError, type Rng, type Tensor,
} from '../tensor/index.js';
import { normalFill } from '../tensor/random.js';
import { fmtShape } from '../tensor/shape.js';
import { ConfigReader, checkTokenInput, extraLayersNote } from './config.js';
import type { CausalLM, ForwardOptions } from './types.js';

/** The three config.json dialects this file reads. */
export type LlamaFlavour = 'llama' | 'mistral' | 'qwen2';

/** config.json fields the Llama family reads, with transformers' LlamaConfig defaults (Llama 2 7B). */
export interface LlamaConfig {
  vocab_size: number; // 32000 // Llama 2's SentencePiece BPE (Mistral 32000, Qwen2 151936)
  hidden_size: number; // 4096
  intermediate_size: number; // 11008
  num_hidden_layers: number; // 32
  num_attention_heads: number; // 32
  num_key_value_heads: number; // = num_attention_heads (multi-head); fewer is grouped-query attention
  head_dim: number; // hidden_size / num_attention_heads
  hidden_act: string; // 'silu'
  max_position_embeddings: number; // 2048 (Mistral 131072, Qwen2 32768)
  initializer_range: number; // 0.02
  rms_norm_eps: number; // 1e-6
  tie_word_embeddings: boolean; // false
  rope_theta: number; // 10000
  rope_scaling: RopeScaling | null; // null
  attention_bias: boolean; // false (Qwen2: q/k/v biases always, o_proj none)
  mlp_bias: boolean; // false
  o_proj_bias: boolean; // = attention_bias (Qwen2: false, its biases are on q, k and v only)
  attention_dropout: number; // 0.0
  sliding_window: number | null; // null (Mistral: 4096; Qwen2 only with use_sliding_window)
  bos_token_id: number | null; // 1
  eos_token_id: number | null; // 2
}

/** rope_scaling kinds ajar computes: transformers' ROPE_INIT_FUNCTIONS "default", "linear" and "llama3". */
export type RopeScaling =
  | { type: 'linear'; factor: number }
  | { type: 'llama3'; factor: number; low_freq_factor: number; high_freq_factor: number; original_max_position_embeddings: number };

const FLAVOUR_DEFAULTS: Record<LlamaFlavour, { vocab: number; maxPos: number; bias: boolean; window: number | null; tie: boolean }> = {
  llama: { vocab: 32000, maxPos: 2048, bias: false, window: null, tie: false },
  mistral: { vocab: 32000, maxPos: 4096 * 32, bias: false, window: 4096, tie: false },
  qwen2: { vocab: 151936, maxPos: 32768, bias: true, window: null, tie: false },
};

function readRopeScaling(raw: Record<string, unknown>, label: string): RopeScaling | null {
  const rs = raw.rope_scaling;
  if (rs === undefined || rs === null) return null;
  if (typeof rs !== 'object' || Array.isArray(rs)) {
    throw new AjarError('bad_config', `${label}: "rope_scaling" must be an object or null, got ${JSON.stringify(rs)}`);
  }
  const r = new ConfigReader(rs as Record<string, unknown>, `${label}: rope_scaling`);
  const o = rs as Record<string, unknown>;
  const type = o.rope_type ?? o.type;
  if (type === 'default') return null;
  const factor = r.num('factor', 1, Number.MIN_VALUE);
  if (type === 'linear') return { type, factor };
  if (type === 'llama3') {
    const scaling = {
      type, factor, low_freq_factor: r.num('low_freq_factor', 1, Number.MIN_VALUE),
      high_freq_factor: r.num('high_freq_factor', 4, Number.MIN_VALUE),
      original_max_position_embeddings: r.int('original_max_position_embeddings', 8192),
    } as const;
    if (scaling.high_freq_factor <= scaling.low_freq_factor) {
      throw new AjarError('bad_config', `${label}: rope_scaling.high_freq_factor must exceed low_freq_factor`);
    }
    return scaling;
  }
  throw new AjarError('bad_config', `${label}: "rope_scaling" type ${JSON.stringify(type)} is not supported ` +
    '(supported: default, linear, llama3)');
}

export function readLlamaConfig(raw: Record<string, unknown>, flavour: LlamaFlavour, label = 'config.json'): LlamaConfig {
  const d = FLAVOUR_DEFAULTS[flavour];
  const r = new ConfigReader(raw, label);
  const hidden = r.int('hidden_size', 4096);
  const heads = r.int('num_attention_heads', 32);
  const kvHeads = r.int('num_key_value_heads', heads);
  const headDim = r.optInt('head_dim', null) ?? hidden / heads;
  if (!Number.isInteger(headDim) || headDim < 2 || headDim % 2 !== 0) {
    throw new AjarError('bad_config', `${label}: "head_dim" (${headDim}, hidden_size / num_attention_heads when absent) ` +
      'must be an even integer');
  }
  if (heads % kvHeads !== 0) {
    throw new AjarError('bad_config', `${label}: "num_key_value_heads" (${kvHeads}) must divide num_attention_heads (${heads})`);
  }
  const act = r.str('hidden_act', 'silu');
  if (act !== 'silu' && act !== 'swish') {
    throw new AjarError('bad_config', `${label}: "hidden_act" ${JSON.stringify(act)} is not supported (supported: silu)`);
  }
  let window = d.window;
  if ('sliding_window' in raw) window = r.optInt('sliding_window', null);
  if (flavour === 'qwen2' && raw.use_sliding_window !== true) window = null;
  if (flavour === 'qwen2' && raw.use_sliding_window === true) {
    // NOTE: Qwen2 windows only layers from max_window_layers on; ajar windows all or none, so refuse the mix.
    const layers = r.int('num_hidden_layers', 32);
    if (r.int('max_window_layers', 28, 0) < layers) {
      throw new AjarError('bad_config', `${label}: "use_sliding_window" with max_window_layers below num_hidden_layers is not supported`);
    }
    window = null;
  }
  return {
    vocab_size: r.int('vocab_size', d.vocab),
    hidden_size: hidden,
    intermediate_size: r.int('intermediate_size', 11008),
    num_hidden_layers: r.int('num_hidden_layers', 32),
    num_attention_heads: heads,
    num_key_value_heads: kvHeads,
    head_dim: headDim,
    hidden_act: act,
    max_position_embeddings: r.int('max_position_embeddings', d.maxPos),
    initializer_range: r.num('initializer_range', 0.02),
    rms_norm_eps: r.num('rms_norm_eps', 1e-6),
    tie_word_embeddings: r.bool('tie_word_embeddings', d.tie),
    rope_theta: r.num('rope_theta', 10000, Number.MIN_VALUE),
    rope_scaling: readRopeScaling(raw, label),
    attention_bias: flavour === 'qwen2' ? true : r.bool('attention_bias', false),
    mlp_bias: r.bool('mlp_bias', false),
    o_proj_bias: flavour === 'qwen2' ? false : r.bool('attention_bias', false),
    attention_dropout: r.num('attention_dropout', 0),
    sliding_window: window,
    bos_token_id: r.tokenId('bos_token_id', flavour === 'llama' ? 1 : null),
    eos_token_id: r.tokenId('eos_token_id', flavour === 'llama' ? 2 : null),
  };
}

/**
 * RoPE inverse frequencies (hs / 2), float32 as transformers computes them:
 * 1 / theta^(2i / hs), then rope_scaling's adjustment (linear: / factor; llama3: the wavelength bands).
 */
export function ropeInvFreq(cfg: LlamaConfig): Float32Array {
  const hs = cfg.head_dim;
  const inv = new Float32Array(hs / 2);
  for (let i = 0; i < hs / 2; i++) {
    inv[i] = Math.fround(1 / Math.fround(cfg.rope_theta ** Math.fround((2 * i) / hs)));
  }
  const s = cfg.rope_scaling;
  if (s?.type === 'linear') {
    for (let i = 0; i < inv.length; i++) inv[i] = Math.fround(inv[i] / s.factor);
  } else if (s?.type === 'llama3') {
    const lowWavelen = s.original_max_position_embeddings / s.low_freq_factor;
    const highWavelen = s.original_max_position_embeddings / s.high_freq_factor;
    for (let i = 0; i < inv.length; i++) {
      const f = inv[i];
      const wavelen = (2 * Math.PI) / f;
      if (wavelen > lowWavelen) {
        inv[i] = Math.fround(f / s.factor);
      } else if (wavelen >= highWavelen) {
        const smooth = (s.original_max_position_embeddings / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        inv[i] = Math.fround((1 - smooth) * (f / s.factor) + smooth * f);
      }
    }
  }
  return inv;
}

class LlamaAttention extends Module {
  readonly q_proj: Linear;
  readonly k_proj: Linear;
  readonly v_proj: Linear;
  readonly o_proj: Linear;
  constructor(readonly cfg: LlamaConfig, readonly layerIdx: number) {
    super();
    const { hidden_size: C, num_attention_heads: H, num_key_value_heads: Hkv, head_dim: hs, attention_bias: bias } = cfg;
    this.q_proj = this.child('q_proj', new Linear(C, H * hs, bias));
    this.k_proj = this.child('k_proj', new Linear(C, Hkv * hs, bias));
    this.v_proj = this.child('v_proj', new Linear(C, Hkv * hs, bias));
    this.o_proj = this.child('o_proj', new Linear(H * hs, C, cfg.o_proj_bias));
  }

  /** x (B, T, C); cos, sin (T, hs/2) for the positions of x. Returns (B, T, C). */
  forward(x: Tensor, cos: Tensor, sin: Tensor, opts: ForwardOptions, training: boolean): Tensor {
    const { num_attention_heads: H, num_key_value_heads: Hkv, head_dim: hs } = this.cfg;
    const q = rope(this.q_proj.forward(x), H, cos, sin); // (B, T, H*hs)
    let k = rope(this.k_proj.forward(x), Hkv, cos, sin); // (B, T, Hkv*hs)
    let v = this.v_proj.forward(x); // (B, T, Hkv*hs)
    if (opts.cache) [k, v] = opts.cache.append(this.layerIdx, k, v);
    const p = this.cfg.attention_dropout;
    const y = groupedCausalAttention(q, k, v, {
      nHead: H, nKvHead: Hkv, scale: 1 / Math.sqrt(hs), window: this.cfg.sliding_window,
      dropout: training && p > 0 ? (t) => dropout(t, p, opts.rng!, true) : undefined,
    }); // (B, T, H*hs)
    return this.o_proj.forward(y);
  }
}

class LlamaMLP extends Module {
  readonly gate_proj: Linear;
  readonly up_proj: Linear;
  readonly down_proj: Linear;
  constructor(cfg: LlamaConfig) {
    super();
    const { hidden_size: C, intermediate_size: I, mlp_bias: bias } = cfg;
    this.gate_proj = this.child('gate_proj', new Linear(C, I, bias));
    this.up_proj = this.child('up_proj', new Linear(C, I, bias));
    this.down_proj = this.child('down_proj', new Linear(I, C, bias));
  }

  forward(x: Tensor): Tensor {
    return this.down_proj.forward(siluMul(this.gate_proj.forward(x), this.up_proj.forward(x))); // (B, T, C)
  }
}

class LlamaDecoderLayer extends Module {
  readonly self_attn: LlamaAttention;
  readonly mlp: LlamaMLP;
  readonly input_layernorm: RMSNorm;
  readonly post_attention_layernorm: RMSNorm;
  constructor(cfg: LlamaConfig, layerIdx: number) {
    super();
    this.self_attn = this.child('self_attn', new LlamaAttention(cfg, layerIdx));
    this.mlp = this.child('mlp', new LlamaMLP(cfg));
    this.input_layernorm = this.child('input_layernorm', new RMSNorm(cfg.hidden_size, cfg.rms_norm_eps));
    this.post_attention_layernorm = this.child('post_attention_layernorm', new RMSNorm(cfg.hidden_size, cfg.rms_norm_eps));
  }

  forward(x: Tensor, cos: Tensor, sin: Tensor, opts: ForwardOptions, training: boolean): Tensor {
    const h = add(x, this.self_attn.forward(this.input_layernorm.forward(x), cos, sin, opts, training));
    return add(h, this.mlp.forward(this.post_attention_layernorm.forward(h)));
  }
}

class LlamaModel extends Module {
  readonly embed_tokens: Embedding;
  readonly layers: LlamaDecoderLayer[] = [];
  readonly norm: RMSNorm;
  constructor(cfg: LlamaConfig) {
    super();
    this.embed_tokens = this.child('embed_tokens', new Embedding(cfg.vocab_size, cfg.hidden_size));
    const list = this.child('layers', new ModuleList());
    for (let i = 0; i < cfg.num_hidden_layers; i++) this.layers.push(list.push(new LlamaDecoderLayer(cfg, i)));
    this.norm = this.child('norm', new RMSNorm(cfg.hidden_size, cfg.rms_norm_eps));
  }
}

class LlamaRoot extends Module {
  readonly model: LlamaModel;
  readonly lm_head: Linear | null;
  constructor(cfg: LlamaConfig) {
    super();
    this.model = this.child('model', new LlamaModel(cfg));
    this.lm_head = cfg.tie_word_embeddings ? null : this.child('lm_head', new Linear(cfg.hidden_size, cfg.vocab_size, false));
  }
}

/** Checkpoint tensors loaders ignore: the rotary inverse-frequency buffers some older saves include. */
const IGNORED = /(^|\.)rotary_emb\.inv_freq$/;

type StateDict = Map<string, { shape: readonly number[]; data: Float32Array }>;

/** LlamaForCausalLM, MistralForCausalLM and Qwen2ForCausalLM. */
export class LlamaForCausalLM implements CausalLM {
  readonly task = 'causal-lm';
  readonly cfg: LlamaConfig;
  readonly module: LlamaRoot;
  private readonly invFreq: Float32Array;

  constructor(readonly config: Record<string, unknown>, readonly architecture: string, flavour: LlamaFlavour,
    label = 'config.json') {
    this.cfg = readLlamaConfig(config, flavour, label);
    this.invFreq = ropeInvFreq(this.cfg);
    this.module = new LlamaRoot(this.cfg);
  }

  get vocabSize(): number {
    return this.cfg.vocab_size;
  }

  get contextLength(): number {
    return this.cfg.max_position_embeddings;
  }

  get eosTokenId(): number | null {
    return this.cfg.eos_token_id;
  }

  newCache(): KVCache {
    return new KVCache(this.cfg.num_hidden_layers, 1);
  }

  /** cos and sin (T, hs/2) for positions past .. past + T - 1, float32 as transformers' rotary embedding. */
  private rotary(past: number, T: number): [Tensor, Tensor] {
    const half = this.invFreq.length;
    const cos = new Float32Array(T * half);
    const sin = new Float32Array(T * half);
    for (let t = 0; t < T; t++) {
      for (let i = 0; i < half; i++) {
        const angle = Math.fround((past + t) * this.invFreq[i]);
        cos[t * half + i] = Math.cos(angle);
        sin[t * half + i] = Math.sin(angle);
      }
    }
    return [tensor(cos, [T, half]), tensor(sin, [T, half])];
  }

  /** The final hidden states (B, T, C) after the last norm. */
  hidden(ids: Int32Array, batch: number, opts: ForwardOptions = {}): Tensor {
    const past = opts.cache ? opts.cache.length : 0;
    const T = checkTokenInput(this.architecture, ids, batch, past, this.contextLength, this.cfg.vocab_size);
    const training = this.module.training && opts.rng !== undefined;
    const [cos, sin] = this.rotary(past, T);
    const m = this.module.model;
    let x = m.embed_tokens.forward(ids, [batch, T]); // (B, T, C)
    for (const layer of m.layers) x = layer.forward(x, cos, sin, opts, training);
    return m.norm.forward(x); // (B, T, C)
  }

  forward(ids: Int32Array, batch: number, opts: ForwardOptions = {}): Tensor {
    const x = this.hidden(ids, batch, opts); // (B, T, C)
    return lmHeadLogits(x, this.module.lm_head, this.module.model.embed_tokens); // (B, T, V)
  }

  checkWeights(weights: Weights, label: string): void {
    const source = asTensorSource(weights);
    const expected = new Set(this.module.namedParameters().map(([n]) => n));
    const tiedHead = (k: string): boolean => k === 'lm_head.weight' && this.cfg.tie_word_embeddings;
    const extra = [...source.keys()].filter((k) => !expected.has(k) && !IGNORED.test(k) && !tiedHead(k));
    if (extra.length > 0) {
      throw new AjarError('bad_weights', `${label}: unexpected tensors for ${this.architecture}: ${extra.slice(0, 5).join(', ')}` +
        `${extra.length > 5 ? ` and ${extra.length - 5} more` : ''}`
        + `${extraLayersNote(extra, 'num_hidden_layers', this.cfg.num_hidden_layers)} (is config.json's architecture right?)`);
    }
    this.module.checkStateDict(source, label, (n) => n, (n) => this.shapeFields(n));
    const storedHead = this.cfg.tie_word_embeddings ? source.shapeOf('lm_head.weight') : undefined;
    const { vocab_size: V, hidden_size: C } = this.cfg;
    if (storedHead !== undefined && !(storedHead.length === 2 && storedHead[0] === V && storedHead[1] === C)) {
      throw new AjarError('bad_weights', `${label}: tensor 'lm_head.weight' has shape ${fmtShape(storedHead)}, ` +
        `the config implies ${fmtShape([V, C])} (tied to model.embed_tokens.weight)`);
    }
  }

  /** The config.json fields, with their values, that set a parameter's shape. */
  private shapeFields(name: string): string {
    const { vocab_size: V, hidden_size: C, intermediate_size: I, num_attention_heads: H, num_key_value_heads: Hkv, head_dim: hs } = this.cfg;
    const layer = /\.layers\.\d+\./.test(name) ? `, num_hidden_layers ${this.cfg.num_hidden_layers}` : '';
    if (/embed_tokens|lm_head/.test(name)) return `vocab_size ${V}, hidden_size ${C}`;
    if (/q_proj|o_proj/.test(name)) return `num_attention_heads ${H} x head_dim ${hs}, hidden_size ${C}${layer}`;
    if (/k_proj|v_proj/.test(name)) return `num_key_value_heads ${Hkv} x head_dim ${hs}, hidden_size ${C}${layer}`;
    if (/mlp\./.test(name)) return `intermediate_size ${I}, hidden_size ${C}${layer}`;
    return `hidden_size ${C}${layer}`;
  }

  loadWeights(weights: Weights, label: string): void {
    this.checkWeights(weights, label);
    this.module.loadStateDict(weights, label);
  }

  stateDict(): StateDict {
    const out: StateDict = new Map();
    for (const [name, t] of this.module.namedParameters()) out.set(name, { shape: t.shape, data: t.data });
    return out;
  }

  /**
   * transformers' LlamaPreTrainedModel._init_weights: every Linear and Embedding weight N(0, initializer_range)
   * in module order, biases 0, RMSNorm weights 1.
   */
  initWeights(rng: Rng): void {
    const std = this.cfg.initializer_range;
    for (const [name, t] of this.module.namedParameters()) {
      if (name.endsWith('layernorm.weight') || name === 'model.norm.weight') t.data.fill(1);
      else if (name.endsWith('.bias')) t.data.fill(0);
      else normalFill(t.data, rng, std);
    }
  }
}
