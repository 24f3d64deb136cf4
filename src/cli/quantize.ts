// ajar quantize: write a model folder's weights as int8 (models/quantize.ts) for generate, serve and eval.
import { quantizeFolder } from '../models/quantize-folder.js';
import { bool, parseFlags, requireStr, str } from './args.js';
import { printJson, selectBackend } from './common.js';
import { modelDirArg } from './pull.js';
import { weightLoadProgress } from './progress.js';

const HELP = `usage: ajar quantize --model DIR --out DIR [--force] [--json] [--backend native|wasm|js]

Loads the model in DIR (a folder or ORG/NAME[@REV]) and writes a Hugging Face folder whose Linear, Conv1D and
embedding weights are int8 with one float32 scale per 32 inputs of a row (llama.cpp's Q8_0 layout, float32
scales); norms, biases and any weight whose inputs do not split into groups of 32 stay float32. config.json gains
"quantization_config" (quant_method "ajar_q8_0"); model.safetensors holds each int8 weight as NAME.qweight (I8,
out x in) and NAME.scales (F32). generate, serve and eval load the folder; train, merge and release refuse it.
An --out that exists and is not empty is refused unless --force is given; then it is replaced.`;

export async function quantizeCommand(argv: string[]): Promise<number> {
  const p = parseFlags('quantize', argv, {
    model: { type: 'string', short: 'm' }, out: { type: 'string', short: 'o' }, force: { type: 'boolean' },
    json: { type: 'boolean' }, backend: { type: 'string' }, help: { type: 'boolean', short: 'h' },
  });
  if (bool(p, 'help')) {
    console.log(HELP);
    return 0;
  }
  const src = await modelDirArg(requireStr('quantize', p, 'model'), 'quantize');
  const out = requireStr('quantize', p, 'out');
  selectBackend(str(p, 'backend'));
  const r = quantizeFolder(src, out, { force: bool(p, 'force'), onProgress: weightLoadProgress(src) });
  if (bool(p, 'json')) {
    printJson(r);
  } else {
    const mib = (b: number): string => (b / 2 ** 20).toFixed(1);
    console.log(`wrote ${r.out}: ${r.modules} weights as int8 (groups of ${r.group_size}), ` +
      `tensors ${mib(r.quantized_bytes)} MiB (float32: ${mib(r.float32_bytes)} MiB)`);
  }
  return 0;
}
