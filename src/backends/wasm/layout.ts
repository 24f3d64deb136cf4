// Shape bookkeeping done in JavaScript before a kernel runs: merging dimensions that step through memory
// together, so kernels walk few, long, contiguous runs.
import { broadcastStrides, stridesOf } from '../../tensor/shape.js';

/** Output dimensions after merging, with one element-stride array per operand (0 where broadcast). */
export interface Merged {
  shape: number[];
  strides: number[][];
}

/**
 * Merge adjacent dimensions of an iteration space over outShape where every operand steps uniformly across
 * the pair, and drop size-1 dimensions. A scalar space becomes one dimension of size 1.
 */
export function mergeDims(outShape: readonly number[], operandStrides: readonly (readonly number[])[]): Merged {
  const shape: number[] = [];
  const strides: number[][] = operandStrides.map(() => []);
  for (let d = 0; d < outShape.length; d++) {
    const size = outShape[d];
    if (size === 1) continue;
    const last = shape.length - 1;
    const mergeable = last >= 0 && operandStrides.every((s, k) => strides[k][last] === s[d] * size);
    if (mergeable) {
      shape[last] *= size;
      operandStrides.forEach((s, k) => {
        strides[k][last] = s[d];
      });
    } else {
      shape.push(size);
      operandStrides.forEach((s, k) => strides[k].push(s[d]));
    }
  }
  if (shape.length === 0) {
    shape.push(1);
    strides.forEach((s) => s.push(0));
  }
  return { shape, strides };
}

/** Broadcast iteration space of operands (each with outShape's rank) over outShape. */
export function mergeBroadcast(outShape: readonly number[], shapes: readonly (readonly number[])[]): Merged {
  return mergeDims(outShape, shapes.map((s) => broadcastStrides(s, outShape)));
}

/** Iteration space of a permutation: out dim i reads x dim perm[i]. */
export function mergePermute(shape: readonly number[], perm: readonly number[]): Merged {
  const inStrides = stridesOf(shape);
  return mergeDims(perm.map((p) => shape[p]), [perm.map((p) => inStrides[p])]);
}
