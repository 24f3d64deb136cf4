// Where a workload's time goes: every kernel call of a backend (--backend, default wasm) timed by kind (matmuls by shape, element-
// wise ops by op and shapes, fused kernels by name), per step, beside the step's median. The workloads are
// `ajar bench`'s. Kernel times include the wait for worker threads; time outside kernels (graph bookkeeping,
// JavaScript loops) is the step minus the kernel total. The median is over all timed steps, the tallies over
// all but the first.
// Usage: node dist/bench/profile.js [WORKLOAD] [--steps N] [--top N] [--backend native|wasm|js]
import { selectBackend } from '../src/backends/select.js';
import { WORKLOADS } from '../src/bench/workloads.js';
import type { Backend, MatmulArgs } from '../src/tensor/backend.js';

interface Tally {
  calls: number;
  ms: number;
}

function main(): Promise<void> | void {
  const args = process.argv.slice(2);
  const flag = (name: string, dflt: number): number => {
    const i = args.indexOf(name);
    return i >= 0 ? Number(args[i + 1]) : dflt;
  };
  const name = args.find((a, i) => !a.startsWith('--') && !(i > 0 && args[i - 1].startsWith('--'))) ?? 'train-baby';
  const spec = WORKLOADS[name];
  const steps = flag('--steps', 20);
  const top = flag('--top', 30);
  if (!spec || !Number.isInteger(steps) || steps < 1 || !Number.isInteger(top) || top < 1) {
    console.error(`usage: node dist/bench/profile.js [${Object.keys(WORKLOADS).join('|')}] [--steps N] [--top N]`);
    process.exitCode = 2;
    return;
  }
  const named = args.indexOf('--backend');
  const be = selectBackend(named >= 0 ? args[named + 1] : 'wasm');
  const tallies = new Map<string, Tally>();
  const timed = <F extends (...a: never[]) => unknown>(label: (a: Parameters<F>) => string, f: F): F =>
    ((...a: Parameters<F>) => {
      const t0 = performance.now();
      const r = f(...a);
      const key = label(a);
      const t = tallies.get(key) ?? { calls: 0, ms: 0 };
      t.calls++;
      t.ms += performance.now() - t0;
      tallies.set(key, t);
      return r;
    }) as F;
  const b = be as unknown as Record<string, unknown>;
  const wrap = (method: keyof Backend, label: (a: unknown[]) => string): void => {
    const f = b[method];
    if (typeof f === 'function') b[method] = timed((a: unknown[]) => `${method}${label(a)}`, f.bind(be) as (...a: unknown[]) => unknown);
  };
  const dims = (s: unknown): string => (Array.isArray(s) ? s.join('x') : '');
  wrap('unary', (a) => ` ${String(a[0])}`);
  wrap('binary', (a) => ` ${String(a[0])} ${dims(a[2])},${dims(a[4])}`);
  wrap('matmul', (a) => {
    const m = a[3] as MatmulArgs;
    return ` ${m.batch}x${m.M}x${m.K}x${m.N}${m.transA ? ' Aᵀ' : ''}${m.transB ? ' Bᵀ' : ''}`;
  });
  for (const m of ['where', 'reduce', 'argmax', 'gather', 'scatterAdd', 'permute', 'copyAxis', 'gatherRows', 'scatterAddRows'] as const) {
    wrap(m, () => '');
  }
  const fused = be.fused as unknown as Record<string, (...a: unknown[]) => unknown>;
  for (const k of Object.keys(fused)) fused[k] = timed(() => `fused ${k}`, fused[k]);
  return (async () => {
    // Tally from the end of the first timed step on: warm-up steps (and the first, while the kernels tier up in
    // V8) would inflate the counts.
    let counted = 0;
    const r = await spec.run({
      steps: steps + 1,
      onStep: (i) => {
        if (i === 0) tallies.clear();
        else counted++;
      },
    });
    const total = [...tallies.values()].reduce((s, t) => s + t.ms, 0);
    const perStep = (x: number): number => x / Math.max(1, counted);
    console.log(`${name}: median step ${r.step_ms_median.toFixed(1)} ms, kernels ${perStep(total).toFixed(1)} ms a step`);
    console.log('ms/step  share  calls/step  kernel');
    for (const [k, t] of [...tallies.entries()].sort((x, y) => y[1].ms - x[1].ms).slice(0, top)) {
      console.log(`${perStep(t.ms).toFixed(2).padStart(7)}  ${((100 * t.ms) / total).toFixed(1).padStart(4)}%  ` +
        `${perStep(t.calls).toFixed(1).padStart(10)}  ${k}`);
    }
  })();
}

void main();
