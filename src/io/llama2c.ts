// llama2.c (Karpathy) checkpoints and tokenizers -> a Hugging Face Llama folder: readers for the legacy (version 0)
// model .bin and tokenizer .bin, the weight/config/tokenizer translation, and an atomic folder writer.
// Formats: llama2.c's run.c (read_checkpoint, memory_map_weights, build_tokenizer) and export.py (legacy_export).
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { AjarError } from '../tensor/errors.js';
import { replaceDir, writeFileAtomic } from './atomic.js';
import { writeSafetensors, type WeightTensor } from './safetensors.js';
import { readRegularFile } from './safe-read.js';

/** The seven int32 of a llama2.c checkpoint header. */
export interface Llama2cConfig {
  dim: number; // hidden size (stories260K: 64)
  hidden_dim: number; // feed-forward size (172)
  n_layers: number; // 5
  n_heads: number; // query heads (8)
  n_kv_heads: number; // key/value heads (4); fewer than n_heads is grouped-query attention
  vocab_size: number; // 512 (the header stores it negative when the classifier is not shared)
  seq_len: number; // context length (512)
  shared_classifier: boolean; // true: the classifier is the token embedding
}

/** A llama2.c checkpoint's float32 arrays, each row-major as a PyTorch Linear weight (out, in). */
export interface Llama2cCheckpoint {
  config: Llama2cConfig;
  tokenEmbedding: Float32Array; // (vocab, dim)
  rmsAtt: Float32Array[]; // per layer (dim,)
  wq: Float32Array[]; // per layer (n_heads*hs, dim)
  wk: Float32Array[]; // per layer (n_kv_heads*hs, dim)
  wv: Float32Array[]; // per layer (n_kv_heads*hs, dim)
  wo: Float32Array[]; // per layer (dim, n_heads*hs)
  rmsFfn: Float32Array[]; // per layer (dim,)
  w1: Float32Array[]; // per layer (hidden, dim)
  w2: Float32Array[]; // per layer (dim, hidden)
  w3: Float32Array[]; // per layer (hidden, dim)
  rmsFinal: Float32Array; // (dim,)
  classifier: Float32Array | null; // (vocab, dim), null when shared with the embedding
}

/** A llama2.c tokenizer: SentencePiece pieces (spaces written back as '▁') with their scores, ids in order. */
export interface Llama2cTokenizer {
  maxTokenLength: number;
  pieces: string[]; // (vocab,) 0 <unk>, 1 <s>, 2 </s>, 3..258 <0x00>..<0xFF>, then the BPE pieces
  scores: Float32Array; // (vocab,)
}

/** llama2.c fixes these ids: run.c's encode/decode hard-code BOS 1, EOS 2 and byte fallback at 3 + byte. */
export const LLAMA2C_UNK = 0;
export const LLAMA2C_BOS = 1;
export const LLAMA2C_EOS = 2;
const BYTE_BASE = 3;
const NORMAL_BASE = BYTE_BASE + 256;
const HEADER_INTS = 7;
const SPACE = '\u2581'; // SentencePiece's '▁', which llama2.c's export.py wrote as ' '
/** export.py's version 1 and 2 files open with this magic ("ak42") instead of the legacy header. */
const MAGIC_AK42 = 0x616b3432;

/** The bytes of an input file; a missing one is AjarError(missingCode), an unreadable one AjarError(code). */
function readFileBytes(path: string, what: string, missingCode: string, code: string): Buffer {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new AjarError(missingCode, `${what} ${path} does not exist`);
  }
  if (!st.isFile()) throw new AjarError(code, `${what} ${path} is not a regular file`);
  // NOTE: the user named this file, so no folder bounds it; it must still be a regular file under the whole-file limit.
  return readRegularFile(path, { code, kind: 'whole' });
}

/** Little-endian float32 values from bytes [offset, offset + 4n). */
function floatsAt(view: DataView, offset: number, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = view.getFloat32(offset + 4 * i, true);
  return out;
}

/** Parse a legacy (version 0) llama2.c checkpoint; any header/size disagreement is AjarError('bad_weights'). */
export function parseLlama2cCheckpoint(bytes: Uint8Array, label: string): Llama2cCheckpoint {
  const fail = (problem: string): AjarError => new AjarError('bad_weights', `${label}: ${problem}`);
  if (bytes.length < 4 * HEADER_INTS) {
    throw fail(`${bytes.length} bytes is shorter than the 28-byte llama2.c header; is this a llama2.c model .bin?`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const h = Array.from({ length: HEADER_INTS }, (_, i) => view.getInt32(4 * i, true));
  if (h[0] === MAGIC_AK42) {
    throw fail('is a llama2.c version 1/2 export (magic "ak42"); only the legacy version 0 format is read: '
      + 'export it again with export.py --version 0');
  }
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, rawVocab, seqLen] = h;
  const config: Llama2cConfig = {
    dim, hidden_dim: hiddenDim, n_layers: nLayers, n_heads: nHeads, n_kv_heads: nKvHeads,
    vocab_size: Math.abs(rawVocab), seq_len: seqLen, shared_classifier: rawVocab > 0,
  };
  const header = `header (dim ${dim}, hidden_dim ${hiddenDim}, n_layers ${nLayers}, n_heads ${nHeads}, `
    + `n_kv_heads ${nKvHeads}, vocab_size ${rawVocab}, seq_len ${seqLen})`;
  if (h.some((v, i) => (i === 5 ? v === 0 : v <= 0))) throw fail(`${header} has a field that is not positive; is this a llama2.c model .bin?`);
  const hs = dim / nHeads;
  if (!Number.isInteger(hs) || hs % 2 !== 0) throw fail(`${header}: dim must split into n_heads heads of even size`);
  if (nHeads % nKvHeads !== 0) throw fail(`${header}: n_kv_heads must divide n_heads`);

  const V = config.vocab_size;
  const L = nLayers;
  const qDim = nHeads * hs;
  const kvDim = nKvHeads * hs;
  // Float counts in file order (memory_map_weights), then the legacy RoPE tables that are skipped.
  const perLayer = {
    rmsAtt: dim, wq: qDim * dim, wk: kvDim * dim, wv: kvDim * dim, wo: dim * qDim, rmsFfn: dim,
    w1: hiddenDim * dim, w2: dim * hiddenDim, w3: hiddenDim * dim,
  };
  const freqCis = seqLen * hs; // freq_cis_real and freq_cis_imag, seq_len * hs/2 each
  let floats = V * dim + dim + freqCis + (config.shared_classifier ? 0 : V * dim);
  for (const n of Object.values(perLayer)) floats += L * n;
  const expectedBytes = 4 * HEADER_INTS + 4 * floats;
  if (bytes.length !== expectedBytes) {
    const what = bytes.length < expectedBytes ? 'truncated' : 'longer than its header says';
    throw fail(`${what}: the ${header} needs ${expectedBytes} bytes, the file has ${bytes.length}`);
  }

  let at = 4 * HEADER_INTS;
  const take = (n: number): Float32Array => {
    const out = floatsAt(view, at, n);
    at += 4 * n;
    return out;
  };
  const layers = (n: number): Float32Array[] => Array.from({ length: L }, () => take(n));
  const tokenEmbedding = take(V * dim);
  const rmsAtt = layers(perLayer.rmsAtt);
  const wq = layers(perLayer.wq);
  const wk = layers(perLayer.wk);
  const wv = layers(perLayer.wv);
  const wo = layers(perLayer.wo);
  const rmsFfn = layers(perLayer.rmsFfn);
  const w1 = layers(perLayer.w1);
  const w2 = layers(perLayer.w2);
  const w3 = layers(perLayer.w3);
  const rmsFinal = take(dim);
  at += 4 * freqCis;
  const classifier = config.shared_classifier ? null : take(V * dim);
  return { config, tokenEmbedding, rmsAtt, wq, wk, wv, wo, rmsFfn, w1, w2, w3, rmsFinal, classifier };
}

/**
 * Read a legacy llama2.c checkpoint file.
 * NOTE: the file is read whole, so Node's 2 GiB file-read limit applies (the tinyllamas up to 110M fit; a Llama 2 7B
 * export does not, and is refused with a bad_weights error that says so).
 */
export function readLlama2cCheckpoint(path: string): Llama2cCheckpoint {
  return parseLlama2cCheckpoint(readFileBytes(path, 'llama2.c model', 'model_not_found', 'bad_weights'), path);
}

/**
 * Parse a llama2.c tokenizer .bin for a model of vocabSize tokens (the file does not store the count): int32
 * max_token_length, then per token float32 score, int32 length, the UTF-8 bytes. export.py wrote SentencePiece's
 * '▁' as ' ' and BOS/EOS as "\n<s>\n" / "\n</s>\n"; both are undone here so the pieces are SentencePiece's own.
 */
export function parseLlama2cTokenizer(bytes: Uint8Array, vocabSize: number, label: string): Llama2cTokenizer {
  const fail = (problem: string): AjarError => new AjarError('bad_tokenizer', `${label}: ${problem}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  if (bytes.length < 4) throw fail('truncated: no max_token_length header');
  const maxTokenLength = view.getInt32(0, true);
  if (maxTokenLength <= 0) throw fail(`max_token_length ${maxTokenLength} is not positive; is this a llama2.c tokenizer .bin?`);
  const pieces: string[] = [];
  const scores = new Float32Array(vocabSize);
  let at = 4;
  for (let id = 0; id < vocabSize; id++) {
    if (at + 8 > bytes.length) throw fail(`truncated: ends at token ${id} of the model's ${vocabSize}`);
    scores[id] = view.getFloat32(at, true);
    const len = view.getInt32(at + 4, true);
    at += 8;
    if (len < 0 || len > maxTokenLength) throw fail(`token ${id} has length ${len}, outside 0..max_token_length ${maxTokenLength}`);
    if (at + len > bytes.length) throw fail(`truncated: token ${id} needs ${len} bytes, ${bytes.length - at} are left`);
    let text: string;
    try {
      text = utf8.decode(bytes.subarray(at, at + len));
    } catch {
      throw fail(`token ${id} is not valid UTF-8`);
    }
    at += len;
    pieces.push(text);
  }
  if (at !== bytes.length) {
    throw fail(`${bytes.length - at} bytes follow the model's ${vocabSize} tokens; is it the tokenizer of this model?`);
  }
  return { maxTokenLength, pieces: toSentencePiece(pieces, label), scores };
}

/** Check llama2.c's fixed layout (unk, BOS, EOS, 256 byte tokens) and write the pieces as SentencePiece does. */
function toSentencePiece(raw: string[], label: string): string[] {
  const fail = (problem: string): AjarError => new AjarError('bad_tokenizer', `${label}: ${problem}`);
  if (raw.length < NORMAL_BASE) throw fail(`${raw.length} tokens; a llama2.c tokenizer has at least ${NORMAL_BASE} (unk, BOS, EOS, 256 bytes)`);
  const fixed: Array<[number, string, string]> = [[LLAMA2C_UNK, '<unk>', '<unk>'], [LLAMA2C_BOS, '\n<s>\n', '<s>'], [LLAMA2C_EOS, '\n</s>\n', '</s>']];
  const pieces = [...raw];
  for (const [id, written, piece] of fixed) {
    if (raw[id] !== written) throw fail(`token ${id} is ${JSON.stringify(raw[id])}, not llama2.c's ${JSON.stringify(written)}`);
    pieces[id] = piece;
  }
  for (let b = 0; b < 256; b++) {
    const want = `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;
    if (raw[BYTE_BASE + b] !== want) {
      throw fail(`token ${BYTE_BASE + b} is ${JSON.stringify(raw[BYTE_BASE + b])}, not the byte-fallback token ${want}`);
    }
  }
  const seen = new Map<string, number>();
  for (let id = NORMAL_BASE; id < raw.length; id++) {
    if (raw[id] === '') throw fail(`token ${id} is empty`);
    pieces[id] = raw[id].replaceAll(' ', SPACE);
  }
  pieces.forEach((p, id) => {
    const other = seen.get(p);
    if (other !== undefined) throw fail(`tokens ${other} and ${id} are both ${JSON.stringify(p)}`);
    seen.set(p, id);
  });
  return pieces;
}

export function readLlama2cTokenizer(path: string, vocabSize: number): Llama2cTokenizer {
  return parseLlama2cTokenizer(readFileBytes(path, 'llama2.c tokenizer', 'bad_tokenizer', 'bad_tokenizer'), vocabSize, path);
}

/**
 * Reorder each head's rows from llama2.c's interleaved RoPE pairs (2i, 2i+1) to Hugging Face's halves (i, i + hs/2),
 * as transformers' convert_llama_weights_to_hf.py permute(w, n_heads, dim1, dim2):
 * w.view(n_heads, dim1 // n_heads // 2, 2, dim2).transpose(1, 2).reshape(dim1, dim2).
 * w is (nHeads*hs, cols); the result row h*hs + r*hs/2 + i is the input row h*hs + 2i + r.
 */
export function permuteRope(w: Float32Array, nHeads: number, cols: number): Float32Array {
  const rows = w.length / cols;
  const hs = rows / nHeads;
  const half = hs / 2;
  const out = new Float32Array(w.length); // (nHeads*hs, cols)
  for (let h = 0; h < nHeads; h++) {
    for (let r = 0; r < 2; r++) {
      for (let i = 0; i < half; i++) {
        const src = (h * hs + 2 * i + r) * cols;
        const dst = (h * hs + r * half + i) * cols;
        out.set(w.subarray(src, src + cols), dst);
      }
    }
  }
  return out;
}

/** config.json of the Hugging Face LlamaForCausalLM equivalent to a llama2.c checkpoint. */
export function llama2cHfConfig(c: Llama2cConfig): Record<string, unknown> {
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: c.vocab_size,
    hidden_size: c.dim,
    intermediate_size: c.hidden_dim,
    num_hidden_layers: c.n_layers,
    num_attention_heads: c.n_heads,
    num_key_value_heads: c.n_kv_heads,
    head_dim: c.dim / c.n_heads,
    hidden_act: 'silu',
    max_position_embeddings: c.seq_len,
    initializer_range: 0.02,
    rms_norm_eps: 1e-5, // run.c's rmsnorm
    rope_theta: 10000, // run.c's RoPE base
    rope_scaling: null,
    attention_bias: false,
    attention_dropout: 0,
    mlp_bias: false,
    pretraining_tp: 1,
    tie_word_embeddings: c.shared_classifier,
    bos_token_id: LLAMA2C_BOS,
    eos_token_id: LLAMA2C_EOS,
    use_cache: true,
    torch_dtype: 'float32',
  };
}

/** The checkpoint's tensors under transformers' LlamaForCausalLM names (lm_head only when not shared). */
export function llama2cHfWeights(ck: Llama2cCheckpoint): Map<string, WeightTensor> {
  const c = ck.config;
  const hs = c.dim / c.n_heads;
  const out = new Map<string, WeightTensor>();
  const put = (name: string, shape: number[], data: Float32Array): void => {
    out.set(name, { shape, data });
  };
  put('model.embed_tokens.weight', [c.vocab_size, c.dim], ck.tokenEmbedding);
  for (let l = 0; l < c.n_layers; l++) {
    const p = `model.layers.${l}`;
    put(`${p}.input_layernorm.weight`, [c.dim], ck.rmsAtt[l]);
    put(`${p}.self_attn.q_proj.weight`, [c.n_heads * hs, c.dim], permuteRope(ck.wq[l], c.n_heads, c.dim));
    put(`${p}.self_attn.k_proj.weight`, [c.n_kv_heads * hs, c.dim], permuteRope(ck.wk[l], c.n_kv_heads, c.dim));
    put(`${p}.self_attn.v_proj.weight`, [c.n_kv_heads * hs, c.dim], ck.wv[l]);
    put(`${p}.self_attn.o_proj.weight`, [c.dim, c.n_heads * hs], ck.wo[l]);
    put(`${p}.post_attention_layernorm.weight`, [c.dim], ck.rmsFfn[l]);
    put(`${p}.mlp.gate_proj.weight`, [c.hidden_dim, c.dim], ck.w1[l]);
    put(`${p}.mlp.up_proj.weight`, [c.hidden_dim, c.dim], ck.w3[l]);
    put(`${p}.mlp.down_proj.weight`, [c.dim, c.hidden_dim], ck.w2[l]);
  }
  put('model.norm.weight', [c.dim], ck.rmsFinal);
  if (ck.classifier) put('lm_head.weight', [c.vocab_size, c.dim], ck.classifier);
  return out;
}

/**
 * The BPE merges of a SentencePiece BPE vocabulary, derived as transformers' convert_slow_tokenizer
 * (SentencePieceExtractor.extract) does: for every piece, each split into two pieces that are both in the
 * vocabulary, ordered by (left id, right id); then all of them by the merged piece's score, highest first (a stable
 * sort keeps id order among equal scores). Ranking merges by score is what makes Hugging Face's BPE reproduce
 * run.c's encode, which merges the adjacent pair whose concatenation scores highest.
 * NOTE: only normal pieces (id >= 259) take part: unk, BOS, EOS and the <0xNN> byte tokens are never formed by
 * merging in run.c (its byte tokens only come from the byte fallback).
 */
export function sentencePieceMerges(tok: Llama2cTokenizer): Array<[string, string]> {
  const ids = new Map<string, number>();
  for (let id = NORMAL_BASE; id < tok.pieces.length; id++) ids.set(tok.pieces[id], id);
  const all: Array<{ left: string; right: string; score: number }> = [];
  for (let id = NORMAL_BASE; id < tok.pieces.length; id++) {
    const chars = Array.from(tok.pieces[id]); // code points, as Python's str slicing
    const local: Array<{ left: string; right: string; l: number; r: number }> = [];
    for (let k = 1; k < chars.length; k++) {
      const left = chars.slice(0, k).join('');
      const right = chars.slice(k).join('');
      const l = ids.get(left);
      const r = ids.get(right);
      if (l !== undefined && r !== undefined) local.push({ left, right, l, r });
    }
    local.sort((a, b) => a.l - b.l || a.r - b.r);
    for (const m of local) all.push({ left: m.left, right: m.right, score: tok.scores[id] });
  }
  all.sort((a, b) => b.score - a.score);
  return all.map((m) => [m.left, m.right]);
}

const SPECIALS: ReadonlyArray<[number, string]> = [[LLAMA2C_UNK, '<unk>'], [LLAMA2C_BOS, '<s>'], [LLAMA2C_EOS, '</s>']];

/** An added special token's flags, as transformers writes them for <unk>, <s> and </s>. */
function tokenFlags(content: string): Record<string, unknown> {
  return { content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
}

/**
 * tokenizer.json in the layout transformers' LlamaConverter writes for a (legacy) Llama SentencePiece BPE model:
 * normalizer Prepend('▁') + Replace(' ', '▁') (run.c's dummy leading space), no pre-tokenizer, BPE with byte
 * fallback, a post-processor that puts <s> first, and the decoder that undoes '▁', bytes and the leading space.
 */
export function llama2cTokenizerJson(tok: Llama2cTokenizer): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  tok.pieces.forEach((p, id) => {
    vocab[p] = id;
  });
  const bos = { SpecialToken: { id: '<s>', type_id: 0 } };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIALS.map(([id, content]) => ({ id, ...tokenFlags(content) })),
    normalizer: {
      type: 'Sequence',
      normalizers: [{ type: 'Prepend', prepend: SPACE }, { type: 'Replace', pattern: { String: ' ' }, content: SPACE }],
    },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [bos, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [bos, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '<s>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [LLAMA2C_BOS], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: SPACE }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges: sentencePieceMerges(tok),
    },
  };
}

/** tokenizer_config.json as transformers writes it for LlamaTokenizerFast (BOS added, EOS not). */
export function llama2cTokenizerConfig(seqLen: number): Record<string, unknown> {
  const decoder: Record<string, unknown> = {};
  for (const [id, content] of SPECIALS) decoder[String(id)] = tokenFlags(content);
  return {
    add_bos_token: true,
    add_eos_token: false,
    added_tokens_decoder: decoder,
    bos_token: '<s>',
    eos_token: '</s>',
    unk_token: '<unk>',
    pad_token: null,
    clean_up_tokenization_spaces: false,
    legacy: true,
    model_max_length: seqLen,
    tokenizer_class: 'LlamaTokenizerFast',
  };
}

export interface ConvertLlama2cOptions {
  model: string; // llama2.c model .bin
  tokenizer: string; // llama2.c tokenizer .bin
  out: string; // the Hugging Face folder to write
  /** Replace a non-empty out folder (otherwise refused). */
  force?: boolean;
  /** Called after each step: done of total, and what was just finished. */
  onProgress?: (done: number, total: number, step: string) => void;
}

export interface ConvertLlama2cResult {
  out: string;
  config: Llama2cConfig;
  tensors: number;
  parameters: number;
  merges: number;
  files: string[];
}

function checkOut(out: string, force: boolean): void {
  if (!existsSync(out)) return;
  if (!statSync(out).isDirectory()) throw new AjarError('out_exists', `${out} exists and is not a folder; choose a new --out`);
  const n = readdirSync(out).length;
  if (n > 0 && !force) {
    throw new AjarError('out_exists', `${out} is not empty (${n} entr${n === 1 ? 'y' : 'ies'}); choose a new --out, or pass --force to replace it`);
  }
}

/**
 * Convert a llama2.c model and tokenizer into a Hugging Face Llama folder (config.json, model.safetensors,
 * tokenizer.json, tokenizer_config.json, generation_config.json). Everything is read and checked first, then
 * written into a temp folder beside out and renamed into place, so a failure leaves nothing half-written.
 */
export function convertLlama2c(opts: ConvertLlama2cOptions): ConvertLlama2cResult {
  const out = resolve(opts.out);
  const total = 4;
  const progress = opts.onProgress ?? ((): void => undefined);
  checkOut(out, opts.force === true);
  // NOTE: both inputs are read and checked before the first progress report, so a bad input's error is the only
  // thing the CLI prints.
  const ck = readLlama2cCheckpoint(opts.model);
  const tok = readLlama2cTokenizer(opts.tokenizer, ck.config.vocab_size);
  progress(1, total, 'read model and tokenizer');
  const tokenizerJson = llama2cTokenizerJson(tok);
  const weights = llama2cHfWeights(ck);
  progress(2, total, 'translated weights and tokenizer');

  const stamp = `${process.pid}-${Date.now()}`;
  const tmp = join(dirname(out), `.${basename(out)}.tmp-${stamp}`);
  const files: Record<string, unknown> = {
    'config.json': llama2cHfConfig(ck.config),
    'tokenizer.json': tokenizerJson,
    'tokenizer_config.json': llama2cTokenizerConfig(ck.config.seq_len),
    'generation_config.json': { bos_token_id: LLAMA2C_BOS, eos_token_id: LLAMA2C_EOS },
  };
  try {
    mkdirSync(dirname(out), { recursive: true });
    mkdirSync(tmp);
    writeSafetensors(join(tmp, 'model.safetensors'), weights, { format: 'pt' });
    progress(3, total, 'wrote model.safetensors');
    for (const [name, obj] of Object.entries(files)) writeFileAtomic(join(tmp, name), `${JSON.stringify(obj, null, 2)}\n`);
    replaceDir(tmp, out, join(dirname(out), `.${basename(out)}.old-${stamp}`));
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    if (e instanceof AjarError) throw e;
    throw new AjarError('write_failed', `cannot write ${out}: ${e instanceof Error ? e.message : String(e)}`);
  }
  progress(4, total, 'done');
  let parameters = 0;
  for (const t of weights.values()) parameters += t.data.length;
  const merges = (tokenizerJson.model as { merges: unknown[] }).merges.length;
  return {
    out, config: ck.config, tensors: weights.size, parameters, merges,
    files: ['model.safetensors', ...Object.keys(files)],
  };
}
