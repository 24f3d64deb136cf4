// Hostile model folders, adapters and bundles, built in a temp dir from the tiny golden fixtures and handed to the
// real CLI in a child process: each must end within seconds, under 200 MB, with exit 2 and one line naming the
// problem. A huggingface_hub cache snapshot (symlinks into ../../blobs) must still load and give PyTorch's loss.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, truncateSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { repoRoot } from '../helpers/cli.js';
import { goldenPath, readGoldenJson } from '../helpers/golden.js';

const BIN = join(repoRoot, 'bin', 'ajar.js');
const TIME = '/usr/bin/time'; // GNU time: -f %M is the child's maximum resident set size in KiB
const HAVE_TIME = existsSync(TIME);
const MAX_RSS_KIB = 200 * 1024;
const MAX_SECONDS = 10;
const POSIX = process.platform !== 'win32';

interface Run {
  code: number | null;
  stderr: string;
  stdout: string;
  seconds: number;
  rssKiB: number | null;
}

let root: string;

/** Run `ajar ARGS` under GNU time (when present), killed after MAX_SECONDS so a hang fails instead of stalling. */
function ajar(args: string[], env: Record<string, string> = {}): Run {
  const rssFile = join(root, `rss-${process.hrtime.bigint()}`);
  const [cmd, argv] = HAVE_TIME
    ? [TIME, ['-o', rssFile, '-f', '%M', process.execPath, BIN, ...args]]
    : [process.execPath, [BIN, ...args]];
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, argv, {
    encoding: 'utf8', cwd: root, timeout: MAX_SECONDS * 1000, killSignal: 'SIGKILL', env: { ...process.env, ...env },
  });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  // NOTE: GNU time writes "Command exited with non-zero status N" before the figure; the figure is the last line.
  const rssKiB = HAVE_TIME && existsSync(rssFile) ? Number(readFileSync(rssFile, 'utf8').trim().split('\n').pop()) : null;
  return { code: r.status, stderr: r.stderr ?? '', stdout: r.stdout ?? '', seconds, rssKiB };
}

/** The refusal every hostile input must get: exit 2, within the time, under the memory, one line matching `line`. */
function assertRefused(r: Run, command: string, line: RegExp): void {
  assert.ok(r.seconds < MAX_SECONDS, `ended within ${MAX_SECONDS} s (took ${r.seconds.toFixed(1)} s; stderr: ${r.stderr})`);
  assert.equal(r.code, 2, `exit 2; stderr: ${r.stderr}`);
  // NOTE: ajar serve announces each model before loading it ('loading DIR', 'decrypting BUNDLE in memory'): progress, not the error.
  const lines = r.stderr.split('\n').filter((l) => l !== '' && !/^ajar serve: (loading |decrypting .* in memory$)/.test(l));
  assert.equal(lines.length, 1, `one line on stderr, got: ${r.stderr}`);
  assert.ok(lines[0].startsWith(`ajar ${command}: `), lines[0]);
  assert.doesNotMatch(lines[0], /internal error/);
  assert.match(lines[0], line);
  if (r.rssKiB !== null) assert.ok(r.rssKiB < MAX_RSS_KIB, `max RSS ${r.rssKiB} KiB is under ${MAX_RSS_KIB} KiB`);
}

let counter = 0;

/** A fresh copy of a golden folder in the temp dir. */
function copyFixture(rel: string): string {
  const dir = join(root, `m${counter++}`);
  cpSync(goldenPath(rel), dir, { recursive: true });
  return dir;
}

const llama = (): string => copyFixture('llama/llama-tiny');
const gpt2 = (): string => copyFixture('gpt2-tiny');

function editConfig(dir: string, edit: Record<string, unknown>): string {
  const path = join(dir, 'config.json');
  writeFileSync(path, JSON.stringify({ ...JSON.parse(readFileSync(path, 'utf8')) as object, ...edit }));
  return dir;
}

/** Replace a file of `dir` by a FIFO (a reader that opens it blocks until a writer comes, which none will). */
function fifo(dir: string, name: string): string {
  rmSync(join(dir, name));
  const r = spawnSync('mkfifo', [join(dir, name)]);
  assert.equal(r.status, 0, 'mkfifo');
  return dir;
}

const evalArgs = (dir: string): string[] => ['eval', '--model', dir, '--data', goldenPath('llama/eval.txt')];
const generateArgs = (dir: string): string[] => ['generate', '--model', dir, '--prompt', 'Once', '--max-new-tokens', '2'];

describe('hostile model folders: exit 2, one line, seconds, < 200 MB', { skip: POSIX ? false : 'FIFOs and /dev/zero need POSIX' }, () => {
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'ajar-hostile-'));
    writeFileSync(join(root, 'prompt.txt'), 'Once upon a time');
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('a FIFO as config.json, tokenizer.json, model.safetensors (eval), vocab.json, merges.txt (generate)', () => {
    assertRefused(ajar(evalArgs(fifo(llama(), 'config.json'))), 'eval', /config\.json is a FIFO \(named pipe\), not a regular file$/);
    assertRefused(ajar(evalArgs(fifo(llama(), 'tokenizer.json'))), 'eval', /tokenizer\.json is a FIFO/);
    assertRefused(ajar(evalArgs(fifo(llama(), 'model.safetensors'))), 'eval', /model\.safetensors is a FIFO/);
    assertRefused(ajar(generateArgs(fifo(gpt2(), 'vocab.json'))), 'generate', /vocab\.json is a FIFO/);
    assertRefused(ajar(generateArgs(fifo(gpt2(), 'merges.txt'))), 'generate', /merges\.txt is a FIFO/);
  });

  it('ajar serve refuses a FIFO config.json at startup instead of hanging', () => {
    const dir = fifo(llama(), 'config.json');
    assertRefused(ajar(['serve', '--model', dir, '--port', '0']), 'serve', /config\.json is a FIFO/);
  });

  it('/dev/zero linked as the weights, and a link leaving the folder, are refused', () => {
    const zero = llama();
    rmSync(join(zero, 'model.safetensors'));
    symlinkSync('/dev/zero', join(zero, 'model.safetensors'));
    assertRefused(ajar(evalArgs(zero)), 'eval', /model\.safetensors is a link to \/dev\/zero, outside .*; a model folder's files must lie inside it/);

    const out = llama();
    renameSync(join(out, 'tokenizer.json'), join(root, 'elsewhere.json'));
    symlinkSync(join('..', 'elsewhere.json'), join(out, 'tokenizer.json'));
    assertRefused(ajar(evalArgs(out)), 'eval', /tokenizer\.json is a link to .*elsewhere\.json, outside /);
  });

  it('an oversized tokenizer.json (64 MiB + 1) and config.json (4 MiB + 1) are refused from their size', () => {
    const tok = llama();
    truncateSync(join(tok, 'tokenizer.json'), 64 * 1024 * 1024 + 1); // sparse: no disk used
    assertRefused(ajar(evalArgs(tok)), 'eval', /tokenizer\.json is 67108865 bytes, over ajar's 67108864-byte limit for tokenizer files/);
    const cfg = llama();
    truncateSync(join(cfg, 'config.json'), 4 * 1024 * 1024 + 1);
    assertRefused(ajar(evalArgs(cfg)), 'eval', /config\.json is 4194305 bytes, over ajar's 4194304-byte limit for config files/);
  });

  it('absurd config sizes: 1e9 wide, 1e6 layers, 1e12 vocabulary, negative, non-integer', () => {
    const cases: Array<[() => string, Record<string, unknown>, RegExp]> = [
      [gpt2, { n_embd: 1e9 }, /"n_embd" must be an integer from 1 to 1048576, got 1000000000$/],
      [gpt2, { n_layer: 1e6 }, /"n_layer" must be an integer from 1 to 1024, got 1000000$/],
      [llama, { hidden_size: 1e9 }, /"hidden_size" must be an integer from 1 to 1048576, got 1000000000$/],
      [llama, { num_hidden_layers: 1e6 }, /"num_hidden_layers" must be an integer from 1 to 1024/],
      [llama, { vocab_size: 1e12 }, /"vocab_size" must be an integer from 1 to 16777216, got 1000000000000$/],
      [llama, { num_attention_heads: -6 }, /"num_attention_heads" must be an integer from 1 to 4096, got -6$/],
      [llama, { intermediate_size: 100.5 }, /"intermediate_size" must be an integer from 1 to 4194304, got 100\.5$/],
      [llama, { head_dim: -8 }, /"head_dim" must be an integer from 1 to 65536, or null, got -8$/],
      [llama, { max_position_embeddings: 1e12 }, /"max_position_embeddings" must be an integer from 1 to 268435456/],
    ];
    for (const [fixture, edit, line] of cases) assertRefused(ajar(evalArgs(editConfig(fixture(), edit))), 'eval', line);
  });

  it('a config that disagrees with the weights names the key, the tensor, and both shapes', () => {
    // The fixture's MLP is (100, 48) (test/golden/llama/make_llama_tiny.py: intermediate_size 100, hidden_size 48).
    assertRefused(ajar(evalArgs(editConfig(llama(), { intermediate_size: 128 }))), 'eval',
      /tensor 'model\.layers\.0\.mlp\.gate_proj\.weight' has shape \(100, 48\), the config implies \(128, 48\) \(intermediate_size 128, hidden_size 48, num_hidden_layers 3\)/);
    assertRefused(ajar(evalArgs(editConfig(llama(), { num_hidden_layers: 4 }))), 'eval',
      /tensor 'model\.layers\.3\.[a-z_.]+weight' is missing from the weights; the config implies .*num_hidden_layers 4\)$/);
    assertRefused(ajar(evalArgs(editConfig(llama(), { num_hidden_layers: 2 }))), 'eval',
      /unexpected tensors .*config\.json's "num_hidden_layers" is 2 but the weights hold layer 2/);
    // GPT-2's Conv1D c_fc is stored (n_embd, n_inner) = (96, 384) (test/golden/gpt2-tiny/make_gpt2_tiny.py).
    assertRefused(ajar(evalArgs(editConfig(gpt2(), { n_inner: 500 }))), 'eval',
      /tensor 'transformer\.h\.0\.mlp\.c_fc\.weight' has shape \(96, 384\), the config implies \(96, 500\) \(n_inner 500, n_embd 96, n_layer 3\)/);
  });

  it('a safetensors header claiming 2^62 bytes is refused by the spec\'s 100 MB limit, before any read', () => {
    const dir = llama();
    const path = join(dir, 'model.safetensors');
    const bytes = readFileSync(path);
    bytes.writeBigUInt64LE(2n ** 62n, 0);
    writeFileSync(path, bytes);
    assertRefused(ajar(evalArgs(dir)), 'eval', /header length 4611686018427387904 exceeds the 100000000-byte limit/);
  });

  it('a PEFT adapter whose adapter_config.json is a FIFO, or whose weights link out of the folder', () => {
    const adapter = copyFixture('lora/llama-tiny-lora');
    fifo(adapter, 'adapter_config.json');
    assertRefused(ajar([...generateArgs(llama()), '--adapter', adapter]), 'generate', /adapter_config\.json is a FIFO/);
    const linked = copyFixture('lora/llama-tiny-lora');
    renameSync(join(linked, 'adapter_model.safetensors'), join(root, 'adapter-outside.safetensors'));
    symlinkSync(join(root, 'adapter-outside.safetensors'), join(linked, 'adapter_model.safetensors'));
    assertRefused(ajar([...generateArgs(llama()), '--adapter', linked]), 'generate', /adapter_model\.safetensors is a link to .*, outside /);
  });

  it('a bundle manifest that is a FIFO, or 1 GB, is refused by ajar verify', () => {
    const pipe = join(root, 'bundle-fifo');
    mkdirSync(pipe);
    writeFileSync(join(pipe, 'manifest.json'), '');
    fifo(pipe, 'manifest.json');
    assertRefused(ajar(['verify', pipe]), 'verify', /manifest\.json is a FIFO/);
    const huge = join(root, 'bundle-huge');
    mkdirSync(huge);
    writeFileSync(join(huge, 'manifest.json'), '');
    truncateSync(join(huge, 'manifest.json'), 1e9);
    assertRefused(ajar(['verify', huge]), 'verify', /manifest\.json is 1000000000 bytes, over ajar's 16777216-byte limit/);
  });

  it('a closed bundle whose sealed weights are a FIFO, or 3 GB: refused by serve and verify from their size', () => {
    const secret = randomBytes(32).toString('hex');
    const keyFile = join(root, 'bundle.key');
    writeFileSync(keyFile, secret, { mode: 0o600 });
    const bundle = join(root, 'bundle');
    const made = ajar(['release', 'closed', '--model', llama(), '--out', bundle, '--name', 'tiny', '--key-file', keyFile]);
    assert.equal(made.code, 0, made.stderr);
    const sealed = join(bundle, 'model.safetensors.enc');
    const serveBundle = ['serve', '--bundle', bundle, '--key-file', keyFile, '--port', '0'];
    fifo(bundle, 'model.safetensors.enc');
    assertRefused(ajar(serveBundle), 'serve', /model\.safetensors\.enc is a FIFO/);
    rmSync(sealed);
    writeFileSync(sealed, '');
    truncateSync(sealed, 3 * 1024 ** 3); // sparse
    // The fixture's weights are 369160 bytes (ls -l test/golden/llama/llama-tiny/model.safetensors).
    assertRefused(ajar(serveBundle), 'serve',
      /model\.safetensors\.enc is 3221225472 bytes, over ajar's 369176-byte limit for this file \(manifest\.json says 369160 bytes plus the 16-byte tag\)$/);
    const v = ajar(['verify', bundle]);
    assert.ok(v.seconds < MAX_SECONDS, `verify took ${v.seconds} s`);
    assert.equal(v.code, 1, v.stderr); // ajar verify: 1 when it found problems
    assert.match(v.stderr, /model\.safetensors\.enc: .*over ajar's 369176-byte limit/);
  });

  it('a FIFO given as the llama2.c checkpoint is refused (ajar convert)', () => {
    const dir = join(root, 'l2c');
    mkdirSync(dir);
    writeFileSync(join(dir, 'model.bin'), '');
    fifo(dir, 'model.bin');
    const tok = goldenPath('llama2c/stories260K/tok512.bin');
    assertRefused(ajar(['convert', 'llama2c', '--model', join(dir, 'model.bin'), '--tokenizer', tok, '--out', join(dir, 'out')]),
      'convert', /model\.bin is not a regular file/);
  });

  it('a hub cache snapshot (snapshots/REV/file -> ../../blobs/HASH) still loads, and gives PyTorch\'s loss', () => {
    const repo = join(root, 'hub', 'models--org--gpt2-tiny');
    const commit = 'a'.repeat(40);
    const snapshot = join(repo, 'snapshots', commit);
    mkdirSync(join(repo, 'blobs'), { recursive: true });
    mkdirSync(snapshot, { recursive: true });
    for (const name of ['config.json', 'model.safetensors', 'vocab.json', 'merges.txt', 'tokenizer_config.json']) {
      const bytes = readFileSync(goldenPath(`gpt2-tiny/${name}`));
      const etag = createHash('sha256').update(bytes).digest('hex');
      writeFileSync(join(repo, 'blobs', etag), bytes);
      symlinkSync(join('..', '..', 'blobs', etag), join(snapshot, name));
    }
    const expected = readGoldenJson<{ eval: Record<string, { loss: number; tokens: number }> }>('gpt2-tiny/expected.json').eval['128'];
    const r = ajar(['eval', '--model', snapshot, '--data', goldenPath('gpt2-tiny/eval.txt'), '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { loss: number; tokens: number };
    assert.equal(out.tokens, expected.tokens);
    assert.ok(Math.abs(out.loss - expected.loss) / expected.loss < 1e-4, `loss ${out.loss} vs PyTorch's ${expected.loss}`);

    // A snapshot link that leaves the repo's cache folder is refused like any other.
    rmSync(join(snapshot, 'vocab.json'));
    symlinkSync(goldenPath('gpt2-tiny/vocab.json'), join(snapshot, 'vocab.json'));
    assertRefused(ajar(['eval', '--model', snapshot, '--data', goldenPath('gpt2-tiny/eval.txt')]), 'eval',
      /vocab\.json is a link to .*, outside .*models--org--gpt2-tiny;/);
  });
});
