// Pieces several commands share: the backend choice and reading user files with clear errors.
import { readFileSync, statSync } from 'node:fs';
import { jsBackend } from '../backends/js/index.js';
import { getWasmBackend, wasmAvailable, wasmUnavailableReason } from '../backends/wasm/index.js';
import { AjarError } from '../tensor/errors.js';
import { setBackend, type Backend } from '../tensor/index.js';

const available: Record<string, () => Backend> = {
  js: () => jsBackend,
  wasm: () => {
    if (!wasmAvailable()) throw new AjarError('bad_flag', `backend 'wasm' is unavailable here: ${wasmUnavailableReason()}`);
    return getWasmBackend();
  },
};

/** The default backend: wasm (SIMD kernels on worker threads) where the runtime supports it, else js. */
function defaultBackend(): string {
  return wasmAvailable() ? 'wasm' : 'js';
}

/** Install the backend named by --backend, else AJAR_BACKEND, else the default. */
export function selectBackend(name?: string): Backend {
  const choice = name ?? process.env.AJAR_BACKEND ?? defaultBackend();
  const make = available[choice];
  if (!make) {
    throw new AjarError('bad_flag', `unknown backend '${choice}' (available: ${Object.keys(available).join(', ')})`);
  }
  const b = make();
  setBackend(b);
  return b;
}

/** Read a UTF-8 text file named by a flag, or a clear error. */
export function readTextFile(path: string, what: string): string {
  let isFile = false;
  try {
    isFile = statSync(path).isFile();
  } catch {
    throw new AjarError('data_not_found', `${what} ${path} does not exist`);
  }
  if (!isFile) throw new AjarError('data_not_found', `${what} ${path} is not a file`);
  return readFileSync(path, 'utf8');
}

/** Print one JSON object on stdout. */
export function printJson(obj: unknown): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}
