// npm run bench: every workload run by ajar (`ajar bench W --json`, its own process) and by PyTorch
// (bench/torch_ref.py, same shapes) in the same run, and the ratios printed. PyTorch is skipped with a
// message when Debian's python3-torch is absent. Usage: node dist/bench/run.js [WORKLOAD ...] [--json]
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const PY = '/usr/bin/python3';
const ALL = ['train-baby', 'decode-gpt2', 'train-gpt2'];

interface Result {
  workload: string;
  step_ms_median: number;
  tokens_per_s: number;
  peak_rss_mib: number;
  backend: string;
}

function runJson(cmd: string, args: string[], env: NodeJS.ProcessEnv): Result | string {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', env, timeout: 1_800_000 });
  if (r.status !== 0) return (r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n').pop()!;
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as Result;
  } catch {
    return `unreadable output: ${r.stdout.slice(0, 200)}`;
  }
}

function torchAvailable(): boolean {
  return spawnSync(PY, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;
}

function main(): void {
  const args = process.argv.slice(2);
  const json = args.includes('--json');
  const workloads = args.filter((a) => !a.startsWith('--'));
  const list = workloads.length > 0 ? workloads : ALL;
  const haveTorch = torchAvailable();
  if (!haveTorch) console.error(`PyTorch reference skipped: ${PY} cannot import torch (apt-get install python3-torch)`);
  // NOTE: the OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE overrides of this workplace slow OpenBLAS; the reference runs
  // without them, so PyTorch gets its best kernels.
  const torchEnv = { ...process.env };
  delete torchEnv.OPENBLAS_CORETYPE;
  delete torchEnv.OPENBLAS_L2_SIZE;
  const rows: { workload: string; ajar: Result | string; torch: Result | string | null }[] = [];
  for (const w of list) {
    console.error(`running ${w} ...`);
    const ajar = runJson(process.execPath, [`${root}bin/ajar.js`, 'bench', w, '--json'], process.env);
    const torch = haveTorch ? runJson(PY, [`${root}bench/torch_ref.py`, w], torchEnv) : null;
    rows.push({ workload: w, ajar, torch });
  }
  if (json) {
    console.log(JSON.stringify(rows.map((r) => ({
      ...r,
      speed_ratio: typeof r.ajar === 'object' && r.torch && typeof r.torch === 'object' ? r.torch.step_ms_median / r.ajar.step_ms_median : null,
      memory_ratio: typeof r.ajar === 'object' && r.torch && typeof r.torch === 'object' ? r.ajar.peak_rss_mib / r.torch.peak_rss_mib : null,
    }))));
    return;
  }
  const pad = (s: string, n: number): string => s.padEnd(n);
  console.log(`${pad('workload', 13)}${pad('ajar ms/step', 14)}${pad('torch ms/step', 15)}${pad('speed (x torch)', 17)}${pad('ajar MiB', 10)}${pad('torch MiB', 11)}memory (x torch)`);
  for (const r of rows) {
    const a = typeof r.ajar === 'object' ? r.ajar : null;
    const t = r.torch && typeof r.torch === 'object' ? r.torch : null;
    console.log(pad(r.workload, 13) +
      pad(a ? a.step_ms_median.toFixed(1) : 'error', 14) +
      pad(t ? t.step_ms_median.toFixed(1) : r.torch === null ? 'skipped' : 'error', 15) +
      pad(a && t ? `${(t.step_ms_median / a.step_ms_median).toFixed(2)}x` : '-', 17) +
      pad(a ? a.peak_rss_mib.toFixed(0) : '-', 10) +
      pad(t ? t.peak_rss_mib.toFixed(0) : '-', 11) +
      (a && t ? `${(a.peak_rss_mib / t.peak_rss_mib).toFixed(2)}x` : '-'));
    if (typeof r.ajar === 'string') console.log(`  ajar error: ${r.ajar}`);
    if (typeof r.torch === 'string') console.log(`  torch error: ${r.torch}`);
  }
  const first = rows.find((r) => typeof r.ajar === 'object');
  if (first && typeof first.ajar === 'object') console.log(`ajar backend: ${first.ajar.backend}`);
  const ft = rows.find((r) => r.torch && typeof r.torch === 'object');
  if (ft && ft.torch && typeof ft.torch === 'object') console.log(`reference: ${ft.torch.backend}`);
  console.log('speed (x torch) = torch time per step / ajar time per step: above 1 means ajar is faster.');
}

main();
