// The tensor package: Tensor, ops with autograd, shapes, the Backend contract and the seeded RNG.
export * from './backend.js';
export * from './errors.js';
export * from './ops.js';
export * from './optim-math.js';
export * from './random.js';
export * from './shape.js';
export { noGrad, isGradEnabled, Tensor, type BackwardHooks } from './tensor.js';
