// ajar eval: a language model's mean next-token loss, perplexity and token count over a text file, or a
// classifier's accuracy, per-class precision/recall/F1, macro-F1 and confusion matrix (MSE/MAE for regression).
import { loadDataset, type ExampleData } from '../data/index.js';
import { evaluateClassifier, evaluateLM, type ClassifierEvalResult } from '../eval/index.js';
import { loadPretrained } from '../models/index.js';
import type { SequenceClassifier } from '../models/types.js';
import { appendResult } from '../release/index.js';
import { bool, num, parseFlags, requireStr, str } from './args.js';
import { printJson, readTextFile, selectBackend } from './common.js';
import { Progress } from './progress.js';
import { modelDirArg } from './pull.js';

const HELP = `usage: ajar eval -m, --model DIR|ORG/NAME[@REV] --data FILE [--adapter DIR] [--block-size N] [--record] [--json]
                 [--backend native|wasm|js]

Tokenises FILE with the model's tokenizer, splits the ids into consecutive windows of at most the
model's context (or N) tokens, predicts every token after the first of each window and reports the
mean loss in nats per predicted token, the perplexity, the number of predicted tokens and the top-1 accuracy
(the share of tokens the model ranks first); --json prints {"loss", "perplexity", "tokens", "accuracy"}.
For a classifier (GPT2ForSequenceClassification), FILE holds {"text","label"} records (JSONL or CSV) and
the report is accuracy, per-class precision/recall/F1, macro-F1 and the confusion matrix; a regressor
reports MSE and MAE. --json prints one object in every case.
--adapter applies a PEFT LoRA adapter folder (adapter_config.json, adapter_model.safetensors) over the model.
--record appends the result to DIR/ajar_results.json (the adapter's folder with --adapter), where
'ajar release open' finds it for the model card.`;

export async function evalCommand(argv: string[]): Promise<number> {
  const p = parseFlags('eval', argv, {
    model: { type: 'string' }, data: { type: 'string' }, adapter: { type: 'string' }, 'block-size': { type: 'string' },
    json: { type: 'boolean' }, backend: { type: 'string' }, record: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
  });
  if (bool(p, 'help')) {
    console.log(HELP);
    return 0;
  }
  const modelDir = await modelDirArg(requireStr('eval', p, 'model'), 'eval');
  const dataPath = requireStr('eval', p, 'data');
  const blockSize = num('eval', p, 'block-size', { int: true, min: 2 });
  selectBackend(str(p, 'backend'));
  const json = bool(p, 'json');
  const adapter = str(p, 'adapter');
  const loaded = loadPretrained(modelDir, { int8: true, ...(adapter !== undefined ? { adapter } : {}) });
  const recordDir = adapter ?? modelDir;
  if (loaded.model.task === 'sequence-classification') {
    return evalClassifier(loaded.model, loaded.tokenizer, recordDir, dataPath, blockSize, json, bool(p, 'record'));
  }
  const model = loaded.model;
  const tokenizer = loaded.tokenizer;
  const text = readTextFile(dataPath, 'data file');
  const ids = tokenizer.encode(text);
  if (tokenizer.addBos && tokenizer.bosTokenId !== null) ids.unshift(tokenizer.bosTokenId);
  const progress = new Progress({ label: 'eval', total: 0, unit: 'tok' });
  const result = evaluateLM(model, ids, {
    blockSize,
    onProgress: (done, total) => progress.update(done, total),
  });
  progress.done();
  if (bool(p, 'record')) {
    const path = appendResult(recordDir, {
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
    printJson({ loss: result.loss, perplexity: result.perplexity, tokens: result.tokens, accuracy: result.accuracy });
  } else {
    console.log(`loss ${result.loss.toFixed(4)}  perplexity ${result.perplexity.toFixed(3)}  tokens ${result.tokens}  accuracy ${(100 * result.accuracy).toFixed(2)}%`);
  }
  return 0;
}

async function evalClassifier(model: SequenceClassifier, tokenizer: Parameters<typeof loadDataset>[1], modelDir: string,
  dataPath: string, blockSize: number | undefined, json: boolean, record: boolean): Promise<number> {
  readTextFile(dataPath, 'data file'); // a clear error for a missing file before parsing
  const data = loadDataset({ path: dataPath, task: model.regression ? 'regression' : 'classification' }, tokenizer) as ExampleData;
  const progress = new Progress({ label: 'eval', total: data.examples.length, unit: 'ex' });
  const r = evaluateClassifier(model, data, { blockSize, padId: tokenizer.eosTokenId ?? 0, onProgress: (d, t) => progress.update(d, t) });
  progress.done();
  if (record) {
    const metrics: Record<string, number> = r.task === 'classification'
      ? { accuracy: r.accuracy, macro_f1: r.macro_f1, loss: r.loss, examples: r.examples }
      : { mse: r.mse, mae: r.mae, examples: r.examples };
    const path = appendResult(modelDir, {
      task: r.task, dataset: dataPath, metrics, iters: null, date: new Date().toISOString(), source: 'ajar eval',
      block_size: blockSize ?? model.contextLength,
    });
    console.error(`ajar eval: recorded in ${path}`);
  }
  if (json) {
    printJson(r);
    return 0;
  }
  printClassifierReport(r);
  return 0;
}

function printClassifierReport(r: ClassifierEvalResult): void {
  if (r.task === 'regression') {
    console.log(`mse ${r.mse.toFixed(4)}  mae ${r.mae.toFixed(4)}  examples ${r.examples}`);
    return;
  }
  console.log(`accuracy ${(100 * r.accuracy).toFixed(2)}%  macro-F1 ${r.macro_f1.toFixed(4)}  loss ${r.loss.toFixed(4)}  ` +
    `examples ${r.examples}  (majority baseline ${(100 * r.majority_baseline).toFixed(2)}%)`);
  const w = Math.max(5, ...r.per_class.map((m) => m.label.length));
  console.log(`${'label'.padEnd(w)}  precision  recall  f1      support`);
  for (const m of r.per_class) {
    console.log(`${m.label.padEnd(w)}  ${m.precision.toFixed(4).padEnd(9)}  ${m.recall.toFixed(4)}  ${m.f1.toFixed(4)}  ${m.support}`);
  }
  console.log(`confusion (rows: true, columns: predicted; ${r.per_class.map((m) => m.label).join(', ')}):`);
  for (const row of r.confusion) console.log(`  ${row.map((v) => String(v).padStart(5)).join(' ')}`);
}
