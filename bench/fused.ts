// The Llama family's fused kernels (wasm's, or with --backend native the C ones of native/llama.c) against the
// composites they replace, at SmolLM2-135M's sizes (hidden 576,
// 9 query heads and 3 key/value heads of 64, intermediate 1536) on one sequence of T positions: forward alone,
// and forward plus backward (the op's gradient from a fixed upstream); then a whole training step (loss and
// backward) of a 2-layer model of SmolLM2-135M's layers (vocabulary cut to 2048), with the backend's Llama
// kernels and without them (every op its composite). Prints the median wall milliseconds of each and the speedup
// composite / fused, in wall time and in process CPU time (all threads together), which a machine busy with
// other work disturbs less.
// Usage: node dist/bench/fused.js [--backend wasm|native] [--reps N] [--threads N] [--T N] [--json]
import { createNativeBackend, nativeAvailable, nativeUnavailableReason } from '../src/backends/native/index.js';
import {
  createWasmBackend, wasmAvailable, wasmUnavailableReason, type WasmBackend,
} from '../src/backends/wasm/index.js';
import { LlamaForCausalLM } from '../src/models/llama.js';
import { getBackend, setBackend, type Backend, type FusedKernels } from '../src/tensor/backend.js';
import {
  crossEntropy, groupedCausalAttention, groupedCausalAttentionComposite, randn, reshape, rmsNorm, rmsNormComposite,
  rope, ropeComposite, siluMul, siluMulComposite, type GroupedAttentionOptions,
} from '../src/tensor/ops.js';
import { Rng } from '../src/tensor/random.js';
import { noGrad, type Tensor } from '../src/tensor/tensor.js';

const argv = process.argv.slice(2);
const flag = (name: string, dflt: number): number => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const reps = flag('--reps', 20);
const threads = flag('--threads', 0);
const T = flag('--T', 256);
const json = argv.includes('--json');
const backendArg = argv.includes('--backend') ? argv[argv.indexOf('--backend') + 1] : 'wasm';

// SmolLM2-135M (HuggingFaceTB/SmolLM2-135M config.json)
const HIDDEN = 576;
const HEADS = 9;
const KV_HEADS = 3;
const HEAD_DIM = 64;
const INTERMEDIATE = 1536;

/** One op under test: inputs (those that take a gradient marked), and its fused and composite forms. */
interface Case {
  name: string;
  inputs: () => Tensor[];
  fused: (xs: Tensor[]) => Tensor;
  composite: (xs: Tensor[]) => Tensor;
  backward: boolean; // also time forward + backward
  zeroGrads?: () => void; // before each forward + backward (inputs' gradients are reset anyway)
}

const rng = new Rng(1);
const cosSin = (): Tensor[] => [randn([T, HEAD_DIM / 2], rng), randn([T, HEAD_DIM / 2], rng)];
const gqa: GroupedAttentionOptions = { nHead: HEADS, nKvHead: KV_HEADS, scale: 1 / Math.sqrt(HEAD_DIM) };

const CASES: Case[] = [
  {
    name: `rmsNorm (1, ${T}, ${HIDDEN})`,
    inputs: () => [randn([1, T, HIDDEN], rng).requireGrad(), randn([HIDDEN], rng, 0.1, 1).requireGrad()],
    fused: ([x, w]) => rmsNorm(x, w, 1e-5),
    composite: ([x, w]) => rmsNormComposite(x, w, 1e-5),
    backward: true,
  },
  {
    name: `rope q (1, ${T}, ${HEADS}x${HEAD_DIM})`,
    inputs: () => [randn([1, T, HIDDEN], rng).requireGrad(), ...cosSin()],
    fused: ([x, c, s]) => rope(x, HEADS, c, s),
    composite: ([x, c, s]) => ropeComposite(x, HEADS, c, s),
    backward: true,
  },
  {
    name: `siluMul (1, ${T}, ${INTERMEDIATE})`,
    inputs: () => [randn([1, T, INTERMEDIATE], rng).requireGrad(), randn([1, T, INTERMEDIATE], rng).requireGrad()],
    fused: ([g, u]) => siluMul(g, u),
    composite: ([g, u]) => siluMulComposite(g, u),
    backward: true,
  },
  {
    name: `groupedCausalAttention ${HEADS}/${KV_HEADS} heads T ${T}`,
    inputs: () => [randn([1, T, HIDDEN], rng).requireGrad(), randn([1, T, KV_HEADS * HEAD_DIM], rng).requireGrad(),
      randn([1, T, KV_HEADS * HEAD_DIM], rng).requireGrad()],
    fused: ([q, k, v]) => groupedCausalAttention(q, k, v, gqa),
    composite: ([q, k, v]) => groupedCausalAttentionComposite(q, k, v, gqa),
    backward: true,
  },
  {
    name: `groupedCausalAttention decode, ${T} cached`,
    inputs: () => [randn([1, 1, HIDDEN], rng), randn([1, T, KV_HEADS * HEAD_DIM], rng),
      randn([1, T, KV_HEADS * HEAD_DIM], rng)],
    fused: ([q, k, v]) => groupedCausalAttention(q, k, v, gqa),
    composite: ([q, k, v]) => groupedCausalAttentionComposite(q, k, v, gqa),
    backward: false,
  },
];

const LLAMA_KERNELS: (keyof FusedKernels)[] = ['rmsNorm', 'rmsNormBackward', 'rope', 'siluMul', 'siluMulBackward',
  'groupedAttention', 'groupedAttentionBackward'];

/** The same backend without the Llama kernels, so the Llama ops run as their composites. */
function withoutLlamaKernels(be: Backend): Backend {
  const fused: Partial<FusedKernels> = { ...be.fused };
  for (const k of LLAMA_KERNELS) delete fused[k];
  return { ...be, name: `${be.name} without the Llama kernels`, fused };
}

/** A training step of a 2-layer model of SmolLM2-135M's layers: the loss of T tokens, on either backend. */
function modelCase(be: Backend): Case {
  const vocab = 2048;
  const model = new LlamaForCausalLM({
    architectures: ['LlamaForCausalLM'], hidden_size: HIDDEN, intermediate_size: INTERMEDIATE, num_attention_heads: HEADS,
    num_key_value_heads: KV_HEADS, num_hidden_layers: 2, vocab_size: vocab, max_position_embeddings: Math.max(T, 2048),
    rms_norm_eps: 1e-5, rope_theta: 100000, tie_word_embeddings: true,
  }, 'LlamaForCausalLM', 'llama');
  model.initWeights(new Rng(2));
  const ids = Int32Array.from({ length: T }, (_, i) => (i * 7919) % vocab);
  const targets = Int32Array.from({ length: T }, (_, i) => (i * 104729 + 1) % vocab);
  const loss = (): Tensor => crossEntropy(reshape(model.forward(ids, 1), [T, vocab]), targets);
  const plain = withoutLlamaKernels(be);
  return {
    name: `Llama step: 2 SmolLM2-135M layers, T ${T}`,
    inputs: () => [],
    fused: () => loss(),
    composite: () => {
      const prev = getBackend();
      setBackend(plain);
      try {
        return loss();
      } finally {
        setBackend(prev);
      }
    },
    backward: true,
    zeroGrads: () => {
      for (const [, t] of model.module.namedParameters()) t.grad = null;
    },
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

interface Timing {
  wall: number; // median wall milliseconds
  cpu: number; // median process CPU milliseconds (user + system, every thread)
}

/**
 * Median wall and CPU milliseconds of `run` over reps (after two warm-up runs). Before each run, untimed, the
 * backend gives back the previous run's dead buffers, so runs write into reused memory as a training loop's steps
 * do, not into fresh pages the system must first map.
 */
async function time(be: WasmBackend, run: () => void): Promise<Timing> {
  run();
  run();
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < reps; i++) {
    // NOTE: a sweep gives back buffers that died in an earlier turn of the event loop, so wait for one first.
    await new Promise((resolve) => setImmediate(resolve));
    be.sweepMemory();
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    run();
    wall.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu.push((c.user + c.system) / 1000);
  }
  return { wall: median(wall), cpu: median(cpu) };
}

interface Row {
  op: string;
  pass: 'forward' | 'forward+backward';
  composite: Timing;
  fused: Timing;
  speedupWall: number;
  speedupCpu: number;
}

async function main(): Promise<void> {
  if (!wasmAvailable()) {
    console.error(`wasm backend unavailable: ${wasmUnavailableReason()}`);
    process.exitCode = 1;
    return;
  }
  if (backendArg === 'native' && !nativeAvailable()) {
    console.error(`native backend unavailable: ${nativeUnavailableReason()}`);
    process.exitCode = 1;
    return;
  }
  if (!(Number.isInteger(reps) && reps >= 1 && Number.isInteger(threads) && threads >= 0 && Number.isInteger(T) && T >= 1) ||
    (backendArg !== 'wasm' && backendArg !== 'native')) {
    console.error('usage: node dist/bench/fused.js [--backend wasm|native] [--reps N] [--threads N] [--T N] [--json]');
    process.exitCode = 2;
    return;
  }
  const be = createWasmBackend(threads > 0 ? { threads } : {});
  be.waitForWorkers();
  // NOTE: the native backend keeps its buffers (and every kernel it lacks) on this wasm backend.
  const measured: Backend = backendArg === 'native' ? createNativeBackend({ base: be, ...(threads > 0 ? { threads } : {}) }) : be;
  setBackend(measured);
  const rows: Row[] = [];
  for (const c of [...CASES, modelCase(measured)]) {
    const xs = c.inputs();
    const up = randn(c.fused(xs).shape, rng);
    const forward = (f: Case['fused']) => (): void => {
      noGrad(() => f(xs));
    };
    const both = (f: Case['fused']) => (): void => {
      for (const x of xs) x.grad = null;
      c.zeroGrads?.();
      f(xs).backward(up);
    };
    const passes: [Row['pass'], (f: Case['fused']) => () => void][] = [['forward', forward]];
    if (c.backward) passes.push(['forward+backward', both]);
    for (const [pass, mk] of passes) {
      const composite = await time(be, mk(c.composite));
      const fused = await time(be, mk(c.fused));
      const row: Row = { op: c.name, pass, composite, fused, speedupWall: composite.wall / fused.wall,
        speedupCpu: composite.cpu / fused.cpu };
      rows.push(row);
      if (!json) {
        const ms = (t: Timing): string => `${t.wall.toFixed(2).padStart(7)} ms (cpu ${t.cpu.toFixed(2).padStart(7)})`;
        console.log(`${c.name.padEnd(44)} ${pass.padEnd(16)}  composite ${ms(composite)}  fused ${ms(fused)}` +
          `  x${row.speedupWall.toFixed(2)} (cpu x${row.speedupCpu.toFixed(2)})`);
      }
    }
  }
  const isa = 'isa' in measured ? ` (${String(measured.isa)})` : '';
  if (json) console.log(JSON.stringify({ backend: measured.name + isa, threads: be.threads, variant: be.variant, T, reps, rows }, null, 2));
  else console.log(`${measured.name}${isa} backend, ${be.threads} thread(s), wasm ${be.variant} kernels, median of ${reps} runs`);
  be.close();
}

await main();
