// ajar generate: stream a continuation of a prompt; --json prints {"text", "ids"} of the generated part.
import { generateStream } from '../generate/index.js';
import { loadCausalLM } from '../models/index.js';
import { bool, num, parseFlags, requireStr, str } from './args.js';
import { printJson, selectBackend } from './common.js';
import { modelDirArg } from './pull.js';
import { weightLoadProgress } from './progress.js';

const HELP = `usage: ajar generate --model DIR|ORG/NAME[@REV] [--adapter DIR] --prompt S [--max-new-tokens N] [--temperature T] [--top-k K]
                     [--top-p P] [--repetition-penalty R] [--seed S] [--stop S]... [--json] [--backend native|wasm|js]

Streams the continuation of S as it is produced. Temperature 0 means greedy. --stop may be repeated;
generation ends before the first stop string, at end-of-text, or after N new tokens (default 64).
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
  const prompt = requireStr('generate', p, 'prompt');
  const opts = {
    maxNewTokens: num('generate', p, 'max-new-tokens', { int: true, min: 0 }) ?? 64,
    temperature: num('generate', p, 'temperature', { min: 0 }) ?? 1,
    topK: num('generate', p, 'top-k', { int: true, min: 0 }),
    topP: num('generate', p, 'top-p', { min: Number.MIN_VALUE, max: 1 }),
    repetitionPenalty: num('generate', p, 'repetition-penalty', { min: 0 }),
    seed: num('generate', p, 'seed', { int: true }) ?? 0,
    stop: (p.values.stop as string[] | undefined) ?? [],
  };
  selectBackend(str(p, 'backend'));
  const adapter = str(p, 'adapter');
  const { model, tokenizer } = loadCausalLM(dir, { onProgress: weightLoadProgress(dir), ...(adapter !== undefined ? { adapter } : {}) });
  const promptIds = tokenizer.encode(prompt);
  if (tokenizer.addBos && tokenizer.bosTokenId !== null) promptIds.unshift(tokenizer.bosTokenId);
  const json = bool(p, 'json');
  const it = generateStream(model, tokenizer, promptIds, opts);
  for (;;) {
    const r = await it.next();
    if (r.done) {
      if (json) printJson({ text: r.value.text, ids: r.value.ids });
      else process.stdout.write('\n');
      break;
    }
    if (!json && r.value.text) process.stdout.write(r.value.text);
  }
  return 0;
}
