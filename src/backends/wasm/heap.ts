// The wasm backend's memory: one shared WebAssembly.Memory (worker threads run kernels on it directly) and an
// allocator over it. Buffers handed to tensors are Float32Array views into the memory; a view's block is freed
// once the garbage collector has found the view dead.
//
// The allocator: requests round up to size classes (64-byte steps to 4 KiB, then 8 per power of two) so that
// repeated shapes reuse blocks exactly; free blocks sit in per-class lists, merge with free neighbours, are
// split when a larger one serves a smaller request, and give memory back to the bump pointer at the top. The
// merging matters for buffers that grow step by step (a KV cache): without it every size would strand blocks.
//
// How blocks come back:
// - A FinalizationRegistry callback frees the block of a collected view. Callbacks run as tasks, after the
//   event loop turns.
// - Waiting for V8's own collections is too slow: the views are small objects, so V8 feels no pressure while
//   gigabytes of wasm memory die. So once 128 MiB more were allocated than given back by free() since the last
//   sweep (a full GC costs milliseconds, about a step of a small model's training), the next allocation in a new event-loop turn runs a full GC and then checks a WeakRef per
//   block: blocks of views that died in an earlier turn come back at once, synchronously. A training loop that
//   awaits between steps thus reuses the previous step's memory in the next step.
//
// NOTE, limits:
// - Nothing allocated in the current synchronous job can be reclaimed before the job ends (the WeakRef
//   constructor keeps its target alive until then, and finalizers wait for the event loop). A long loop that
//   never awaits keeps every block it allocated; when the memory reaches its cap, alloc() falls back to
//   ordinary Float32Arrays (kernels copy them in and out of scratch blocks: slower, still correct).
//   Long-running loops should await (e.g. setImmediate) between steps.
// - A view derived from a buffer keeps the block alive only through subarray(), which is patched to hold a
//   reference to its parent. A view made with `new Float32Array(buf.buffer, offset, n)` does not: it must not
//   outlive the tensor it was taken from.
// - Memory never shrinks (WebAssembly memories cannot); freed blocks are reused by later allocations.
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';

const PAGE = 65536;
const ALIGN = 64;
const SMALL_LIMIT = 4096; // sizes up to this round to multiples of ALIGN; larger ones to 1/8 of a power of two
const SMALL_CLASSES = SMALL_LIMIT / ALIGN;
const MAX_WASM_BYTES = 65536 * PAGE; // wasm32's 4 GiB
const SWEEP_BYTES = 128 * 1024 * 1024;

export interface HeapStats {
  /** Bytes in live blocks (size classes rounded up): tensors' and scratch. */
  bytesInUse: number;
  /** The largest bytesInUse seen. */
  peakBytesInUse: number;
  /** Bytes held in free lists, ready for reuse. */
  bytesFree: number;
  /** Current size of the WebAssembly memory. */
  memoryBytes: number;
  /** The memory's cap. */
  maxBytes: number;
  liveBlocks: number;
  /** Blocks handed out, from a free list (reused) or new memory. */
  allocations: number;
  reused: number;
  /** Blocks of collected views given back, by finalizer callbacks or by sweeps. */
  finalized: number;
  /** Full GCs run by sweeps. */
  sweeps: number;
  /** alloc() calls answered with an ordinary Float32Array because the memory was full. */
  fallbacks: number;
}

export interface HeapOptions {
  /** Cap on the memory, bytes (rounded to 64 KiB pages, at most 4 GiB). */
  maxBytes: number;
  /** Bytes kept back from tensor allocations for kernels' scratch blocks (default 1/16 of maxBytes). */
  reserveBytes?: number;
  /** Net bytes allocated between sweeps (default 128 MiB). */
  sweepBytes?: number;
}

function roundUp(n: number, m: number): number {
  return Math.ceil(n / m) * m;
}

/** Size class of a request: [class index, bytes of that class]. */
export function sizeClass(bytes: number): [number, number] {
  if (bytes <= SMALL_LIMIT) {
    const k = Math.max(1, Math.ceil(bytes / ALIGN));
    return [k - 1, k * ALIGN];
  }
  const e = Math.floor(Math.log2(bytes - 1)); // 2^e < bytes <= 2^(e + 1)
  const step = 2 ** (e - 3);
  const sub = Math.ceil((bytes - 2 ** e) / step); // 1..8
  return [SMALL_CLASSES + (e - 12) * 8 + (sub - 1), 2 ** e + sub * step];
}

type Gc = () => void;
let gcFn: Gc | null | undefined;

/**
 * A function that runs a full garbage collection, or null. Exposed gc() (node --expose-gc) when present;
 * otherwise the flag is turned on and gc() taken from a fresh context (a long-standing Node idiom).
 */
function getGc(): Gc | null {
  if (gcFn !== undefined) return gcFn;
  const g = (globalThis as { gc?: Gc }).gc;
  if (typeof g === 'function') {
    gcFn = g;
    return gcFn;
  }
  try {
    setFlagsFromString('--expose-gc');
    const fn = runInNewContext('gc') as unknown;
    gcFn = typeof fn === 'function' ? (fn as Gc) : null;
  } catch {
    gcFn = null;
  }
  return gcFn;
}

const OWNER = Symbol('ajar.wasm.owner');

/** subarray() for heap views: the child keeps its parent (and so the block) alive. */
function ownedSubarray(this: Float32Array, begin?: number, end?: number): Float32Array {
  const child = Float32Array.prototype.subarray.call(this, begin, end);
  Object.defineProperty(child, OWNER, { value: this });
  Object.defineProperty(child, 'subarray', { value: ownedSubarray });
  return child;
}

/** Largest class whose size fits in `bytes` (a free block of that size can serve any request of the class). */
function floorClass(bytes: number): number {
  const [cls, size] = sizeClass(bytes);
  return size > bytes ? cls - 1 : cls;
}

/** A block in use, and for a tensor buffer a weak reference to the view handed out. */
interface Block {
  offset: number;
  size: number;
  view: WeakRef<Float32Array> | null;
}

export class WasmHeap {
  readonly memory: WebAssembly.Memory;
  readonly maxBytes: number;
  private readonly tensorLimit: number;
  private readonly buffers = new Set<ArrayBufferLike>();
  private readonly live = new Map<number, Block>();
  private readonly freeLists: Set<number>[] = []; // by class: offsets of free blocks
  private readonly freeSize = new Map<number, number>(); // free block offset -> bytes
  private readonly freeByEnd = new Map<number, number>(); // free block end -> offset
  private readonly registry = new FinalizationRegistry<number>((offset) => this.release(offset, true));
  private top: number; // everything from here up is unused
  private dirtyTop: number; // everything from here up has never been written (still zero)
  private u8: Uint8Array;
  private bytesInUse = 0;
  private peak = 0;
  private bytesFree = 0;
  private allocations = 0;
  private reused = 0;
  private finalized = 0;
  private sweeps = 0;
  private fallbacks = 0;
  private sinceSweep = 0;
  private sweptThisTurn = false;
  private readonly sweepBytes: number;

  constructor(base: number, opts: HeapOptions) {
    this.maxBytes = Math.min(MAX_WASM_BYTES, roundUp(opts.maxBytes, PAGE));
    const reserve = opts.reserveBytes ?? Math.floor(this.maxBytes / 16);
    this.tensorLimit = this.maxBytes - reserve;
    this.sweepBytes = opts.sweepBytes ?? SWEEP_BYTES;
    const initial = Math.min(this.maxBytes, roundUp(base + PAGE, PAGE));
    this.memory = new WebAssembly.Memory({ initial: initial / PAGE, maximum: this.maxBytes / PAGE, shared: true });
    this.top = roundUp(base, ALIGN);
    this.dirtyTop = this.top;
    this.u8 = this.refresh();
  }

  /** Byte offset of a typed array's data in this memory, or -1 when it lives elsewhere. */
  offsetOf(a: ArrayBufferView): number {
    return this.buffers.has(a.buffer) ? a.byteOffset : -1;
  }

  /**
   * A zeroed Float32Array of n floats in the memory (contents unspecified with zero = false), freed once
   * collected or by free(); elsewhere if the memory is full.
   */
  alloc(n: number, zero = true): Float32Array {
    if (n === 0) return new Float32Array(0);
    const block = this.take(n * 4, this.tensorLimit, zero);
    if (!block) {
      this.fallbacks++;
      return new Float32Array(n);
    }
    const view = new Float32Array(this.memory.buffer, block.offset, n);
    block.view = new WeakRef(view);
    this.registry.register(view, block.offset, block);
    Object.defineProperty(view, 'subarray', { value: ownedSubarray });
    return view;
  }

  /**
   * Give back the block of a view from alloc() now. Only the view alloc() returned frees its block (a
   * subarray or a foreign array is ignored); the caller guarantees nothing uses the view again.
   */
  free(view: Float32Array): void {
    const offset = this.offsetOf(view);
    if (offset < 0) return;
    const block = this.live.get(offset);
    if (!block || !block.view || block.view.deref() !== view) return;
    this.registry.unregister(block);
    this.sinceSweep = Math.max(0, this.sinceSweep - block.size);
    this.release(offset, false);
  }

  /** A scratch block of at least `bytes` (not zeroed), or -1; give it back with freeBlock(). */
  allocBlock(bytes: number): number {
    return this.take(Math.max(bytes, 1), this.maxBytes, false)?.offset ?? -1;
  }

  freeBlock(offset: number): void {
    this.release(offset, false);
  }

  stats(): HeapStats {
    return {
      bytesInUse: this.bytesInUse,
      peakBytesInUse: this.peak,
      bytesFree: this.bytesFree,
      memoryBytes: this.memory.buffer.byteLength,
      maxBytes: this.maxBytes,
      liveBlocks: this.live.size,
      allocations: this.allocations,
      reused: this.reused,
      finalized: this.finalized,
      sweeps: this.sweeps,
      fallbacks: this.fallbacks,
    };
  }

  /** The current view of the whole memory (replaced when it grows). */
  bytes(): Uint8Array {
    if (this.u8.byteLength !== this.memory.buffer.byteLength) this.u8 = this.refresh();
    return this.u8;
  }

  /**
   * Run a full GC and give back the blocks of views that died before the current job (now, synchronously).
   * Returns the bytes given back, 0 when no GC is available.
   */
  sweep(): number {
    const gc = getGc();
    if (!gc) return 0;
    gc();
    this.sweeps++;
    this.sinceSweep = 0;
    let freed = 0;
    for (const b of this.live.values()) {
      if (b.view && b.view.deref() === undefined) {
        this.registry.unregister(b);
        freed += b.size;
        this.release(b.offset, true);
      }
    }
    return freed;
  }

  private refresh(): Uint8Array {
    const buf = this.memory.buffer;
    this.buffers.add(buf);
    return new Uint8Array(buf);
  }

  private take(bytes: number, limit: number, zero: boolean): Block | null {
    const [cls, size] = sizeClass(bytes);
    this.maybeSweep(size);
    let offset = this.takeFree(cls, size);
    if (offset >= 0) {
      this.reused++;
      if (zero) this.zero(offset, bytes);
    } else {
      offset = this.bump(size, limit);
      if (offset < 0) return null;
      // Memory below the high-water mark was used before (then given back to the top).
      if (zero && offset < this.dirtyTop) this.zero(offset, Math.min(bytes, this.dirtyTop - offset));
      this.dirtyTop = Math.max(this.dirtyTop, offset + size);
    }
    const block: Block = { offset, size, view: null };
    this.live.set(offset, block);
    this.bytesInUse += size;
    this.peak = Math.max(this.peak, this.bytesInUse);
    this.allocations++;
    return block;
  }

  private zero(offset: number, bytes: number): void {
    // NOTE: a Float32Array fill, about 4x faster than a Uint8Array fill on shared memory in V8.
    new Float32Array(this.memory.buffer, offset, Math.ceil(bytes / 4)).fill(0);
  }

  /** A free block for a request of class cls (size bytes): the smallest class that has one, split to size. */
  private takeFree(cls: number, size: number): number {
    for (let c = cls; c < this.freeLists.length; c++) {
      const list = this.freeLists[c];
      if (!list || list.size === 0) continue;
      const offset = list.values().next().value as number;
      const have = this.freeSize.get(offset)!;
      this.removeFree(offset, have);
      if (have > size) this.addFree(offset + size, have - size); // sizes are multiples of 64 bytes
      return offset;
    }
    return -1;
  }

  private addFree(offset: number, size: number): void {
    (this.freeLists[floorClass(size)] ??= new Set()).add(offset);
    this.freeSize.set(offset, size);
    this.freeByEnd.set(offset + size, offset);
    this.bytesFree += size;
  }

  private removeFree(offset: number, size: number): void {
    this.freeLists[floorClass(size)].delete(offset);
    this.freeSize.delete(offset);
    this.freeByEnd.delete(offset + size);
    this.bytesFree -= size;
  }

  /** Sweep at the first allocation of an event-loop turn once enough was allocated since the last sweep. */
  private maybeSweep(size: number): void {
    this.sinceSweep += size;
    if (this.sweptThisTurn || this.sinceSweep < this.sweepBytes) return;
    this.sweptThisTurn = true;
    setImmediate(() => {
      this.sweptThisTurn = false;
    }).unref();
    this.sweep();
  }

  /** New memory at the top, growing the memory when needed (up to limit); -1 when it cannot. */
  private bump(size: number, limit: number): number {
    const end = this.top + size;
    if (end > limit) return -1;
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      const want = Math.min(limit, Math.max(roundUp(end, PAGE), roundUp(have * 1.25, PAGE)));
      try {
        this.memory.grow((want - have) / PAGE);
      } catch {
        return -1;
      }
      this.u8 = this.refresh();
    }
    const offset = this.top;
    this.top = end;
    return offset;
  }

  /** Free a block: merge it with free neighbours, then give it to the top or to its class's list. */
  private release(offset: number, collected: boolean): void {
    const block = this.live.get(offset);
    if (!block) return;
    this.live.delete(offset);
    this.bytesInUse -= block.size;
    if (collected) this.finalized++;
    let start = offset;
    let size = block.size;
    const before = this.freeByEnd.get(start);
    if (before !== undefined) {
      const n = this.freeSize.get(before)!;
      this.removeFree(before, n);
      start = before;
      size += n;
    }
    const after = this.freeSize.get(start + size);
    if (after !== undefined) {
      this.removeFree(start + size, after);
      size += after;
    }
    if (start + size === this.top) this.top = start;
    else this.addFree(start, size);
  }
}
