// Hybrid releases: `ajar release hybrid` writes the base in the open (verifiable, its loss PyTorch's) and the LoRA
// adapter sealed (no 64-byte run of its plaintext anywhere); loadAdapterBundle decrypts it in memory to the same
// tensors and the same eval loss PyTorch computed for base + adapter, and refuses a wrong key and any changed byte.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { evaluateLM } from '../../src/eval/index.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { loadCausalLM, loadPretrained, type CausalLM, type LoraSet } from '../../src/models/index.js';
import { loadAdapterBundle, openBundle, readReleaseRecords, verifyRelease } from '../../src/release/index.js';
import { useReferenceBackend } from '../helpers/backends.js';
import { runCli } from '../helpers/cli.js';
import { goldenPath, readGoldenJson } from '../helpers/golden.js';
import { copyGpt2Tiny, filesUnder, refusal, RunFinder, tempDir } from './helpers.js';

interface Expected {
  base_loss: number;
  eval: { loss: number; tokens: number };
}

const tmp = tempDir('ajar-hybrid-');
const base = copyGpt2Tiny(join(tmp, 'base'));
const adapter = join(tmp, 'adapter');
const out = join(tmp, 'out', 'release');
const keyFile = join(tmp, 'bundle.key');
const secretText = randomBytes(32).toString('hex');
const secret = Buffer.from(secretText, 'utf8');
const exp = readGoldenJson<Expected>('lora/gpt2-tiny-lora.expected.json');

function evalLoss(model: CausalLM, dir: string): { loss: number; tokens: number } {
  const { tokenizer } = loadPretrained(dir);
  const ids = tokenizer.encode(readFileSync(goldenPath('gpt2-tiny/eval.txt'), 'utf8'));
  return evaluateLM(model, ids);
}

function assertRel(got: number, want: number, tol: number, what: string): void {
  assert.ok(Math.abs(got - want) <= tol * Math.abs(want), `${what}: ${got} vs PyTorch ${want}`);
}

function adapterTensors(set: LoraSet): Map<string, Float32Array> {
  return new Map([...set.stateDict()].map(([k, v]) => [k, Float32Array.from(v.data)]));
}

describe('ajar release hybrid: an open base and a sealed adapter', () => {
  before(() => {
    useReferenceBackend();
    cpSync(goldenPath('lora/gpt2-tiny-lora'), adapter, { recursive: true });
    writeFileSync(keyFile, `${secretText}\n`, { mode: 0o600 });
    const r = runCli(['release', 'hybrid', '--model', base, '--adapter', adapter, '--out', out, '--license', 'apache-2.0',
      '--key-file', keyFile, '--name', 'tiny-hybrid', '--no-eval']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /released .*: base\/ open \(\d+ files, licence apache-2\.0\), adapter\/ sealed \(2 encrypted files, key id [0-9a-f]{16}\)/);
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('lays out README.md, base/ (an open release that verifies and gives PyTorch\'s base loss) and adapter/', () => {
    assert.deepEqual(readdirSync(join(tmp, 'out')), ['release'], 'no staging folder is left beside the release');
    assert.deepEqual(readdirSync(out).sort(), ['README.md', 'adapter', 'base']);
    const readme = readFileSync(join(out, 'README.md'), 'utf8');
    assert.match(readme, /`base\/`: the base model, released in the open under the apache-2\.0 licence/);
    assert.match(readme, /`adapter\/`: a LoRA adapter .* encrypted with AES-256-GCM/s);
    assert.match(readme, /^# tiny-hybrid: a hybrid release$/m);
    assert.match(readFileSync(join(out, 'base', 'README.md'), 'utf8'), /^# base$/m, 'the base\'s card keeps the base\'s name');
    const v = verifyRelease(join(out, 'base'));
    assert.equal(v.kind, 'open');
    assert.deepEqual(v.problems, []);
    assert.ok(existsSync(join(out, 'base', 'LICENSE')));
    const { model } = loadCausalLM(join(out, 'base'));
    assertRel(evalLoss(model, join(out, 'base')).loss, exp.base_loss, 1e-4, 'released base loss');
  });

  it('writes no 64-byte run of the adapter\'s plaintext (weights or config) into any file', () => {
    const written = filesUnder(join(out, 'adapter'));
    assert.deepEqual(written.map((p) => p.slice(join(out, 'adapter').length + 1)).sort(),
      ['adapter_config.json.enc', 'adapter_model.safetensors.enc', 'manifest.json']);
    for (const name of ['adapter_model.safetensors', 'adapter_config.json']) {
      const plain = readFileSync(join(adapter, name));
      const finder = new RunFinder(plain, 64);
      const planted = randomBytes(4096);
      planted.set(plain.subarray(100, 164), 1000);
      assert.ok(finder.find(planted), `control: a planted 64-byte run of ${name} is found`);
      for (const f of [...written, join(out, 'README.md')]) {
        assert.equal(finder.find(readFileSync(f)), null, `${f} holds a run of ${name}`);
      }
    }
  });

  it('loadAdapterBundle: the same tensors as the folder, and PyTorch\'s base + adapter eval loss', () => {
    const plain = loadCausalLM(base, { adapter });
    const { model } = loadCausalLM(join(out, 'base'));
    const set = loadAdapterBundle(model, join(out, 'adapter'), secret);
    assert.equal(set.manifest.content, 'adapter');
    assert.equal(set.entries.length, plain.adapter!.entries.length);
    const want = readSafetensors(join(adapter, 'adapter_model.safetensors')).tensors;
    const got = adapterTensors(set);
    assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
    for (const [k, t] of want) assert.deepEqual(got.get(k), Float32Array.from(t.data), k);
    model.module.eval();
    const bundled = evalLoss(model, base);
    assert.equal(bundled.tokens, exp.eval.tokens);
    assertRel(bundled.loss, exp.eval.loss, 1e-4, 'base + decrypted adapter');
    assert.equal(bundled.loss, evalLoss(plain.model as CausalLM, base).loss, 'the same loss as base + the adapter folder');
  });

  it('refuses a wrong key and any changed byte, and leaves the base without an adapter', () => {
    const { model } = loadCausalLM(base);
    const wrong = refusal(() => loadAdapterBundle(model, join(out, 'adapter'), Buffer.from(randomBytes(32).toString('hex'))));
    assert.equal(wrong.code, 'wrong_key');
    for (const name of ['adapter_model.safetensors.enc', 'adapter_config.json.enc', 'manifest.json']) {
      const path = join(out, 'adapter', name);
      const bytes = readFileSync(path);
      const at = name === 'manifest.json' ? bytes.indexOf('"size"') + 8 : bytes.length - 40;
      const changed = Buffer.from(bytes);
      changed[at] ^= 0x01;
      writeFileSync(path, changed);
      try {
        const e = refusal(() => loadAdapterBundle(model, join(out, 'adapter'), secret));
        assert.ok(e.code === 'bad_bundle' || e.code === 'wrong_key', `${name}: ${e.code} ${e.message}`);
      } finally {
        writeFileSync(path, bytes);
      }
    }
    for (const [, m] of model.module.namedModules()) assert.equal((m as { lora?: unknown }).lora ?? null, null, 'no adapter was attached');
  });

  it('keeps adapter and model bundles apart: each opener refuses the other kind', () => {
    const asModel = refusal(() => openBundle(join(out, 'adapter'), secret));
    assert.match(asModel.message, /holds an encrypted LoRA adapter, not a model/);
    const modelBundle = join(tmp, 'model-bundle');
    const r = runCli(['release', 'closed', '--model', base, '--out', modelBundle, '--key-file', keyFile]);
    assert.equal(r.code, 0, r.stderr);
    const { model } = loadCausalLM(base);
    const asAdapter = refusal(() => loadAdapterBundle(model, modelBundle, secret));
    assert.match(asAdapter.message, /holds a whole model, not a LoRA adapter/);
  });

  it('ajar verify authenticates the adapter bundle with the key', () => {
    const r = runCli(['verify', join(out, 'adapter'), '--key-file', keyFile]);
    assert.equal(r.code, 0, r.stderr);
  });

  it('records a hybrid release in the base\'s and the adapter\'s ajar_releases.jsonl', () => {
    for (const dir of [base, adapter]) {
      const recs = readReleaseRecords(dir).filter((x) => x.kind === 'hybrid');
      assert.equal(recs.length, 1, dir);
      assert.equal(recs[0].out, out);
      assert.equal(recs[0].license, 'apache-2.0');
      assert.match(recs[0].key_id ?? '', /^[0-9a-f]{16}$/);
      assert.match(recs[0].adapter_sha256 ?? '', /^[0-9a-f]{64}$/);
    }
    const list = runCli(['release', 'list', '--model', base]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /hybrid\s+tiny-hybrid\s+licence apache-2\.0, key [0-9a-f]{16}/);
  });

  it('refuses an adapter for another base, with nothing written', () => {
    const other = join(tmp, 'out', 'other');
    const r = runCli(['release', 'hybrid', '--model', base, '--adapter', goldenPath('lora/llama-tiny-lora'), '--out', other,
      '--license', 'apache-2.0', '--key-file', keyFile, '--no-eval']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /target module '.*' is absent from GPT2LMHeadModel/);
    assert.equal(r.stderr.trim().split('\n').filter((l) => !l.startsWith('ajar release: checking')).length, 1, r.stderr);
    assert.ok(!existsSync(other));
    assert.deepEqual(readdirSync(join(tmp, 'out')).sort(), ['release']);
  });
});
