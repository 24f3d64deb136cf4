// ajar's CLI dispatcher: argv -> one command module. Commands hold no logic beyond flags and printing.
// Every AjarError becomes one line on stderr and exit code 2; anything else is a bug and says so.
// git's conventions: bare `ajar` and `ajar help` list the commands, `ajar help CMD` is `ajar CMD --help`,
// `ajar --version`, and a mistyped command gets a "did you mean".
import { readFileSync } from 'node:fs';
import { isAjarError } from '../tensor/errors.js';
import { closest } from './suggest.js';

type Command = (argv: string[]) => Promise<number>;

const commands: Record<string, { summary: string; load: () => Promise<Command> }> = {
  bench: { summary: 'time a workload (train-baby, train-gpt2, decode-gpt2); npm run bench compares with PyTorch',
    load: async () => (await import('./bench.js')).benchCommand },
  eval: { summary: 'loss, perplexity and token count of a model over a text file',
    load: async () => (await import('./eval.js')).evalCommand },
  generate: { summary: 'stream a continuation of a prompt',
    load: async () => (await import('./generate.js')).generateCommand },
  merge: { summary: 'fold a LoRA adapter (PEFT format) into its base: a standalone Hugging Face folder',
    load: async () => (await import('./merge.js')).mergeCommand },
  quantize: { summary: 'store a model\'s weights as int8 (Q8_0-style, 32 per scale) for faster generate, serve and eval',
    load: async () => (await import('./quantize.js')).quantizeCommand },
  pull: { summary: 'download a Hugging Face model repo into the hub cache (any --model also takes ORG/NAME[@REV])',
    load: async () => (await import('./pull.js')).pullCommand },
  train: { summary: 'train from scratch or fine-tune; --preset shakespeare-char is nanoGPT\'s CPU recipe',
    load: async () => (await import('./train.js')).trainCommand },
  tokenize: { summary: 'token ids of a text under a model\'s tokenizer',
    load: async () => (await import('./tokenize.js')).tokenizeCommand },
  privacy: { summary: 'the DP-SGD privacy accountant: epsilon of a run, or the noise a target epsilon needs',
    load: async () => (await import('./privacy.js')).privacyCommand },
  plan: { summary: 'compare open, closed and hybrid releases on cost, revenue and risk',
    load: async () => (await import('./plan.js')).planCommand },
  serve: { summary: 'OpenAI-compatible server: API keys, limits, metering, audit log',
    load: async () => (await import('./serve.js')).serveCommand },
  dashboard: { summary: 'the web dashboard: runs, models and releases, keys, usage, playground, plan',
    load: async () => (await import('./dashboard.js')).dashboardCommand },
  keys: { summary: 'create, list, revoke and rotate API keys of the server',
    load: async () => (await import('./keys.js')).keysCommand },
  usage: { summary: 'token usage per API key and day, from the server\'s records',
    load: async () => (await import('./usage.js')).usageCommand },
  audit: { summary: 'the server\'s audit log; with --model, a model\'s privacy audit (membership, canaries, extraction)',
    load: async () => (await import('./audit.js')).auditCommand },
  db: { summary: 'apply the store\'s schema migrations (ajar db migrate --db URL)',
    load: async () => (await import('./db.js')).dbCommand },
  release: { summary: 'ship a model: open (Hugging Face folder, card, licence) or closed (encrypted bundle)',
    load: async () => (await import('./release.js')).releaseCommand },
  convert: { summary: 'turn a llama2.c checkpoint and tokenizer into a Hugging Face Llama folder',
    load: async () => (await import('./convert.js')).convertCommand },
  verify: { summary: 'check a release against SHA256SUMS, or a closed bundle against its manifest',
    load: async () => (await import('./verify.js')).verifyCommand },
};

function usage(): string {
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return `usage: ajar <command> [flags]\n       ajar --version\n\ncommands:\n${lines.join('\n')}\n\n`
    + "Short flags wherever the long one exists: -m --model, -p --prompt, -n --max-new-tokens, -t --temperature, -o --out.\n"
    + "Run 'ajar help <command>' (or 'ajar <command> --help') for its flags.";
}

/** "ajar 0.1.0 (backend wasm)": package.json's version and the backend a command would use here. */
async function versionLine(): Promise<string> {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  const { defaultBackendName } = await import('../backends/select.js');
  return `ajar ${pkg.version} (backend ${process.env.AJAR_BACKEND ?? defaultBackendName()})`;
}

function unknownCommand(name: string): string {
  const guess = closest(name, Object.keys(commands));
  return `ajar: unknown command '${name}'${guess !== undefined ? ` (did you mean '${guess}'?)` : ''}; `
    + "run 'ajar help' for the list";
}

/** One line: a message's own lines joined, and the command's prefix said once. */
function oneLine(name: string, message: string): string {
  const text = message.split('\n').map((l) => l.trim()).filter((l) => l !== '').join(' ');
  if (text.startsWith(`ajar ${name} `) && /^ajar [a-z]+ [a-z-]+: /.test(text)) return text; // 'ajar keys create: ...'
  return `ajar ${name}: ${text.replace(/^ajar [a-z]+: /, '')}`;
}

export async function main(argv: string[]): Promise<number> {
  let [name, ...rest] = argv;
  if (name === '--version' || name === '-V' || name === 'version') {
    console.log(await versionLine());
    return 0;
  }
  if (name === 'help' && rest.length > 0) [name, rest] = [rest[0], ['--help']];
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return 0;
  }
  const cmd = commands[name];
  if (!cmd) {
    console.error(unknownCommand(name));
    return 2;
  }
  try {
    return await (await cmd.load())(rest);
  } catch (e) {
    if (isAjarError(e)) {
      console.error(oneLine(name, e.message));
      return 2;
    }
    const msg = e instanceof Error ? e.message : String(e);
    console.error(`ajar ${name}: internal error: ${msg} (set AJAR_DEBUG=1 for a stack trace, and please report it)`);
    if (process.env.AJAR_DEBUG) console.error(e);
    return 1;
  }
}
