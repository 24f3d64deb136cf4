// Shapes, strides and broadcasting for contiguous row-major float32 tensors.
// Every function here is pure and throws a ShapeError naming the op and the shapes on mismatch.

export type Shape = readonly number[];

export class ShapeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ShapeError';
  }
}

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function stridesOf(shape: Shape): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

export function shapeEq(a: Shape, b: Shape): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function fmtShape(shape: Shape): string {
  return `(${shape.join(', ')})`;
}

/** NumPy/PyTorch broadcasting: align trailing dims; each pair equal or one of them 1. */
export function broadcastShapes(a: Shape, b: Shape, op = 'broadcast'): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = i < n - a.length ? 1 : a[i - (n - a.length)];
    const db = i < n - b.length ? 1 : b[i - (n - b.length)];
    if (da !== db && da !== 1 && db !== 1) {
      throw new ShapeError(`${op}: shapes ${fmtShape(a)} and ${fmtShape(b)} cannot be broadcast together`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Strides of `shape` seen through the broadcast `outShape` (0 where the dim is broadcast). */
export function broadcastStrides(shape: Shape, outShape: Shape): number[] {
  const own = stridesOf(shape);
  const off = outShape.length - shape.length;
  const out = new Array<number>(outShape.length).fill(0);
  for (let i = 0; i < shape.length; i++) out[i + off] = shape[i] === 1 ? 0 : own[i];
  return out;
}

/** Normalise a possibly negative axis into [0, rank). */
export function normAxis(axis: number, rank: number, op = 'axis'): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) {
    throw new ShapeError(`${op}: axis ${axis} is out of range for a tensor of rank ${rank}`);
  }
  return a;
}

/** Resolve one -1 in a reshape target against a known element count. */
export function resolveReshape(target: readonly number[], size: number): number[] {
  let infer = -1;
  let known = 1;
  target.forEach((d, i) => {
    if (d === -1) {
      if (infer >= 0) throw new ShapeError('reshape: only one dimension may be -1');
      infer = i;
    } else {
      if (!Number.isInteger(d) || d < 0) throw new ShapeError(`reshape: bad dimension ${d}`);
      known *= d;
    }
  });
  const out = [...target];
  if (infer >= 0) {
    if (known === 0 || size % known !== 0) {
      throw new ShapeError(`reshape: cannot infer -1 in ${fmtShape(target)} for ${size} elements`);
    }
    out[infer] = size / known;
  }
  if (numel(out) !== size) {
    throw new ShapeError(`reshape: ${size} elements do not fit shape ${fmtShape(target)}`);
  }
  return out;
}

/** (outer, n, inner) split of a shape around one axis: the layout every axis kernel uses. */
export function splitAt(shape: Shape, axis: number): { outer: number; n: number; inner: number } {
  let outer = 1;
  let inner = 1;
  for (let i = 0; i < axis; i++) outer *= shape[i];
  for (let i = axis + 1; i < shape.length; i++) inner *= shape[i];
  return { outer, n: shape[axis], inner };
}
