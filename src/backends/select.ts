// Backend choice for entry points (the CLI and the library's index): an explicit name, else AJAR_BACKEND,
// else wasm (SIMD kernels on worker threads) where the runtime supports it, else the js reference.
import { AjarError } from '../tensor/errors.js';
import { setBackend, type Backend } from '../tensor/backend.js';
import { jsBackend } from './js/index.js';
import { getWasmBackend, wasmAvailable, wasmUnavailableReason } from './wasm/index.js';

const available: Record<string, () => Backend> = {
  js: () => jsBackend,
  wasm: () => {
    if (!wasmAvailable()) throw new AjarError('bad_flag', `backend 'wasm' is unavailable here: ${wasmUnavailableReason()}`);
    return getWasmBackend();
  },
};

export const BACKEND_NAMES = Object.keys(available);

export function defaultBackendName(): string {
  return wasmAvailable() ? 'wasm' : 'js';
}

/** Install the backend named `name`, else AJAR_BACKEND, else the default; returns it. */
export function selectBackend(name?: string): Backend {
  const choice = name ?? process.env.AJAR_BACKEND ?? defaultBackendName();
  const make = available[choice];
  if (!make) {
    throw new AjarError('bad_flag', `unknown backend '${choice}' (available: ${BACKEND_NAMES.join(', ')})`);
  }
  const b = make();
  setBackend(b);
  return b;
}
