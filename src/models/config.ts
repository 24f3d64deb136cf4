// Typed reads of config.json fields with clear errors naming the field (code 'bad_config'); every size is bounded.
import { AjarError } from '../tensor/errors.js';

/**
 * The largest value accepted for each size of a config.json, far above any released model's (Llama 3.1 405B:
 * 126 layers, hidden 16384, intermediate 53248, 128 heads; Gemma: 256k vocabulary; Llama 4: 10M positions).
 * NOTE: sizes are also checked against the weights' shapes before the model is allocated; these bounds keep the
 * shapes-only build itself (one module per layer) and every product of sizes small and exact.
 */
export const CONFIG_MAXIMA: Readonly<Record<string, number>> = {
  n_layer: 1024, // GPT-2
  num_hidden_layers: 1024, // Llama, Mistral, Qwen2
  n_head: 4096,
  num_attention_heads: 4096,
  num_key_value_heads: 4096,
  n_embd: 1 << 20,
  hidden_size: 1 << 20,
  n_inner: 1 << 22,
  intermediate_size: 1 << 22,
  head_dim: 1 << 16,
  vocab_size: 1 << 24,
  n_positions: 1 << 24,
  max_position_embeddings: 1 << 28,
  original_max_position_embeddings: 1 << 28,
  sliding_window: 1 << 28,
  num_labels: 1 << 20,
};

/** The bound of a key CONFIG_MAXIMA does not list (an int32, as transformers' own configs hold). */
const DEFAULT_MAX = 2 ** 31 - 1;

export class ConfigReader {
  constructor(readonly raw: Record<string, unknown>, readonly label: string) {}

  private fail(key: string, want: string): never {
    const got = JSON.stringify(this.raw[key]) ?? 'nothing';
    throw new AjarError('bad_config', `${this.label}: "${key}" must be ${want}, got ${got.length > 60 ? `${got.slice(0, 57)}...` : got}`);
  }

  /** An integer from `min` to the key's bound in CONFIG_MAXIMA. */
  int(key: string, dflt?: number, min = 1): number {
    const v = this.raw[key] ?? dflt;
    if (v === undefined) throw new AjarError('bad_config', `${this.label}: "${key}" is required`);
    const max = CONFIG_MAXIMA[key] ?? DEFAULT_MAX;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) this.fail(key, `an integer from ${min} to ${max}`);
    return v;
  }

  /** int(), or `dflt` when the key is absent or null. */
  optInt(key: string, dflt: number | null, min = 1): number | null {
    const v = this.raw[key];
    if (v === undefined || v === null) return dflt;
    const max = CONFIG_MAXIMA[key] ?? DEFAULT_MAX;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) this.fail(key, `an integer from ${min} to ${max}, or null`);
    return v;
  }

  num(key: string, dflt: number, min = 0): number {
    const v = this.raw[key] ?? dflt;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min) this.fail(key, `a number >= ${min}`);
    return v;
  }

  bool(key: string, dflt: boolean): boolean {
    const v = this.raw[key] ?? dflt;
    if (typeof v !== 'boolean') this.fail(key, 'true or false');
    return v;
  }

  str(key: string, dflt: string): string {
    const v = this.raw[key] ?? dflt;
    if (typeof v !== 'string') this.fail(key, 'a string');
    return v;
  }

  /** eos/bos ids may be a number, a list (first taken) or null. */
  tokenId(key: string, dflt: number | null): number | null {
    const v = this.raw[key];
    if (v === undefined) return dflt;
    if (v === null) return null;
    if (Array.isArray(v) && v.length > 0 && Number.isInteger(v[0])) return v[0] as number;
    if (typeof v === 'number' && Number.isInteger(v)) return v;
    return this.fail(key, 'a token id, a list of ids or null');
  }
}

/**
 * For an error about tensors the config does not expect: when some sit in layers past the config's count, a note
 * naming the config key (`key`, holding `layers`) and the highest layer the weights hold; else ''.
 */
export function extraLayersNote(names: readonly string[], key: string, layers: number): string {
  let highest = -1;
  for (const name of names) {
    const m = /\.(?:h|layers)\.(\d+)\./.exec(`.${name}`);
    if (m !== null) highest = Math.max(highest, Number(m[1]));
  }
  return highest >= layers ? `; config.json's "${key}" is ${layers} but the weights hold layer ${highest}` : '';
}

/**
 * Check a forward pass's input: ids (batch rows, row-major) split into rows, fit the context after `past` cached
 * positions, and lie inside the vocabulary. Returns the row length T. `name` prefixes the messages.
 */
export function checkTokenInput(name: string, ids: Int32Array, batch: number, past: number, context: number, vocab: number): number {
  const T = ids.length / batch;
  if (!Number.isInteger(T) || T < 1) throw new AjarError('bad_input', `${name}: ${ids.length} ids do not split into ${batch} rows`);
  if (past + T > context) {
    throw new AjarError('context_length_exceeded', `${name}: ${past + T} positions exceed the model's context of ${context}`);
  }
  for (let i = 0; i < ids.length; i++) {
    if (!(ids[i] >= 0 && ids[i] < vocab)) {
      throw new AjarError('bad_input', `${name}: token id ${ids[i]} is outside the vocabulary of ${vocab}`);
    }
  }
  return T;
}
