// ajar's WebAssembly kernels (AssemblyScript, SIMD). Built by scripts/build-wasm.mjs; loaded and driven by
// src/backends/wasm. All pointers are byte offsets into the imported shared memory.
export * from './abi';
export { unaryRun, binaryRun, whereRun } from './elementwise';
export { reduceRun, softmaxRun, logSoftmaxRun, layerNormRun, layerNormBackRun, COL_BLOCK } from './reduce';
export { permuteRun, transposeRun, T_TILE, copyAxis, gather, scatterAdd, gatherRows, scatterAddRows } from './movement';
export { causalSoftmaxRun, causalSoftmaxBackRun } from './attention';
export { adamwRun, sumSqRun } from './optim';
export { rmsNormRun, rmsNormBackRun, ropeRun, siluMulRun, siluMulBackRun } from './llama';
export { matmulRun, MM_KC, MM_MC_MAX, MM_NC_MAX, MM_SCRATCH_BYTES } from './matmul';

/** First byte past the module's static data; the JavaScript allocator starts above it. */
export function heapBase(): usize {
  return __heap_base;
}
