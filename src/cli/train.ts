// ajar train [CONFIG.yaml|json] [--preset NAME] [--key value ...]: preset, then file, then flags.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { generate } from '../generate/index.js';
import { AjarError } from '../tensor/errors.js';
import { CONFIG_KEYS, DEFAULTS, PRESETS, applyOverrides, presetConfig, validateConfig, type TrainConfig } from '../train/config.js';
import { Trainer } from '../train/trainer.js';
import { printJson, selectBackend } from './common.js';
import { fmtDuration } from './progress.js';
import { hubIdOf, modelDirArg } from './pull.js';

const HELP = `usage: ajar train [CONFIG.yaml|json] [--preset NAME] [--key value ...] [-o, --out DIR] [--json] [--backend native|wasm|js]

Trains a GPT-2-style model from scratch or fine-tunes a Hugging Face folder (--init-from DIR, or ORG/NAME[@REV]
from the hub, pulled when not cached), evaluates it every eval-interval steps, checkpoints, and saves the
model as a Hugging Face folder in --out. With --lora the --init-from base stays frozen and low-rank adapters
train on its projections (--lora-r, --lora-alpha, --lora-dropout, --lora-targets, --use-rslora); --out is then a
PEFT adapter folder (adapter_config.json, adapter_model.safetensors) for --adapter and 'ajar merge'.
With --dp it trains with DP-SGD on example data (Poisson batches, per-example clipping to --dp-max-grad-norm,
noise of --dp-noise-multiplier, or solved from --dp-target-epsilon; --dp-delta below 1/N by default) and logs
epsilon; the run folder gets privacy.json.
With --canaries N it plants N random secrets of --canary-format (default "my PIN is {digits:6}"; placeholders
{digits:N} and {letters:N}) in the training data, each --canary-repeats times, and keeps them in OUT.canaries.json
beside the run folder (never inside it, so 'ajar release' cannot ship them) for 'ajar audit --canaries'. Language
model data only: instruction data gets the text before the secret as prompt, the rest as completion.
Values on the command line override the file, which overrides the preset.
--seed seeds a PyTorch-compatible generator: a model from scratch gets the initial weights, training
batches, evaluation batches and dropout masks that nanoGPT's train.py gets with the same seed.
--json prints {"out_dir", "iters", "train_loss", "val_loss", "best_val_loss", "seconds", "tokens_per_s"}
(the losses are the last evaluation's estimates; tokens_per_s counts the optimizer steps' time, evaluation left
out; "canaries_file" with --canaries); every logged value is in OUT/metrics.jsonl. The progress ETA appears after a few steps.

presets:
${Object.entries(PRESETS).map(([n, p]) => `  ${n.padEnd(18)} ${p.about}`).join('\n')}

keys (defaults in parentheses):
${CONFIG_KEYS.map((k) => `  --${k.replace(/_/g, '-')} (${JSON.stringify(DEFAULTS[k])})`).join('\n')}`;

/** The training bar: [#####---------------]. */
function stepBar(step: number, maxIters: number): string {
  const width = 20;
  const filled = Math.round((width * step) / Math.max(1, maxIters));
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
}

const BOOLEAN_KEYS = new Set(CONFIG_KEYS.filter((k) => typeof DEFAULTS[k] === 'boolean').map((k) => k.replace(/_/g, '-')));

interface TrainArgs {
  file?: string;
  preset?: string;
  json: boolean;
  help: boolean;
  backend?: string;
  overrides: Record<string, string | boolean>;
}

function parseTrainArgs(argv: string[]): TrainArgs {
  const out: TrainArgs = { json: false, help: false, overrides: {} };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) {
      if (a === '-h') {
        out.help = true;
        continue;
      }
      if (a === '-o') {
        // NOTE: the one short alias of a config key (-o as --out, as other commands take it).
        if (i + 1 >= argv.length) throw new AjarError('bad_flag', 'ajar train: -o needs a value (the output folder)');
        out.overrides.out = argv[++i];
        continue;
      }
      if (out.file) throw new AjarError('bad_flag', `ajar train: one config file at most (got '${out.file}' and '${a}')`);
      out.file = a;
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
    let value: string | undefined = eq >= 0 ? a.slice(eq + 1) : undefined;
    if (name === 'json' || name === 'help') {
      out[name] = true;
      continue;
    }
    const takesValue = !BOOLEAN_KEYS.has(name) || (value === undefined && argv[i + 1] !== undefined && /^(true|false)$/.test(argv[i + 1]));
    if (value === undefined && takesValue) {
      if (i + 1 >= argv.length || argv[i + 1].startsWith('--')) throw new AjarError('bad_flag', `ajar train: --${name} needs a value`);
      value = argv[++i];
    }
    if (name === 'preset') out.preset = value;
    else if (name === 'backend') out.backend = value;
    else out.overrides[name] = value ?? true;
  }
  return out;
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new AjarError('bad_config', `config file ${path} cannot be read (does it exist?)`);
  }
  let parsed: unknown;
  try {
    parsed = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new AjarError('bad_config', `${path} is not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${(e as Error).message.split('\n')[0]}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new AjarError('bad_config', `${path} must hold a mapping of keys to values`);
  }
  return parsed as Record<string, unknown>;
}

export function resolveTrainConfig(args: TrainArgs): TrainConfig {
  let cfg = { ...DEFAULTS };
  if (args.preset) cfg = applyOverrides(cfg, presetConfig(args.preset), `preset ${args.preset}`);
  if (args.file) {
    const raw = readConfigFile(args.file);
    const preset = raw.preset;
    delete raw.preset;
    if (typeof preset === 'string' && !args.preset) cfg = applyOverrides(cfg, presetConfig(preset), `preset ${preset}`);
    cfg = applyOverrides(cfg, raw, args.file);
  }
  cfg = applyOverrides(cfg, args.overrides, 'command line');
  return validateConfig(cfg);
}

export async function trainCommand(argv: string[]): Promise<number> {
  const args = parseTrainArgs(argv);
  if (args.help) {
    console.log(HELP);
    return 0;
  }
  const cfg = resolveTrainConfig(args);
  let baseModelId: string | undefined;
  if (cfg.init_from !== 'scratch') {
    const arg = cfg.init_from;
    cfg.init_from = await modelDirArg(arg, 'train');
    baseModelId = hubIdOf(arg, cfg.init_from);
  }
  selectBackend(args.backend);
  const tty = Boolean(process.stderr.isTTY);
  let stop = false;
  const onSigint = (): void => {
    if (stop) process.exit(130);
    stop = true;
    process.stderr.write('\nstopping after this step (Ctrl-C again to quit without saving)...\n');
  };
  process.on('SIGINT', onSigint);
  const log = (line: string): void => {
    if (tty) process.stderr.write('\r\x1b[K');
    process.stderr.write(`${line}\n`);
  };
  const trainer = new Trainer(cfg, {
    log,
    status: (line) => log(line),
    shouldStop: () => stop,
    ...(baseModelId ? { baseModelId } : {}),
    progress: (p) => {
      // NOTE: the ETA is the trainer's: step time averaged without evaluations, '--:--' for the first few steps.
      const line = `step ${p.step}/${p.maxIters} loss ${p.loss.toFixed(4)} lr ${p.lr.toExponential(2)} ` +
        `${Math.round(p.tokensPerS)} tok/s ETA ${fmtDuration(p.etaS)}${p.epsilon !== undefined ? ` epsilon ${p.epsilon.toFixed(2)}` : ''}`;
      if (tty) {
        process.stderr.write(`\r${stepBar(p.step, p.maxIters)} ${line}\x1b[K`);
      } else if (p.step % cfg.log_interval === 0 || p.step === p.maxIters) {
        process.stderr.write(`${line}\n`);
      }
    },
    evaluating: (step) => {
      // The bar would otherwise stand still for the whole evaluation.
      if (tty) process.stderr.write(`\r${stepBar(step, cfg.max_iters)} step ${step}/${cfg.max_iters} evaluating (${cfg.eval_iters} batches of train and val data)...\x1b[K`);
    },
  });
  try {
    trainer.setup();
    const summary = await trainer.run();
    if (tty) process.stderr.write('\n');
    const out = {
      out_dir: summary.out_dir,
      iters: summary.iters,
      train_loss: summary.train_loss,
      val_loss: summary.val_loss,
      best_val_loss: summary.best_val_loss,
      seconds: summary.seconds,
      tokens_per_s: summary.tokens_per_s,
      ...(summary.canaries_file !== undefined ? { canaries_file: summary.canaries_file } : {}),
    };
    if (args.json) {
      printJson({ ...out, ...(summary.metrics ? { metrics: summary.metrics } : {}) });
    } else {
      console.log(`saved ${summary.out_dir} after ${summary.iters} iterations in ${fmtDuration(summary.seconds)}: ` +
        `val loss ${summary.val_loss?.toFixed(4)} (best ${summary.best_val_loss?.toFixed(4)}), ${Math.round(summary.tokens_per_s)} tok/s`);
      if (summary.metrics && 'accuracy' in summary.metrics) {
        const m = summary.metrics;
        console.log(`validation accuracy ${(100 * m.accuracy).toFixed(1)}% (majority baseline ${(100 * m.majority_baseline).toFixed(1)}%), macro-F1 ${m.macro_f1.toFixed(3)}`);
      }
      if (!summary.stopped_early && cfg.sample_tokens > 0 && trainer.model.task === 'causal-lm') {
        const tok = trainer.tokenizer;
        const prompt = tok.kind === 'char' ? tok.encode('\n') : tok.eosTokenId !== null ? [tok.eosTokenId] : tok.encode('\n');
        const sample = await generate(trainer.model, tok, prompt, {
          maxNewTokens: cfg.sample_tokens, slidingWindow: true,
          temperature: 0.8, topK: 200, seed: cfg.seed, stopAtEos: true,
        });
        console.log(`\nsample:\n${sample.text}`);
      }
    }
    return summary.stopped_early ? 130 : 0;
  } finally {
    process.off('SIGINT', onSigint);
  }
}
