// Typed reads of config.json fields with clear errors naming the field (code 'bad_config').
import { AjarError } from '../tensor/errors.js';

export class ConfigReader {
  constructor(readonly raw: Record<string, unknown>, readonly label: string) {}

  private fail(key: string, want: string): never {
    throw new AjarError('bad_config', `${this.label}: "${key}" must be ${want}, got ${JSON.stringify(this.raw[key])}`);
  }

  int(key: string, dflt?: number, min = 1): number {
    const v = this.raw[key] ?? dflt;
    if (v === undefined) throw new AjarError('bad_config', `${this.label}: "${key}" is required`);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) this.fail(key, `an integer >= ${min}`);
    return v;
  }

  optInt(key: string, dflt: number | null): number | null {
    const v = this.raw[key];
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'number' || !Number.isInteger(v)) this.fail(key, 'an integer or null');
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
