// Peak resident memory of loading a model folder and generating a few tokens greedily, against the model's
// float32 size (parameters x 4 bytes). The target: at most 1.5x for Llama 3.2 1B's shape in BF16
// (make the folder with bench/make_llama_1b.py). One process per measurement: maxRSS is the process's peak.
// Usage: node dist/bench/load-memory.js DIR [--tokens N] [--backend js|wasm] [--max-ratio R]
//   prints one JSON line; with --max-ratio, exits 1 when the ratio is above R.
import { selectBackend } from '../src/backends/select.js';
import { weightLoadProgress } from '../src/cli/progress.js';
import { generate } from '../src/generate/index.js';
import { loadCausalLM } from '../src/models/index.js';

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const dir = args.find((a, i) => !a.startsWith('--') && (i === 0 || !args[i - 1].startsWith('--')));
  if (dir === undefined) {
    console.error('usage: node dist/bench/load-memory.js DIR [--tokens N] [--backend js|wasm] [--max-ratio R]');
    return 2;
  }
  const tokens = Number(flag(args, '--tokens') ?? 4);
  const maxRatio = flag(args, '--max-ratio');
  const backend = selectBackend(flag(args, '--backend'));

  const t0 = performance.now();
  const { model } = loadCausalLM(dir, { onProgress: weightLoadProgress(dir) });
  const loadS = (performance.now() - t0) / 1000;
  const rssAfterLoad = process.resourceUsage().maxRSS * 1024;

  // Token ids, not text: the checkpoint's tokenizer need not cover its vocabulary (make_llama_1b.py's has 256 bytes).
  const prompt = [128000, 791, 6460, 315, 9822, 374];
  const noText = { encode: (): number[] => [], tokenBytes: (): Uint8Array => new Uint8Array(0) };
  const t1 = performance.now();
  const out = await generate(model, noText, prompt.map((id) => id % model.vocabSize),
    { maxNewTokens: tokens, temperature: 0, stopAtEos: false });
  const genS = (performance.now() - t1) / 1000;

  const params = model.module.numParameters();
  const f32Bytes = params * 4;
  const peak = process.resourceUsage().maxRSS * 1024; // maxRSS is in KiB
  const ratio = peak / f32Bytes;
  console.log(JSON.stringify({
    dir, architecture: model.architecture, backend: backend.name, params, f32_bytes: f32Bytes,
    peak_rss_bytes: peak, peak_rss_after_load_bytes: rssAfterLoad, ratio: Math.round(ratio * 1000) / 1000,
    load_s: Math.round(loadS * 10) / 10, generate_s: Math.round(genS * 10) / 10, new_ids: out.ids,
  }));
  if (maxRatio !== undefined && ratio > Number(maxRatio)) {
    console.error(`peak RSS ${(peak / 2 ** 30).toFixed(2)} GiB is ${ratio.toFixed(3)}x the float32 size, above ${maxRatio}x`);
    return 1;
  }
  return 0;
}

main().then((code) => {
  process.exitCode = code;
}, (e: unknown) => {
  console.error(e instanceof Error ? e.message : String(e));
  process.exitCode = 2;
});
