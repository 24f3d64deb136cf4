// ajar eval: mean next-token loss, perplexity and token count of a model over a text file.
import { evaluateLM } from '../eval/index.js';
import { loadCausalLM } from '../models/index.js';
import { appendResult } from '../release/index.js';
import { bool, num, parseFlags, requireStr, str } from './args.js';
import { printJson, readTextFile, selectBackend } from './common.js';
import { Progress } from './progress.js';

const HELP = `usage: ajar eval --model DIR --data FILE [--block-size N] [--record] [--json] [--backend js]

Tokenises FILE with the model's tokenizer, splits the ids into consecutive windows of at most the
model's context (or N) tokens, predicts every token after the first of each window and reports the
mean loss in nats per predicted token, the perplexity and the number of predicted tokens.
--record appends the result to DIR/ajar_results.json, where 'ajar release open' finds it for the model card.`;

export async function evalCommand(argv: string[]): Promise<number> {
  const p = parseFlags('eval', argv, {
    model: { type: 'string' }, data: { type: 'string' }, 'block-size': { type: 'string' },
    json: { type: 'boolean' }, backend: { type: 'string' }, record: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
  });
  if (bool(p, 'help')) {
    console.log(HELP);
    return 0;
  }
  const modelDir = requireStr('eval', p, 'model');
  const dataPath = requireStr('eval', p, 'data');
  const blockSize = num('eval', p, 'block-size', { int: true, min: 2 });
  selectBackend(str(p, 'backend'));
  const text = readTextFile(dataPath, 'data file');
  const { model, tokenizer } = loadCausalLM(modelDir);
  const ids = tokenizer.encode(text);
  if (tokenizer.addBos && tokenizer.bosTokenId !== null) ids.unshift(tokenizer.bosTokenId);
  const json = bool(p, 'json');
  const progress = new Progress({ label: 'eval', total: 0, unit: 'tok' });
  const result = evaluateLM(model, ids, {
    blockSize,
    onProgress: (done, total) => progress.update(done, total),
  });
  progress.done();
  if (bool(p, 'record')) {
    const path = appendResult(modelDir, {
      task: 'lm',
      dataset: dataPath,
      metrics: { loss: result.loss, perplexity: result.perplexity, accuracy: result.accuracy, tokens: result.tokens },
      iters: null,
      date: new Date().toISOString(),
      source: 'ajar eval',
      block_size: blockSize ?? model.contextLength,
    });
    console.error(`ajar eval: recorded in ${path}`);
  }
  if (json) {
    printJson({ loss: result.loss, perplexity: result.perplexity, tokens: result.tokens });
  } else {
    console.log(`loss ${result.loss.toFixed(4)}  perplexity ${result.perplexity.toFixed(3)}  tokens ${result.tokens}  accuracy ${(100 * result.accuracy).toFixed(2)}%`);
  }
  return 0;
}
