// A pool of worker threads that run kernels on the shared memory, driven synchronously: the main thread
// publishes a job in a shared control block, takes chunks of it like any worker, then sleeps in Atomics.wait
// until the last chunk is done. Idle workers sleep in Atomics.wait too (no spinning), and are unref'd so they
// never keep the process alive.
//
// Claiming: NEXT holds (job generation << 16) | next chunk. A thread reads NEXT, reads the job fields, and
// claims chunk c with compareExchange(NEXT, v, v + 1). The main thread closes NEXT (chunk 0xffff) before it
// rewrites the fields, so a successful exchange proves the fields read belong to a job that is still open.
import { Worker } from 'node:worker_threads';
import { RANGE_KERNELS, type RangeKernel } from './abi.js';

const WAKE = 0; // bumped to wake workers
const NEXT = 1;
const PENDING = 2; // chunks not yet finished
const NCHUNKS = 3;
const KERNEL = 4;
const PARAM = 5;
const UNITS = 6;
const GRAIN = 7;
const ERROR = 8;
const QUIT = 9;
const READY = 10; // workers started
const CHUNKS_RUN = 16; // CHUNKS_RUN + tid: chunks each thread has run (for tests and tuning)
/** Most threads a pool takes. */
export const MAX_THREADS = 64;
const CTL_INTS = CHUNKS_RUN + MAX_THREADS;

const CLOSED = 0xffff;
/** Chunks per job stay below this so a chunk index fits NEXT's low 16 bits. */
export const MAX_CHUNKS = 4096;

export interface WorkerInit {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  ctl: SharedArrayBuffer;
  tid: number;
}

/** Claim and run chunks of the open job until none are left. Returns the first error thrown, if any. */
export function runChunks(ctl: Int32Array, kernels: readonly RangeKernel[], tid: number): unknown {
  let failure: unknown;
  for (;;) {
    const v = Atomics.load(ctl, NEXT);
    const c = v & 0xffff;
    const n = Atomics.load(ctl, NCHUNKS);
    if (c >= n) return failure;
    const kernel = Atomics.load(ctl, KERNEL);
    const p = Atomics.load(ctl, PARAM);
    const units = Atomics.load(ctl, UNITS);
    const grain = Atomics.load(ctl, GRAIN);
    if (Atomics.compareExchange(ctl, NEXT, v, v + 1) !== v) continue;
    const begin = c * grain;
    try {
      kernels[kernel](p, tid, begin, Math.min(units, begin + grain));
    } catch (e) {
      failure ??= e;
      Atomics.store(ctl, ERROR, 1);
    }
    Atomics.add(ctl, CHUNKS_RUN + tid, 1);
    if (Atomics.sub(ctl, PENDING, 1) === 1) Atomics.notify(ctl, PENDING);
  }
}

/** The worker side: instantiate the kernels on the shared memory and serve jobs until told to quit. */
export function serveJobs(init: WorkerInit): void {
  const instance = new WebAssembly.Instance(init.module, { env: { memory: init.memory } });
  const kernels = RANGE_KERNELS.map((name) => instance.exports[name] as RangeKernel);
  const ctl = new Int32Array(init.ctl);
  Atomics.add(ctl, READY, 1);
  Atomics.notify(ctl, READY);
  for (;;) {
    const seen = Atomics.load(ctl, WAKE);
    if (Atomics.load(ctl, QUIT) !== 0) return;
    runChunks(ctl, kernels, init.tid);
    Atomics.wait(ctl, WAKE, seen);
  }
}

export class WorkerPool {
  /** Threads taking part in a job, the main thread included. */
  readonly threads: number;
  private readonly ctl = new Int32Array(new SharedArrayBuffer(CTL_INTS * 4));
  private readonly workers: Worker[] = [];
  private generation = 0;
  private started = false;

  constructor(private readonly module: WebAssembly.Module, private readonly memory: WebAssembly.Memory,
    private readonly kernels: readonly RangeKernel[], threads: number) {
    this.threads = Math.min(MAX_THREADS, Math.max(1, Math.floor(threads)));
  }

  /** Workers that have started serving. */
  get ready(): number {
    return Atomics.load(this.ctl, READY);
  }

  /** Chunks each thread has run, by thread id (0 is the calling thread). */
  chunksRun(): number[] {
    return Array.from({ length: this.threads }, (_, tid) => Atomics.load(this.ctl, CHUNKS_RUN + tid));
  }

  /**
   * Start the workers and block until all serve or timeoutMs passes; returns how many are ready. Jobs never
   * need this (the calling thread does whatever workers do not take); tests and benchmarks use it.
   */
  waitForWorkers(timeoutMs = 10_000): number {
    this.start();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const n = Atomics.load(this.ctl, READY);
      const left = deadline - Date.now();
      if (n >= this.threads - 1 || left <= 0) return n;
      Atomics.wait(this.ctl, READY, n, Math.min(left, 50));
    }
  }

  /**
   * Run kernel over units [0, units) in chunks of `grain` units, spread over the pool; returns when all are
   * done. Small jobs (one chunk) and single-thread pools run inline.
   */
  run(kernel: number, p: number, units: number, grain: number): void {
    if (units <= 0) return;
    const g = Math.max(grain, Math.ceil(units / MAX_CHUNKS));
    if (this.threads === 1 || units <= g) {
      this.kernels[kernel](p, 0, 0, units);
      return;
    }
    this.start();
    const ctl = this.ctl;
    this.generation = (this.generation + 1) & 0x7fff;
    const gen = this.generation << 16;
    const chunks = Math.ceil(units / g);
    Atomics.store(ctl, NEXT, gen | CLOSED);
    Atomics.store(ctl, KERNEL, kernel);
    Atomics.store(ctl, PARAM, p);
    Atomics.store(ctl, UNITS, units);
    Atomics.store(ctl, GRAIN, g);
    Atomics.store(ctl, NCHUNKS, chunks);
    Atomics.store(ctl, ERROR, 0);
    Atomics.store(ctl, PENDING, chunks);
    Atomics.store(ctl, NEXT, gen);
    Atomics.add(ctl, WAKE, 1);
    Atomics.notify(ctl, WAKE);
    const failure = runChunks(ctl, this.kernels, 0);
    for (;;) {
      const left = Atomics.load(ctl, PENDING);
      if (left === 0) break;
      Atomics.wait(ctl, PENDING, left);
    }
    if (failure !== undefined) throw failure;
    if (Atomics.load(ctl, ERROR) !== 0) throw new Error('wasm backend: a kernel failed in a worker thread');
  }

  /** Stop the workers (they exit at their next wake-up). */
  close(): void {
    Atomics.store(this.ctl, QUIT, 1);
    Atomics.add(this.ctl, WAKE, 1);
    Atomics.notify(this.ctl, WAKE);
    for (const w of this.workers) void w.terminate();
    this.workers.length = 0;
  }

  private start(): void {
    if (this.started || this.threads === 1) return;
    this.started = true;
    for (let tid = 1; tid < this.threads; tid++) {
      const init: WorkerInit = { module: this.module, memory: this.memory, ctl: this.ctl.buffer as SharedArrayBuffer, tid };
      // NOTE: execArgv [] because the parent's Node options need not suit a worker (`node --input-type=module
      // -e ...` makes every worker fail to start); V8 flags such as relaxed SIMD are per process anyway.
      const w = new Worker(new URL('./worker.js', import.meta.url), { workerData: init, execArgv: [] });
      // NOTE: a worker that fails to start only means fewer helpers: the main thread finishes every job itself.
      w.on('error', () => undefined);
      w.unref();
      this.workers.push(w);
    }
  }
}
