// ajar convert: turn a checkpoint from another toolkit into a Hugging Face model folder ajar (and transformers) load.
// Today one source: llama2.c's legacy .bin model and tokenizer -> a LlamaForCausalLM folder.
import { convertLlama2c } from '../io/llama2c.js';
import { AjarError } from '../tensor/errors.js';
import { bool, parseFlags, requireStr } from './args.js';
import { printJson } from './common.js';
import { Progress } from './progress.js';

const HELP = `usage: ajar convert llama2c --model FILE.bin --tokenizer TOK.bin --out DIR [--force] [--json]

Writes a Hugging Face Llama folder (config.json, model.safetensors, tokenizer.json, tokenizer_config.json,
generation_config.json) from a llama2.c checkpoint (legacy version 0 export) and its tokenizer .bin.
An --out that exists and is not empty is refused unless --force is given; then it is replaced.`;

const SOURCES = ['llama2c'];

export async function convertCommand(argv: string[]): Promise<number> {
  const p = parseFlags('convert', argv, {
    model: { type: 'string' }, tokenizer: { type: 'string' }, out: { type: 'string' },
    force: { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
  }, true);
  if (bool(p, 'help')) {
    console.log(HELP);
    return 0;
  }
  const [source, ...extra] = p.positionals;
  if (source === undefined || !SOURCES.includes(source) || extra.length > 0) {
    const got = source === undefined ? 'none' : `'${p.positionals.join(' ')}'`;
    throw new AjarError('bad_flag', `ajar convert: name the source format (${SOURCES.join(', ')}), got ${got} (see 'ajar convert --help')`);
  }
  const progress = new Progress({ label: 'convert', total: 4, unit: 'step' });
  const r = convertLlama2c({
    model: requireStr('convert', p, 'model'),
    tokenizer: requireStr('convert', p, 'tokenizer'),
    out: requireStr('convert', p, 'out'),
    force: bool(p, 'force'),
    onProgress: (done, total) => progress.update(done, total),
  });
  progress.done();
  const c = r.config;
  if (bool(p, 'json')) {
    printJson({ out: r.out, files: r.files, tensors: r.tensors, parameters: r.parameters, merges: r.merges, config: c });
  } else {
    console.log(`wrote ${r.out}: LlamaForCausalLM, ${r.parameters} parameters in ${r.tensors} tensors (dim ${c.dim}, `
      + `${c.n_layers} layers, ${c.n_heads} heads, ${c.n_kv_heads} KV heads, vocab ${c.vocab_size}), ${r.merges} merges; `
      + `try 'ajar generate --model ${r.out} --prompt "Once upon a time" --temperature 0'`);
  }
  return 0;
}
