// The shakespeare-char recipe over several seeds, ajar beside nanoGPT's recipe in plain PyTorch
// (bench/nanogpt_shakespeare.py). Both draw their initial weights, training batches and evaluation batches from
// PyTorch's generator in nanoGPT's order, so each seed should give the same losses on both sides up to float32
// rounding, while one 20-batch validation estimate at step 2000 moves by a few hundredths from seed to seed.
// Usage: node dist/bench/shakespeare-seeds.js [--seeds 1337,1,2,3] [--ajar-only | --torch-only] [--torch-threads 1,2] [--json]
// --torch-threads runs PyTorch once per thread setting (torch.set_num_threads(n), through AJAR_THREADS; default: the
// script's own, all cores), so that ajar's time can be set against PyTorch's fastest (issue 16's bar: the preset ends
// in less time than nanoGPT's recipe at its fastest thread setting, with the same validation loss). "seconds" is each
// run's training time as it reports it; "wall" is the whole process, start-up and data loading included.
// Runs go one after another; on 2 cores an ajar run takes 1 to 4 minutes (native to wasm backend), PyTorch 2 to 5.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const PY = '/usr/bin/python3';

interface Run {
  side: 'ajar' | 'pytorch';
  seed: number;
  train_loss: number | null; // the 20-batch estimate at step 2000, as val_loss
  val_loss: number | null;
  seconds: number | null;
  /** The whole process's wall time, seconds. */
  wall: number | null;
  /** PyTorch's torch.set_num_threads, when --torch-threads set it. */
  threads?: number;
  error?: string;
}

function lastJson(text: string): Record<string, unknown> | null {
  const lines = text.trim().split('\n').filter((l) => l.startsWith('{'));
  if (lines.length === 0) return null;
  try {
    return JSON.parse(lines[lines.length - 1]) as Record<string, unknown>;
  } catch {
    return null;
  }
}

function runAjar(seed: number): Run {
  const out = mkdtempSync(join(tmpdir(), 'ajar-seed-'));
  try {
    const t0 = performance.now();
    const r = spawnSync(process.execPath, [`${root}bin/ajar.js`, 'train', '--preset', 'shakespeare-char', '--seed', String(seed),
      '--out', out, '--json'], { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
    const wall = (performance.now() - t0) / 1000;
    const j = lastJson(r.stdout);
    if (r.status !== 0 || !j) return { side: 'ajar', seed, train_loss: null, val_loss: null, seconds: null, wall: null, error: (r.stderr || '').trim().split('\n').pop() };
    return { side: 'ajar', seed, train_loss: j.train_loss as number, val_loss: j.val_loss as number, seconds: j.seconds as number, wall };
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

function runTorch(seed: number, threads: number | undefined): Run {
  const env = threads === undefined ? process.env : { ...process.env, AJAR_THREADS: String(threads) };
  const t0 = performance.now();
  const r = spawnSync(PY, [`${root}bench/nanogpt_shakespeare.py`, '--seed', String(seed)], { cwd: root, encoding: 'utf8', env });
  const wall = (performance.now() - t0) / 1000;
  const j = lastJson(r.stdout);
  if (r.status !== 0 || !j || j.step !== 2000) {
    return { side: 'pytorch', seed, threads, train_loss: null, val_loss: null, seconds: null, wall: null, error: (r.stderr || 'no step-2000 line').trim().split('\n').pop() };
  }
  return { side: 'pytorch', seed, threads, train_loss: j.train_loss as number, val_loss: j.val_loss as number, seconds: j.seconds as number, wall };
}

function summary(runs: Run[]): string {
  const v = runs.map((r) => r.val_loss).filter((x): x is number => x !== null);
  if (v.length === 0) return 'no runs';
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const sd = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, v.length - 1));
  return `${v.length} runs: mean ${mean.toFixed(3)}, sd ${sd.toFixed(3)}, min ${Math.min(...v).toFixed(3)}, ` +
    `max ${Math.max(...v).toFixed(3)}, at or below 1.89: ${v.filter((x) => x <= 1.89).length}`;
}

function main(): void {
  const args = process.argv.slice(2);
  const si = args.indexOf('--seeds');
  const seeds = (si >= 0 ? args[si + 1] ?? '' : '1337,1,2,3,4,5,6').split(',').map(Number);
  if (seeds.length === 0 || seeds.some((s) => !Number.isInteger(s) || s < 0)) {
    console.error(`--seeds needs a comma-separated list of non-negative integers, got '${args[si + 1] ?? ''}'`);
    process.exitCode = 2;
    return;
  }
  const ti = args.indexOf('--torch-threads');
  const threadList: Array<number | undefined> = ti >= 0 ? (args[ti + 1] ?? '').split(',').map(Number) : [undefined];
  if (threadList.some((n) => !Number.isInteger(n) || n! < 1)) {
    console.error(`--torch-threads needs a comma-separated list of positive integers, got '${args[ti + 1] ?? ''}'`);
    process.exitCode = 2;
    return;
  }
  const sides = args.includes('--ajar-only') ? ['ajar'] : args.includes('--torch-only') ? ['pytorch'] : ['ajar', 'pytorch'];
  if (sides.includes('pytorch') && spawnSync(PY, ['-c', 'import torch'], { encoding: 'utf8' }).status !== 0) {
    console.error(`PyTorch side skipped: ${PY} cannot import torch (apt-get install python3-torch)`);
    sides.splice(sides.indexOf('pytorch'), 1);
  }
  const runs: Run[] = [];
  for (const seed of seeds) {
    for (const side of sides) {
      for (const threads of side === 'ajar' ? [undefined] : threadList) {
        console.error(`${side}${threads === undefined ? '' : ` (${threads} threads)`} seed ${seed} ...`);
        const r = side === 'ajar' ? runAjar(seed) : runTorch(seed, threads);
        runs.push(r);
        console.error(r.error ? `  error: ${r.error}` : `  val ${r.val_loss?.toFixed(4)} train ${r.train_loss?.toFixed(4)} ${r.seconds?.toFixed(0)} s`);
      }
    }
  }
  if (args.includes('--json')) {
    console.log(JSON.stringify(runs));
    return;
  }
  console.log('side                 seed  train loss  val loss  seconds  wall');
  for (const r of runs) {
    const side = r.threads === undefined ? r.side : `${r.side} (${r.threads} thr)`;
    console.log(`${side.padEnd(21)}${String(r.seed).padEnd(6)}${(r.train_loss?.toFixed(3) ?? '-').padEnd(12)}` +
      `${(r.val_loss?.toFixed(3) ?? r.error ?? '-').padEnd(10)}${(r.seconds?.toFixed(1) ?? '-').padEnd(9)}${r.wall?.toFixed(1) ?? '-'}`);
  }
  for (const side of sides) console.log(`${side}: ${summary(runs.filter((r) => r.side === side))}`);
}

main();
