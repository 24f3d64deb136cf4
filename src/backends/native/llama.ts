// The native backend's Llama-family kernels (native/llama.c): RMS norm and its gradient, rotate-half RoPE, SwiGLU's
// silu(gate) * up and its gradient, and grouped-query causal attention with its gradient, with FusedKernels'
// signatures. The addon reads every Float32Array in place (wasm memory or not), so nothing is staged.
import type { FusedKernels } from '../../tensor/backend.js';

/** The addon's Llama exports (native/llama_binding.c). */
export interface LlamaAddon {
  rmsNorm(x: Float32Array, rows: number, n: number, weight: Float32Array | null, eps: number, out: Float32Array,
    rstd: Float32Array | null): void;
  rmsNormBackward: FusedKernels['rmsNormBackward'];
  rope(x: Float32Array, B: number, T: number, H: number, hs: number, cos: Float32Array, sin: Float32Array,
    out: Float32Array, inverse: number): void;
  siluMul(gate: Float32Array, up: Float32Array, out: Float32Array, sig: Float32Array | null): void;
  siluMulBackward: FusedKernels['siluMulBackward'];
  groupedAttention: FusedKernels['groupedAttention'];
  groupedAttentionBackward: FusedKernels['groupedAttentionBackward'];
}

export type LlamaFused = Pick<FusedKernels, 'rmsNorm' | 'rmsNormBackward' | 'rope' | 'siluMul' | 'siluMulBackward' |
  'groupedAttention' | 'groupedAttentionBackward'>;

export function llamaKernels(lib: LlamaAddon): LlamaFused {
  return {
    rmsNorm: (x, rows, n, weight, eps, out, rstd) => lib.rmsNorm(x, rows, n, weight, eps, out, rstd ?? null),
    rmsNormBackward: lib.rmsNormBackward,
    rope: (x, B, T, H, hs, cos, sin, out, inverse) => lib.rope(x, B, T, H, hs, cos, sin, out, inverse ? 1 : 0),
    siluMul: (gate, up, out, sig) => lib.siluMul(gate, up, out, sig ?? null),
    siluMulBackward: lib.siluMulBackward,
    groupedAttention: lib.groupedAttention,
    groupedAttentionBackward: lib.groupedAttentionBackward,
  };
}
