// Finding, validating and compiling the kernel module: the relaxed-SIMD build when the runtime validates it
// (Node 20 needs --experimental-wasm-relaxed-simd), else the plain SIMD build, else none (the js backend stays).
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export type KernelVariant = 'simd' | 'relaxed-simd';

export interface LoadedKernels {
  module: WebAssembly.Module;
  variant: KernelVariant;
  path: string;
}

const FILES: Record<KernelVariant, string> = { simd: 'kernels.wasm', 'relaxed-simd': 'kernels-relaxed.wasm' };

/**
 * Where a kernel file may be: beside this module (dist/src/backends/wasm/, written by scripts/build-wasm.mjs,
 * or src/backends/wasm/ itself when run from source), then the committed copy in src/ seen from dist/.
 */
function candidates(file: string): string[] {
  return [
    fileURLToPath(new URL(`./${file}`, import.meta.url)),
    fileURLToPath(new URL(`../../../../src/backends/wasm/${file}`, import.meta.url)),
  ];
}

function readKernelFile(variant: KernelVariant): { bytes: Uint8Array<ArrayBuffer>; path: string } | undefined {
  for (const path of candidates(FILES[variant])) {
    if (existsSync(path)) return { bytes: new Uint8Array(readFileSync(path)), path };
  }
  return undefined;
}

let cached: LoadedKernels | null | undefined;
let reason = '';

/**
 * Compile the best kernel build this runtime accepts (once per process), or null with whyUnavailable().
 * AJAR_WASM_VARIANT=simd or relaxed-simd forces one build.
 */
export function loadKernels(): LoadedKernels | null {
  if (cached !== undefined) return cached;
  cached = null;
  const forced = process.env.AJAR_WASM_VARIANT as KernelVariant | undefined;
  const order: KernelVariant[] = forced === 'simd' || forced === 'relaxed-simd' ? [forced] : ['relaxed-simd', 'simd'];
  const missing: string[] = [];
  for (const variant of order) {
    const file = readKernelFile(variant);
    if (!file) {
      missing.push(FILES[variant]);
      continue;
    }
    if (!WebAssembly.validate(file.bytes)) continue;
    cached = { module: new WebAssembly.Module(file.bytes), variant, path: file.path };
    return cached;
  }
  reason = missing.length === order.length
    ? `kernel files not found (${missing.join(', ')}): run node scripts/build-wasm.mjs`
    : 'this runtime does not support WebAssembly SIMD with shared memory';
  return null;
}

/** Why loadKernels() returned null ('' when it did not). */
export function whyUnavailable(): string {
  loadKernels();
  return reason;
}
