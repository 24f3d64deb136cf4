// ajar merge: fold a PEFT LoRA adapter into its base model and write a standalone Hugging Face folder.
import { mergeAdapterFolder } from '../models/merge.js';
import { bool, parseFlags, requireStr, str } from './args.js';
import { printJson, selectBackend } from './common.js';
import { modelDirArg } from './pull.js';
import { weightLoadProgress } from './progress.js';

const HELP = `usage: ajar merge --model BASE --adapter DIR --out DIR [--force] [--json] [--backend native|wasm|js]

Loads BASE (a folder or ORG/NAME[@REV]) with the LoRA adapter in DIR (PEFT format: adapter_config.json,
adapter_model.safetensors), folds each adapter into its weight (W + scaling B A; for GPT-2's Conv1D the
transpose) and writes a Hugging Face folder whose outputs equal base + adapter. An --out that exists and is not
empty is refused unless --force is given; then it is replaced.`;

export async function mergeCommand(argv: string[]): Promise<number> {
  const p = parseFlags('merge', argv, {
    model: { type: 'string' }, adapter: { type: 'string' }, out: { type: 'string' }, force: { type: 'boolean' },
    json: { type: 'boolean' }, backend: { type: 'string' }, help: { type: 'boolean', short: 'h' },
  });
  if (bool(p, 'help')) {
    console.log(HELP);
    return 0;
  }
  const base = await modelDirArg(requireStr('merge', p, 'model'), 'merge');
  const adapter = requireStr('merge', p, 'adapter');
  const out = requireStr('merge', p, 'out');
  selectBackend(str(p, 'backend'));
  const r = mergeAdapterFolder(base, adapter, out, { force: bool(p, 'force'), onProgress: weightLoadProgress(base) });
  if (bool(p, 'json')) printJson(r);
  else console.log(`wrote ${r.out}: ${base} with the adapter in ${adapter} merged (${r.layers} layers, r ${r.r}, scaling ${r.scaling})`);
  return 0;
}
