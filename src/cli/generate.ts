// ajar generate: stream a continuation of a prompt; --json prints {"text", "ids", "finish_reason", "seed"}.
import { randomInt } from 'node:crypto';
import { emptyPromptIds, generateStream } from '../generate/index.js';
import { loadCausalLM } from '../models/index.js';
import { AjarError } from '../tensor/errors.js';
import { bool, num, parseFlags, requireStr, str } from './args.js';
import { printJson, selectBackend } from './common.js';
import { modelDirArg } from './pull.js';
import { weightLoadProgress } from './progress.js';

const HELP = `usage: ajar generate -m, --model DIR|ORG/NAME[@REV] [--adapter DIR] -p, --prompt S [-n, --max-new-tokens N]
                     [-t, --temperature T] [--top-k K] [--top-p P] [--repetition-penalty R] [--seed S] [--stop S]...
                     [--json] [--backend native|wasm|js]

Streams the continuation of S as it is produced. Temperature 0 means greedy. --stop may be repeated;
generation ends before the first stop string, at end-of-text, or after N new tokens (default 64). Past the
model's context the model sees the last context-length tokens (nanoGPT's crop), so N may exceed the context.
An empty prompt (--prompt "") starts from the BOS token, or from "\n" for a model without one (nanoGPT's sample.py).
The seed is random unless --seed S is given; --json prints {"text", "ids", "finish_reason", "seed"} with
finish_reason one of length, stop, eos.
--adapter applies a PEFT LoRA adapter folder over the model.`;

export async function generateCommand(argv: string[]): Promise<number> {
  const p = parseFlags('generate', argv, {
    model: { type: 'string' }, adapter: { type: 'string' }, prompt: { type: 'string' }, 'max-new-tokens': { type: 'string' },
    temperature: { type: 'string' }, 'top-k': { type: 'string' }, 'top-p': { type: 'string' },
    'repetition-penalty': { type: 'string' }, seed: { type: 'string' }, stop: { type: 'string', multiple: true },
    json: { type: 'boolean' }, backend: { type: 'string' }, help: { type: 'boolean', short: 'h' },
  });
  if (bool(p, 'help')) {
    console.log(HELP);
    return 0;
  }
  const dir = await modelDirArg(requireStr('generate', p, 'model'), 'generate');
  const prompt = str(p, 'prompt');
  if (prompt === undefined) throw new AjarError('bad_flag', 'ajar generate: --prompt is required (--prompt "" starts from the beginning of a text)');
  const opts = {
    maxNewTokens: num('generate', p, 'max-new-tokens', { int: true, min: 0 }) ?? 64,
    temperature: num('generate', p, 'temperature', { min: 0 }) ?? 1,
    topK: num('generate', p, 'top-k', { int: true, min: 0 }),
    topP: num('generate', p, 'top-p', { above: 0, max: 1 }),
    repetitionPenalty: num('generate', p, 'repetition-penalty', { min: 0 }),
    // NOTE: a random seed by default, as transformers' and llama.cpp's sampling; --json reports it for a rerun.
    seed: num('generate', p, 'seed', { int: true }) ?? randomInt(0, 2 ** 31),
    stop: (p.values.stop as string[] | undefined) ?? [],
  };
  selectBackend(str(p, 'backend'));
  const adapter = str(p, 'adapter');
  const { model, tokenizer } = loadCausalLM(dir, { onProgress: weightLoadProgress(dir), int8: true, ...(adapter !== undefined ? { adapter } : {}) });
  const promptIds = tokenizer.encode(prompt);
  if (tokenizer.addBos && tokenizer.bosTokenId !== null) promptIds.unshift(tokenizer.bosTokenId);
  if (promptIds.length === 0) promptIds.push(...emptyPromptIds(tokenizer));
  const json = bool(p, 'json');
  const it = generateStream(model, tokenizer, promptIds, opts);
  for (;;) {
    const r = await it.next();
    if (r.done) {
      if (json) printJson({ text: r.value.text, ids: r.value.ids, finish_reason: r.value.finishReason, seed: opts.seed });
      else process.stdout.write('\n');
      break;
    }
    if (!json && r.value.text) process.stdout.write(r.value.text);
  }
  return 0;
}
