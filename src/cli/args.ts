// Flag parsing shared by every command: node's util.parseArgs with errors turned into one-line AjarError('bad_flag')
// (with a "did you mean" for a mistyped flag), and the short aliases llama.cpp users expect.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { AjarError } from '../tensor/errors.js';
import { closest } from './suggest.js';

export type FlagSpec = NonNullable<ParseArgsConfig['options']>;

export interface Parsed {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

/**
 * Short aliases of the most used flags (llama.cpp's -m, -p, -n, -t; -o as in most tools), given to every command
 * whose spec has the long flag.
 */
export const SHORT_ALIASES: Readonly<Record<string, string>> = {
  model: 'm', prompt: 'p', 'max-new-tokens': 'n', temperature: 't', out: 'o',
};

function withShortAliases(options: FlagSpec): FlagSpec {
  const out: FlagSpec = {};
  for (const [name, spec] of Object.entries(options)) {
    const short = SHORT_ALIASES[name];
    out[name] = spec.short === undefined && short !== undefined ? { ...spec, short } : spec;
  }
  return out;
}

/** parseArgs' message (up to three lines) as one line naming the flag and what to do. */
function flagError(command: string, e: unknown, options: FlagSpec): string {
  const msg = e instanceof Error ? e.message : String(e);
  const code = (e as { code?: string }).code;
  const see = `see 'ajar ${command} --help'`;
  const unknown = /^Unknown option '(-{1,2})([^'=]*)/.exec(msg);
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && unknown) {
    const guess = unknown[1] === '--' ? closest(unknown[2], Object.keys(options)) : undefined;
    return `unknown flag ${unknown[1]}${unknown[2]}${guess !== undefined ? ` (did you mean --${guess}?)` : ''}; ${see}`;
  }
  const flag = /^Option '(?:-., )?(--?[^' ]+)/.exec(msg)?.[1];
  if (flag !== undefined && /argument missing/.test(msg)) return `${flag} needs a value; ${see}`;
  if (flag !== undefined && /ambiguous/.test(msg)) {
    return `${flag} needs a value (for a value that starts with '-', write ${flag}=VALUE); ${see}`;
  }
  if (flag !== undefined && /does not take an argument/.test(msg)) return `${flag} takes no value; ${see}`;
  const positional = /^Unexpected argument '([^']*)'/.exec(msg);
  if (positional) return `unexpected argument '${positional[1]}': this command takes flags only; ${see}`;
  return `${msg.split('\n').map((l) => l.trim()).join(' ')} (${see})`;
}

/** Parse argv against the flag spec; unknown flags or missing values are a one-line AjarError. */
export function parseFlags(command: string, argv: string[], options: FlagSpec, allowPositionals = false): Parsed {
  const spec = withShortAliases(options);
  try {
    const { values, positionals } = parseArgs({ args: argv, options: spec, allowPositionals, strict: true });
    return { values: values as Parsed['values'], positionals };
  } catch (e) {
    throw new AjarError('bad_flag', `ajar ${command}: ${flagError(command, e, spec)}`);
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

export interface NumBounds {
  int?: boolean;
  min?: number; // inclusive
  above?: number; // exclusive lower bound (top-p: greater than 0)
  max?: number; // inclusive
}

/** The accepted range in words: "at least 0", "greater than 0 and at most 1". */
function rangeText(b: NumBounds): string {
  const parts: string[] = [];
  if (b.above !== undefined) parts.push(`greater than ${b.above}`);
  if (b.min !== undefined) parts.push(`at least ${b.min}`);
  if (b.max !== undefined) parts.push(`at most ${b.max}`);
  return parts.join(' and ');
}

/** A numeric flag: integer or not, with optional bounds, or a clear error naming the flag and its range. */
export function num(command: string, p: Parsed, name: string, opts: NumBounds = {}): number | undefined {
  const v = str(p, name);
  if (v === undefined) return undefined;
  const x = Number(v);
  const kind = opts.int ? 'an integer' : 'a number';
  if (v.trim() === '' || !Number.isFinite(x) || (opts.int && !Number.isInteger(x))) {
    throw new AjarError('bad_flag', `ajar ${command}: --${name} must be ${kind}, got '${v}'`);
  }
  const outside = (opts.min !== undefined && x < opts.min) || (opts.above !== undefined && x <= opts.above)
    || (opts.max !== undefined && x > opts.max);
  if (outside) throw new AjarError('bad_flag', `ajar ${command}: --${name} must be ${rangeText(opts)}, got ${v}`);
  return x;
}
