// Flag parsing shared by every command: node's util.parseArgs with errors turned into AjarError('bad_flag').
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { AjarError } from '../tensor/errors.js';

export type FlagSpec = NonNullable<ParseArgsConfig['options']>;

export interface Parsed {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

/** Parse argv against the flag spec; unknown flags or missing values are a clear AjarError. */
export function parseFlags(command: string, argv: string[], options: FlagSpec, allowPositionals = false): Parsed {
  try {
    const { values, positionals } = parseArgs({ args: argv, options, allowPositionals, strict: true });
    return { values: values as Parsed['values'], positionals };
  } catch (e) {
    const msg = e instanceof Error ? e.message.replace(/\. To specify a positional.*$/s, '') : String(e);
    throw new AjarError('bad_flag', `ajar ${command}: ${msg} (see 'ajar ${command} --help')`);
  }
}

export function str(p: Parsed, name: string): string | undefined {
  const v = p.values[name];
  return typeof v === 'string' ? v : undefined;
}

export function requireStr(command: string, p: Parsed, name: string): string {
  const v = str(p, name);
  if (v === undefined || v === '') throw new AjarError('bad_flag', `ajar ${command}: --${name} is required`);
  return v;
}

export function bool(p: Parsed, name: string): boolean {
  return p.values[name] === true;
}

/** A numeric flag: integer or not, with optional bounds, or a clear error naming the flag. */
export function num(command: string, p: Parsed, name: string,
  opts: { int?: boolean; min?: number; max?: number } = {}): number | undefined {
  const v = str(p, name);
  if (v === undefined) return undefined;
  const x = Number(v);
  const kind = opts.int ? 'an integer' : 'a number';
  if (v.trim() === '' || !Number.isFinite(x) || (opts.int && !Number.isInteger(x))) {
    throw new AjarError('bad_flag', `ajar ${command}: --${name} must be ${kind}, got '${v}'`);
  }
  if (opts.min !== undefined && x < opts.min) {
    throw new AjarError('bad_flag', `ajar ${command}: --${name} must be at least ${opts.min}, got ${v}`);
  }
  if (opts.max !== undefined && x > opts.max) {
    throw new AjarError('bad_flag', `ajar ${command}: --${name} must be at most ${opts.max}, got ${v}`);
  }
  return x;
}
