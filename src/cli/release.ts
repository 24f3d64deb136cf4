// ajar release open|closed|hybrid|list|key: flags -> src/release. Open writes a Hugging Face folder with card, licence
// and checksums; closed an encrypted bundle; hybrid both (open base, sealed adapter); list shows release records; key
// makes a bundle key file.
import { basename, resolve } from 'node:path';
import {
  HYBRID_ADAPTER, HYBRID_BASE, KEY_ENV, LICENSE_IDS, listReleases, MIN_SECRET_BYTES, readSecret, releaseHybrid, releaseOpen, sealBundle,
  writeNewKeyFile,
} from '../release/index.js';
import { AjarError } from '../tensor/errors.js';
import { bool, num, parseFlags, requireStr, str, type Parsed } from './args.js';
import { printJson, selectBackend } from './common.js';
import { hubIdOf, modelDirArg } from './pull.js';
import { closest } from './suggest.js';

const HELP = `usage: ajar release open   --model DIR --out DIR --license ID [--name NAME] [--card FILE] [--author NAME]
                         [--license-file FILE] [--license-name NAME] [--dataset HUB_ID ...] [--language CODE ...]
                         [--base-model HUB_ID] [--no-eval] [--max-exposure BITS] [--accept-risk] [--json]
       ajar release closed --model DIR --out BUNDLE [--key-file FILE] [--name NAME] [--json]
       ajar release hybrid --model BASE --adapter DIR --out DIR --license ID [--key-file FILE] [open's flags] [--json]
       ajar release list   --model DIR [--json]
       ajar release key    --out FILE

open: a folder Hugging Face transformers loads with from_pretrained: config.json, model.safetensors, tokenizer
  files, generation_config.json, a README.md model card (front matter with the recorded evaluation results),
  LICENSE and SHA256SUMS. --license: any SPDX id (https://spdx.org/licenses/), openrail-m or other. The texts of
  ${LICENSE_IDS.length - 2} common licences are bundled (apache-2.0, mit, cc-by-4.0, cc-by-sa-4.0, gpl-3.0, ...: see
  docs/release.md); LICENSE links any other SPDX licence's text unless --license-file gives it; openrail-m and
  other need --license-file.
  MIT needs --author (the copyright holder).
  Refused: an unknown licence, a model without evaluation results (run 'ajar eval --record', or pass --no-eval),
  an --out that exists and is not empty, and a model whose recorded privacy audit ('ajar audit --record') shows
  canary exposure above --max-exposure BITS (default: the largest possible exposure, log2 of the number of
  possible secrets, minus 2 bits) unless --accept-risk; the card carries the audit as privacy_audit. --name (default: --out's folder name) names the model in the card.
  --dataset: Hub dataset ids; the results in the card's model-index name the first (without one they appear in
  the card's table only, as the Hub requires a dataset id there). --language: ISO 639-1 codes (en, fr, ...).
  --base-model: default the hub model 'ajar train --init-from ORG/NAME' started from.
closed: every model file encrypted with AES-256-GCM under a key derived from the secret in --key-file (or
  ${KEY_ENV}), at least ${MIN_SECRET_BYTES} bytes; serve it with 'ajar serve --bundle BUNDLE --key-file FILE'.
hybrid: the base model in the open (OUT/base, exactly as 'release open' writes it; same flags) and the LoRA
  adapter folder --adapter (from 'ajar train --lora') sealed as 'release closed' seals a model (OUT/adapter), with
  a README.md saying what is where. The adapter must apply to the base. --name names the release (default the
  adapter folder's name); the base's card keeps the base's name. Records go to both folders.
list: the releases recorded in DIR/ajar_releases.jsonl.
key: a new random key file (64 hex characters, mode 600). See docs/release.md.
--model DIR may also be ORG/NAME[@REV] from the Hugging Face hub, pulled when not cached (docs/hub.md).`;

/** The privacy release gate's flags (open, and hybrid's open base). */
const RISK_FLAGS = { 'max-exposure': { type: 'string' }, 'accept-risk': { type: 'boolean' } } as const;

function riskOptions(p: Parsed): { maxExposure?: number; acceptRisk: boolean } {
  const maxExposure = num('release', p, 'max-exposure', { min: 0 });
  return { ...(maxExposure !== undefined ? { maxExposure } : {}), acceptRisk: bool(p, 'accept-risk') };
}

async function openCommand(argv: string[]): Promise<number> {
  const p = parseFlags('release', argv, {
    model: { type: 'string' }, out: { type: 'string' }, license: { type: 'string' }, name: { type: 'string' },
    card: { type: 'string' }, author: { type: 'string' }, 'license-file': { type: 'string' }, 'license-name': { type: 'string' },
    dataset: { type: 'string', multiple: true }, language: { type: 'string', multiple: true }, 'base-model': { type: 'string' },
    'no-eval': { type: 'boolean' }, json: { type: 'boolean' }, backend: { type: 'string' }, ...RISK_FLAGS,
  });
  const modelArg = requireStr('release', p, 'model');
  const modelDir = await modelDirArg(modelArg, 'release');
  const out = requireStr('release', p, 'out');
  const license = requireStr('release', p, 'license');
  const json = bool(p, 'json');
  selectBackend(str(p, 'backend'));
  const result = releaseOpen({
    ...riskOptions(p),
    modelDir, out, license,
    // NOTE: the card is named after the release (its folder), not after the folder it was made from.
    name: str(p, 'name') ?? basename(resolve(out)),
    cardFile: str(p, 'card'),
    licenseFile: str(p, 'license-file'),
    licenseName: str(p, 'license-name'),
    // NOTE: the copyright holder is --author, else an explicit --name (never the folder's name).
    author: str(p, 'author') ?? str(p, 'name'),
    datasets: (p.values.dataset as string[] | undefined) ?? [],
    languages: (p.values.language as string[] | undefined) ?? [],
    baseModel: str(p, 'base-model'),
    noEval: bool(p, 'no-eval'),
    log: json ? undefined : (line) => console.error(`ajar release: ${line}`),
  });
  if (json) {
    printJson({ kind: 'open', out: result.out, license: result.license, model_sha256: result.model_sha256, results: result.results,
      files: result.files, record: result.recordPath });
  } else {
    console.log(`released ${result.out}: ${result.files.length + 1} files, licence ${result.license}, `
      + `${result.results} evaluation result(s) in the card; check it with 'ajar verify ${result.out}'`);
  }
  return 0;
}

async function closedCommand(argv: string[]): Promise<number> {
  const p = parseFlags('release', argv, {
    model: { type: 'string' }, out: { type: 'string' }, 'key-file': { type: 'string' }, name: { type: 'string' },
    json: { type: 'boolean' }, backend: { type: 'string' },
  });
  const modelArg = requireStr('release', p, 'model');
  const modelDir = await modelDirArg(modelArg, 'release');
  const out = requireStr('release', p, 'out');
  const json = bool(p, 'json');
  const secret = readSecret(str(p, 'key-file'));
  for (const w of secret.warnings) console.error(`ajar release: warning: ${w}`);
  selectBackend(str(p, 'backend'));
  const result = sealBundle({
    modelDir, out, secret: secret.bytes, name: str(p, 'name') ?? hubIdOf(modelArg, modelDir)?.split('/')[1] ?? basename(resolve(modelDir)),
    log: json ? undefined : (line) => console.error(`ajar release: ${line}`),
  });
  secret.bytes.fill(0);
  const m = result.manifest;
  if (json) {
    printJson({ kind: 'closed', out: result.out, key_id: m.key_id, model_sha256: m.model_sha256,
      files: m.files.map((f) => ({ name: f.name, path: f.path, size: f.size })), record: result.recordPath });
  } else {
    console.log(`sealed ${result.out}: ${m.files.length} encrypted files, key id ${m.key_id}; `
      + `serve it with 'ajar serve --bundle ${result.out} --key-file KEY'`);
  }
  return 0;
}

async function hybridCommand(argv: string[]): Promise<number> {
  const p = parseFlags('release', argv, {
    model: { type: 'string' }, adapter: { type: 'string' }, out: { type: 'string' }, license: { type: 'string' }, name: { type: 'string' },
    'key-file': { type: 'string' }, card: { type: 'string' }, author: { type: 'string' }, 'license-file': { type: 'string' },
    'license-name': { type: 'string' }, dataset: { type: 'string', multiple: true }, 'base-model': { type: 'string' },
    'no-eval': { type: 'boolean' }, json: { type: 'boolean' }, backend: { type: 'string' }, ...RISK_FLAGS,
  });
  const modelArg = requireStr('release', p, 'model');
  const modelDir = await modelDirArg(modelArg, 'release');
  const adapterDir = requireStr('release', p, 'adapter');
  const out = requireStr('release', p, 'out');
  const license = requireStr('release', p, 'license');
  const json = bool(p, 'json');
  const secret = readSecret(str(p, 'key-file'));
  for (const w of secret.warnings) console.error(`ajar release: warning: ${w}`);
  selectBackend(str(p, 'backend'));
  try {
    const result = releaseHybrid({
      ...riskOptions(p),
      modelDir, adapterDir, out, license, secret: secret.bytes,
      name: str(p, 'name') ?? basename(resolve(adapterDir)),
      baseName: hubIdOf(modelArg, modelDir)?.split('/')[1] ?? basename(resolve(modelDir)),
      cardFile: str(p, 'card'),
      licenseFile: str(p, 'license-file'),
      licenseName: str(p, 'license-name'),
      author: str(p, 'author') ?? str(p, 'name'),
      datasets: (p.values.dataset as string[] | undefined) ?? [],
      baseModel: str(p, 'base-model') ?? hubIdOf(modelArg, modelDir),
      noEval: bool(p, 'no-eval'),
      log: json ? undefined : (line) => console.error(`ajar release: ${line}`),
    });
    if (json) {
      printJson({ kind: 'hybrid', out: result.out, base: result.base, adapter: result.adapter, license: result.license, key_id: result.key_id,
        model_sha256: result.model_sha256, adapter_sha256: result.adapter_sha256, records: result.recordPaths });
    } else {
      console.log(`released ${result.out}: ${HYBRID_BASE}/ open (${result.baseFiles} files, licence ${result.license}), `
        + `${HYBRID_ADAPTER}/ sealed (${result.adapterFiles} encrypted files, key id ${result.key_id}); `
        + `check them with 'ajar verify ${result.base}' and 'ajar verify ${result.adapter} --key-file KEY'`);
    }
  } finally {
    secret.bytes.fill(0);
  }
  return 0;
}

async function listCommand(argv: string[]): Promise<number> {
  const p = parseFlags('release', argv, { model: { type: 'string' }, json: { type: 'boolean' } });
  const modelArg = requireStr('release', p, 'model');
  const modelDir = await modelDirArg(modelArg, 'release');
  const rows = listReleases(modelDir);
  if (bool(p, 'json')) {
    printJson(rows);
    return 0;
  }
  if (rows.length === 0) {
    console.log(`${modelDir} has no releases yet ('ajar release open', 'closed' or 'hybrid' record them here)`);
    return 0;
  }
  const table = [['date', 'kind', 'name', 'licence / key id', 'model sha256', 'model now', 'out']];
  for (const r of rows) {
    const terms = r.kind === 'open' ? `licence ${r.license ?? '?'}`
      : r.kind === 'hybrid' ? `licence ${r.license ?? '?'}, key ${r.key_id ?? '?'}` : `key ${r.key_id ?? '?'}`;
    table.push([r.date.slice(0, 19).replace('T', ' '), r.kind, r.name ?? '', terms,
      r.model_sha256.slice(0, 12), r.same_model === null ? '?' : r.same_model ? 'same' : 'changed',
      r.present ? r.out : `${r.out} (gone)`]);
  }
  const widths = table[0].map((_, c) => Math.max(...table.map((row) => row[c].length)));
  for (const row of table) console.log(row.map((cell, c) => (c === row.length - 1 ? cell : cell.padEnd(widths[c]))).join('  '));
  return 0;
}

async function keyCommand(argv: string[]): Promise<number> {
  const p = parseFlags('release', argv, { out: { type: 'string' } });
  const out = requireStr('release', p, 'out');
  const id = writeNewKeyFile(out);
  console.log(`wrote a new bundle key to ${out} (key id ${id}); keep it secret and backed up: without it a bundle cannot be opened`);
  return 0;
}

const SUBCOMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  open: openCommand, closed: closedCommand, hybrid: hybridCommand, list: listCommand, key: keyCommand,
};

export async function releaseCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || rest.includes('--help') || rest.includes('-h')) {
    console.log(HELP);
    return sub === undefined ? 2 : 0;
  }
  const run = SUBCOMMANDS[sub];
  if (run === undefined) {
    const guess = closest(sub, Object.keys(SUBCOMMANDS));
    throw new AjarError('bad_flag', `ajar release: unknown subcommand '${sub}'${guess !== undefined ? ` (did you mean '${guess}'?)` : ''}; `
      + "open, closed, hybrid, list or key (see 'ajar release --help')");
  }
  return run(rest);
}
