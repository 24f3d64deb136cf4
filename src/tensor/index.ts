// The tensor package: Tensor, ops with autograd, shapes, the Backend contract and the seeded RNG. This is the public
// surface ('ajar/tensor'); kernel helpers (emptyBuf, the optimizer arithmetic, the RNG's fill routines) stay internal
// and are imported from their own files inside ajar.
export {
  BINARY_OPS, REDUCE_OPS, UNARY_OPS, getBackend, hasBackend, setBackend,
  type AdamWScalars, type AxisLayout, type Backend, type BinaryOp, type FusedKernels, type MatmulArgs, type ReduceOp, type UnaryOp,
} from './backend.js';
export * from './errors.js';
export * from './ops.js';
export {
  Q8_GROUP, dequantizeQ8, embeddingQ8, linearQ8, linearQ8Composite, q8Fits, q8ShapeProblem, quantizeQ8, type Q8Matrix,
} from './quant.js';
export { Rng } from './random.js';
export { ShapeError, broadcastShapes, numel, type Shape } from './shape.js';
export { noGrad, isGradEnabled, Tensor, transientGraph, type BackwardHooks } from './tensor.js';
