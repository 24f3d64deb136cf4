// `ajar release hybrid`: the base model as an open release (OUT/base, exactly as `release open` writes it) and a
// LoRA adapter as an encrypted bundle (OUT/adapter, as `release closed` seals a model), with a README saying what
// is where; and loadAdapterBundle, which decrypts such an adapter in memory and attaches it to a loaded base.
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { entryExists, readRegularFile } from '../io/safe-read.js';
import { parseSafetensors } from '../io/safetensors.js';
import {
  ADAPTER_CONFIG, ADAPTER_HEAD, ADAPTER_WEIGHTS, applyAdapter, loadPretrained, parseAdapterConfig, type AnyModel, type LoraSet,
} from '../models/index.js';
import { AjarError } from '../tensor/errors.js';
import { openBundle, sealFiles, type BundleManifest } from './bundle.js';
import { contentHashOfFiles, sortByBytes, Staging, writeNewFile } from './files.js';
import type { ScryptParams } from './key.js';
import { releaseOpen, type OpenReleaseOptions } from './open.js';
import { appendReleaseRecord } from './records.js';

/** The files of a PEFT adapter folder that make up the adapter (a classifier's head config is optional). */
export const ADAPTER_FILE_NAMES = [ADAPTER_CONFIG, ADAPTER_WEIGHTS, ADAPTER_HEAD] as const;

/** The sub-folders of a hybrid release. */
export const HYBRID_BASE = 'base';
export const HYBRID_ADAPTER = 'adapter';

/** The bytes of an adapter folder's files, by name; refuses a folder without config and weights. */
export function readAdapterFiles(dir: string): Map<string, Uint8Array> {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new AjarError('bad_adapter', `adapter folder ${dir} does not exist`);
  const files = new Map<string, Uint8Array>();
  for (const name of ADAPTER_FILE_NAMES) {
    const path = join(dir, name);
    const kind = name === ADAPTER_WEIGHTS ? 'whole' : 'config';
    if (entryExists(path)) files.set(name, readRegularFile(path, { code: 'bad_adapter', kind, root: dir }));
  }
  for (const need of [ADAPTER_CONFIG, ADAPTER_WEIGHTS]) {
    if (!files.has(need)) throw new AjarError('bad_adapter', `${dir} has no ${need}; pass a PEFT LoRA adapter folder (ajar train --lora writes one)`);
  }
  return files;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Attach an adapter held as file bytes (a decrypted bundle) to `model`, checked exactly as loadAdapter checks a
 * folder. NOTE: a classifier adapter's head config (ajar_head_config.json) rebuilds the model in loadPretrained;
 * from memory that is refused rather than silently applied over a language-model head.
 */
export function adapterFromFiles(model: AnyModel, files: ReadonlyMap<string, Uint8Array>, label: string): LoraSet {
  if (files.has(ADAPTER_HEAD) && model.task === 'causal-lm') {
    throw new AjarError('bad_adapter', `${label} is a classifier adapter (${ADAPTER_HEAD}); load it over a sequence-classification base`);
  }
  const configBytes = files.get(ADAPTER_CONFIG);
  const weights = files.get(ADAPTER_WEIGHTS);
  if (configBytes === undefined || weights === undefined) {
    throw new AjarError('bad_adapter', `${label} lacks ${configBytes === undefined ? ADAPTER_CONFIG : ADAPTER_WEIGHTS}`);
  }
  let text: string;
  try {
    text = utf8.decode(configBytes);
  } catch {
    throw new AjarError('bad_adapter', `${label}/${ADAPTER_CONFIG} is not valid UTF-8`);
  }
  const spec = parseAdapterConfig(text, `${label}/${ADAPTER_CONFIG}`);
  const weightsLabel = `${label}/${ADAPTER_WEIGHTS}`;
  return applyAdapter(model, spec, () => parseSafetensors(weights, weightsLabel).tensors, `${label}/${ADAPTER_CONFIG}`, weightsLabel);
}

/**
 * Decrypt the adapter bundle of a hybrid release in memory (MAC, every tag and hash checked first; nothing
 * written to disk) and attach it to `model`, the loaded base. Returns what loadAdapter returns; the decrypted
 * bytes are zeroed once the adapter's values are in its tensors.
 */
export function loadAdapterBundle(model: AnyModel, bundle: string, secret: Uint8Array): LoraSet & { manifest: BundleManifest } {
  const { manifest, files } = openBundle(bundle, secret, 'adapter');
  try {
    return Object.assign(adapterFromFiles(model, files, `bundle ${bundle}`), { manifest });
  } finally {
    for (const bytes of files.values()) bytes.fill(0);
  }
}

export interface HybridReleaseOptions extends Omit<OpenReleaseOptions, 'modelDir' | 'out' | 'record'> {
  /** The base model folder (released in the open). */
  modelDir: string;
  /** The PEFT adapter folder (sealed). */
  adapterDir: string;
  /** The base's name in its own model card; default `name` (the release's name, used in the README and records). */
  baseName?: string;
  out: string;
  secret: Uint8Array;
  /** scrypt cost of the adapter bundle (tests may not go below SCRYPT_LIMITS). */
  scrypt?: ScryptParams;
}

export interface HybridReleaseResult {
  out: string;
  base: string;
  adapter: string;
  license: string;
  key_id: string;
  model_sha256: string;
  adapter_sha256: string;
  /** Files of the open base release. */
  baseFiles: number;
  /** Encrypted files of the adapter bundle. */
  adapterFiles: number;
  recordPaths: string[];
}

function hybridReadme(name: string, license: string, keyId: string, adapterFiles: string[]): string {
  return `# ${name}: a hybrid release

This release has two parts.

- \`${HYBRID_BASE}/\`: the base model, released in the open under the ${license} licence (see \`${HYBRID_BASE}/LICENSE\`
  and its model card \`${HYBRID_BASE}/README.md\`). It is a Hugging Face folder: \`transformers\` loads it with
  \`from_pretrained\`, \`ajar\` with \`--model ${HYBRID_BASE}\`. \`ajar verify ${HYBRID_BASE}\` checks it against its SHA256SUMS.
- \`${HYBRID_ADAPTER}/\`: a LoRA adapter for that base (${adapterFiles.join(', ')}), encrypted with AES-256-GCM under a
  key with id ${keyId}; \`manifest.json\` lists each file and carries an HMAC over the whole manifest. Only the key's
  holder can use it: \`ajar verify ${HYBRID_ADAPTER} --key-file KEY\` authenticates it, and ajar's
  \`loadAdapterBundle(base, '${HYBRID_ADAPTER}', key)\` decrypts it in memory over the loaded base (no plaintext
  is written to disk).

Without the key, the base works on its own; the adapter's weights cannot be read.
`;
}

/**
 * Check that the adapter applies to the base (both loaded in memory), then write OUT/base as releaseOpen does and
 * OUT/adapter as a sealed bundle, into a staging folder published with one rename; then append a "hybrid" record to
 * the base's and the adapter's ajar_releases.jsonl. Every refusal comes before anything is written.
 */
export function releaseHybrid(opts: HybridReleaseOptions): HybridReleaseResult {
  const log = opts.log ?? (() => undefined);
  const now = opts.now ?? new Date();
  const out = resolve(opts.out);
  const adapterFiles = readAdapterFiles(opts.adapterDir);
  const adapterSha = contentHashOfFiles(adapterFiles);
  log(`checking that ${opts.adapterDir} applies to ${opts.modelDir}`);
  const { model } = loadPretrained(opts.modelDir);
  adapterFromFiles(model, adapterFiles, opts.adapterDir);
  const staging = new Staging(out, 'hybrid release');
  try {
    const base = releaseOpen({ ...opts, name: opts.baseName ?? opts.name, out: staging.path(HYBRID_BASE), now, record: false });
    log(`sealing the adapter (${adapterFiles.size} files)`);
    const names = sortByBytes([...adapterFiles.keys()]);
    const sealed = sealFiles(adapterFiles, {
      out: staging.path(HYBRID_ADAPTER), secret: opts.secret, name: `${opts.name}-adapter`, now, log, scrypt: opts.scrypt, content: 'adapter',
    });
    writeNewFile(staging.path('README.md'), hybridReadme(opts.name, base.license, sealed.manifest.key_id, names));
    staging.publish('hybrid release');
    const record = {
      kind: 'hybrid' as const, out, date: now.toISOString(), model_sha256: base.model_sha256, name: opts.name, license: base.license,
      key_id: sealed.manifest.key_id, adapter: resolve(opts.adapterDir), adapter_sha256: adapterSha,
    };
    const recordPaths = [appendReleaseRecord(opts.modelDir, record)];
    if (resolve(opts.adapterDir) !== resolve(opts.modelDir)) recordPaths.push(appendReleaseRecord(opts.adapterDir, record));
    return {
      out, base: join(out, HYBRID_BASE), adapter: join(out, HYBRID_ADAPTER), license: base.license, key_id: sealed.manifest.key_id,
      model_sha256: base.model_sha256, adapter_sha256: adapterSha, baseFiles: base.files.length + 1, adapterFiles: sealed.manifest.files.length,
      recordPaths,
    };
  } finally {
    staging.discard();
  }
}
