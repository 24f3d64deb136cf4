// ajar bench WORKLOAD [--json] [--steps N] [--backend B]: run one benchmark workload in this process.
import { WORKLOADS, peakRssMiB } from '../bench/index.js';
import { AjarError } from '../tensor/errors.js';
import { bool, num, parseFlags, str } from './args.js';
import { backendChoice, printJson, selectBackend } from './common.js';

const HELP = `usage: ajar bench WORKLOAD [--json] [--steps N] [--backend native|wasm|js]

workloads:
${Object.values(WORKLOADS).map((w) => `  ${w.name.padEnd(16)} ${w.about}`).join('\n')}

Prints {"workload", "step_ms_median", "tokens_per_s", "peak_rss_mib", "backend", "backend_why"} with --json:
backend is native, wasm or js, and backend_why says what chose it (the flag, AJAR_BACKEND, or the default
and, when it fell back, why the native kernels did not load).
'npm run bench' runs every workload beside PyTorch and prints the ratios.`;

export async function benchCommand(argv: string[]): Promise<number> {
  const p = parseFlags('bench', argv, {
    json: { type: 'boolean' }, steps: { type: 'string' }, backend: { type: 'string' }, help: { type: 'boolean', short: 'h' },
  }, true);
  if (bool(p, 'help')) {
    console.log(HELP);
    return 0;
  }
  const name = p.positionals[0];
  if (!name) throw new AjarError('bad_flag', `ajar bench: name a workload (${Object.keys(WORKLOADS).join(', ')})`);
  const w = WORKLOADS[name];
  if (!w) throw new AjarError('bad_flag', `ajar bench: unknown workload '${name}' (${Object.keys(WORKLOADS).join(', ')})`);
  const backend = selectBackend(str(p, 'backend'));
  const why = backendChoice(str(p, 'backend'));
  const steps = num('bench', p, 'steps', { int: true, min: 1 });
  const json = bool(p, 'json');
  const r = await w.run({
    steps,
    onStep: json ? undefined : (i, ms) => process.stderr.write(`\r${name}: step ${i + 1} ${ms.toFixed(1)} ms\x1b[K`),
  });
  const out = { ...r, peak_rss_mib: Math.round(peakRssMiB() * 10) / 10, backend: backend.name, backend_why: why };
  if (!json) process.stderr.write(`\nbackend ${backend.name} (${why})\n`);
  if (json) printJson(out);
  else console.log(`${out.workload} [${out.backend}]: ${out.step_ms_median.toFixed(1)} ms/step, ${out.tokens_per_s.toFixed(1)} tok/s, peak RSS ${out.peak_rss_mib} MiB`);
  return 0;
}
