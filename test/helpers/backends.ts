// The backends every conformance test body runs against (STYLE.md rule 6), and a helper to run one body on each.
import { after, before, describe } from 'node:test';
import { jsBackend } from '../../src/backends/js/index.js';
import { getNativeBackend, nativeAvailable, nativeUnavailableReason } from '../../src/backends/native/index.js';
import { getWasmBackend, wasmAvailable } from '../../src/backends/wasm/index.js';
import { getBackend, hasBackend, setBackend, type Backend } from '../../src/tensor/backend.js';

// NOTE: wasm joins when the runtime has WebAssembly SIMD and the kernels are built (npm run build);
// test/backends/wasm.test.ts fails loudly when they should be there and are not.
export const backends: Backend[] = [jsBackend, ...(wasmAvailable() ? [getWasmBackend()] : [])];

// NOTE: native joins when the addon built at install (a C compiler and node-gyp); otherwise its column is a
// skip that names the reason. test/backends/native.test.ts checks its kernels one by one.
if (nativeAvailable()) backends.push(getNativeBackend());
const nativeSkip = nativeAvailable() ? '' : `native backend unavailable: ${nativeUnavailableReason()}`;

/** Run `body` inside a describe block per backend, with that backend installed. */
export function forEachBackend(title: string, body: (b: Backend) => void): void {
  if (nativeSkip) describe(`${title} [native]`, { skip: nativeSkip }, () => undefined);
  for (const b of backends) {
    describe(`${title} [${b.name}]`, () => {
      let prev: Backend | undefined;
      before(() => {
        prev = hasBackend() ? getBackend() : undefined;
        setBackend(b);
      });
      after(() => {
        if (prev) setBackend(prev);
      });
      body(b);
    });
  }
}

/** Install the reference backend for tests that don't iterate backends. */
export function useReferenceBackend(): void {
  setBackend(jsBackend);
}

