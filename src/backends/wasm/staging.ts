// Staging for one kernel call: buffers that live outside the wasm memory (an ordinary Float32Array) are copied
// into scratch blocks, and outputs copied back, so every kernel accepts any typed array.
import type { WasmHeap } from './heap.js';

/** Collects staged copies of buffers that live outside the wasm memory for one kernel call. */
export class Staging {
  failed = false;
  private temps: number[] = [];
  private back: { offset: number; target: Float32Array | Int32Array }[] = [];

  constructor(private readonly heap: WasmHeap) {}

  /** Offset of an input buffer, copying it in when it lives elsewhere. */
  input(a: Float32Array | Int32Array): number {
    const off = this.heap.offsetOf(a);
    return off >= 0 ? off : this.copyIn(a);
  }

  /** Offset of an output buffer; one from elsewhere gets a scratch block copied back by finish(). */
  output(a: Float32Array | Int32Array, readsToo = false): number {
    const off = this.heap.offsetOf(a);
    if (off >= 0) return off;
    const t = readsToo ? this.copyIn(a) : this.block(a.byteLength);
    if (t >= 0) this.back.push({ offset: t, target: a });
    return t;
  }

  /** Copy staged outputs back and free the scratch blocks. */
  finish(): void {
    if (this.back.length > 0) {
      const bytes = this.heap.bytes();
      for (const { offset, target } of this.back) {
        new Uint8Array(target.buffer, target.byteOffset, target.byteLength).set(bytes.subarray(offset, offset + target.byteLength));
      }
      this.back.length = 0;
    }
    this.release();
  }

  /** Free the scratch blocks without copying back (the call falls back to the js kernels). */
  release(): void {
    for (const t of this.temps) this.heap.freeBlock(t);
    this.temps.length = 0;
    this.back.length = 0;
    this.failed = false;
  }

  private copyIn(a: Float32Array | Int32Array): number {
    const t = this.block(a.byteLength);
    if (t >= 0) this.heap.bytes().set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), t);
    return t;
  }

  private block(bytes: number): number {
    const t = this.heap.allocBlock(bytes);
    if (t < 0) this.failed = true;
    else this.temps.push(t);
    return t;
  }
}

