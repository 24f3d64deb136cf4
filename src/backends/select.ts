// Backend choice for entry points (the CLI and the library's index): an explicit name, else AJAR_BACKEND,
// else native (C kernels) where the addon loads, else wasm (SIMD kernels on worker threads) where the runtime
// supports it, else the js reference. backendChoice() says which one the default picked and why.
import { AjarError } from '../tensor/errors.js';
import { setBackend, type Backend } from '../tensor/backend.js';
import { jsBackend } from './js/index.js';
import { getNativeBackend, nativeAvailable, nativeUnavailableReason } from './native/index.js';
import { getWasmBackend, wasmAvailable, wasmUnavailableReason } from './wasm/index.js';

const available: Record<string, () => Backend> = {
  native: () => {
    if (!nativeAvailable()) throw new AjarError('bad_flag', `backend 'native' is unavailable here: ${nativeUnavailableReason()}`);
    return getNativeBackend();
  },
  wasm: () => {
    if (!wasmAvailable()) throw new AjarError('bad_flag', `backend 'wasm' is unavailable here: ${wasmUnavailableReason()}`);
    return getWasmBackend();
  },
  js: () => jsBackend,
};

export const BACKEND_NAMES = Object.keys(available);

export function defaultBackendName(): string {
  if (nativeAvailable()) return 'native';
  return wasmAvailable() ? 'wasm' : 'js';
}

/** Why `name` runs: the flag, AJAR_BACKEND, or the default and what the default passed over. */
export function backendChoice(flag?: string): string {
  if (flag !== undefined) return `--backend ${flag}`;
  const env = process.env.AJAR_BACKEND;
  if (env !== undefined && env !== '') return `AJAR_BACKEND=${env}`;
  if (nativeAvailable()) return 'default: the native kernels loaded';
  const whyNot = `native kernels unavailable: ${nativeUnavailableReason()}`;
  if (wasmAvailable()) return `default: ${whyNot}`;
  return `default: ${whyNot}; wasm unavailable: ${wasmUnavailableReason()}`;
}

/** Install the backend named `name`, else AJAR_BACKEND, else the default; returns it. */
export function selectBackend(name?: string): Backend {
  const env = process.env.AJAR_BACKEND;
  const choice = name ?? (env !== undefined && env !== '' ? env : defaultBackendName());
  const make = available[choice];
  if (!make) {
    throw new AjarError('bad_flag', `unknown backend '${choice}' (available: ${BACKEND_NAMES.join(', ')})`);
  }
  const b = make();
  setBackend(b);
  return b;
}
