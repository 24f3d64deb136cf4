// Closed bundles end to end: `ajar release closed` writes only ciphertext (no 64-byte run of the plaintext weights
// or tokenizer in any file it wrote, temp folder included), opens in memory to the same bytes and the same model,
// and refuses a wrong key, a missing file and one flipped byte anywhere, each with a clear error naming the problem.
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generate } from '../../src/generate/index.js';
import { serializeSafetensors } from '../../src/io/safetensors.js';
import { loadCausalLM } from '../../src/models/index.js';
import {
  canonicalJson, keyId, loadBundledModel, openBundle, readReleaseRecords, sha256Hex, type BundleManifest,
} from '../../src/release/index.js';
import { deriveBundleKeys } from '../../src/release/key.js';
import { useReferenceBackend } from '../helpers/backends.js';
import { runCli } from '../helpers/cli.js';
import { goldenPath } from '../helpers/golden.js';
import { copyGpt2Tiny, filesUnder, refusal, RunFinder, tempDir } from './helpers.js';

const tmp = tempDir('ajar-bundle-');
const model = copyGpt2Tiny(join(tmp, 'model'));
const outParent = join(tmp, 'out');
const bundle = join(outParent, 'bundle');
const tmpEnv = join(tmp, 'tmpdir');
const keyFile = join(tmp, 'bundle.key');
const secretText = randomBytes(32).toString('hex');
const secret = Buffer.from(secretText, 'utf8');

function flipByte(path: string, at: number): () => void {
  const bytes = readFileSync(path);
  const i = at < 0 ? bytes.length + at : at;
  bytes[i] ^= 0x01;
  writeFileSync(path, bytes);
  return () => {
    bytes[i] ^= 0x01;
    writeFileSync(path, bytes);
  };
}

function manifestOf(dir: string): BundleManifest {
  return JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as BundleManifest;
}

describe('ajar release closed: an encrypted bundle', () => {
  before(() => {
    useReferenceBackend();
    writeFileSync(keyFile, `${secretText}\n`, { mode: 0o600 });
    mkdirSync(tmpEnv);
    const r = runCli(['release', 'closed', '--model', model, '--out', bundle, '--key-file', keyFile, '--name', 'tiny'],
      { env: { TMPDIR: tmpEnv, TMP: tmpEnv, TEMP: tmpEnv } });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /sealed .*: 6 encrypted files, key id [0-9a-f]{16}/);
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('writes no 64-byte run of the plaintext weights, float32 weights or tokenizer into any file', () => {
    // Everything the command wrote: the bundle, anything beside it, and the temp folder it was given.
    assert.deepEqual(readdirSync(outParent), ['bundle'], 'no staging folder or temp file is left beside the bundle');
    assert.deepEqual(readdirSync(tmpEnv), [], 'nothing in the temp folder');
    const written = [...filesUnder(outParent), ...filesUnder(tmpEnv)];
    assert.equal(written.length, 7);
    const { model: m } = loadCausalLM(model);
    const plaintexts: Array<[string, Uint8Array]> = [
      ['model.safetensors (F16, as on disk)', readFileSync(join(model, 'model.safetensors'))],
      ['the weights as float32 safetensors', serializeSafetensors(m.stateDict())],
      ['vocab.json', readFileSync(join(model, 'vocab.json'))],
      ['merges.txt', readFileSync(join(model, 'merges.txt'))],
      ['config.json', readFileSync(join(model, 'config.json'))],
    ];
    for (const [what, plain] of plaintexts) {
      const finder = new RunFinder(plain, 64);
      // Controls: the finder sees a 64-byte run planted in noise, and not a 63-byte one.
      const at = Math.floor(plain.length / 2) - 17;
      const planted = randomBytes(4096);
      planted.set(plain.subarray(at, at + 64), 1000);
      assert.ok(finder.find(planted), `control: a planted 64-byte run of ${what} is found`);
      const short = randomBytes(4096);
      short.set(plain.subarray(at, at + 63), 1000);
      // NOTE: weights hold repetitive stretches (the legacy mask buffers), where the same 63 bytes recur with
      // many different neighbours; a random neighbour may then complete a real 64-byte run elsewhere. Choose
      // neighbours that complete none, so the control tests the length threshold alone.
      let clean = false;
      for (let v = 0; v < 256 * 256 && !clean; v++) {
        short[999] = v >> 8;
        short[1063] = v & 255;
        clean = finder.find(short) === null;
      }
      assert.ok(clean, `control: a 63-byte run of ${what} is not reported`);
      for (const file of written) {
        const hit = finder.find(readFileSync(file));
        assert.equal(hit, null, `${file} holds ${hit?.length} bytes of ${what} at offset ${hit?.hayAt}`);
      }
    }
  });

  it('opens in memory to the same bytes, and the bundled model generates as the folder model', async () => {
    const { manifest, files } = openBundle(bundle, secret);
    assert.deepEqual([...files.keys()].sort(), ['config.json', 'generation_config.json', 'merges.txt', 'model.safetensors',
      'tokenizer_config.json', 'vocab.json']);
    for (const [name, bytes] of files) assert.ok(Buffer.from(bytes).equals(readFileSync(join(model, name))), name);
    assert.equal(manifest.name, 'tiny');
    assert.equal(manifest.format, 'ajar-closed-bundle');
    assert.equal(manifest.cipher, 'AES-256-GCM');
    assert.equal(new Set(manifest.files.map((f) => f.nonce)).size, manifest.files.length, 'a fresh nonce per file');
    const folder = loadCausalLM(model);
    const bundled = loadBundledModel(bundle, secret);
    const ids = folder.tokenizer.encode('The quick brown fox');
    const a = await generate(folder.model, folder.tokenizer, ids, { maxNewTokens: 8, temperature: 0 });
    const b = await generate(bundled.model, bundled.tokenizer, ids, { maxNewTokens: 8, temperature: 0 });
    assert.deepEqual(b.ids, a.ids);
    assert.equal(b.text, a.text);
  });

  it('refuses a wrong key before reading any file', () => {
    const wrong = Buffer.from(randomBytes(32).toString('hex'));
    const e = refusal(() => openBundle(bundle, wrong));
    assert.equal(e.code, 'wrong_key');
    assert.match(e.message, /wrong key, or the manifest was changed/);
    assert.ok(e.message.includes(keyId(wrong)) && e.message.includes(keyId(secret)), 'names both key ids');
    const wrongFile = join(tmp, 'wrong.key');
    writeFileSync(wrongFile, wrong, { mode: 0o600 });
    const r = runCli(['verify', bundle, '--key-file', wrongFile]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /wrong key, or the manifest was changed/);
  });

  it('refuses one flipped byte in each encrypted file, naming it', () => {
    for (const f of manifestOf(bundle).files) {
      for (const at of [0, Math.floor((f.size + 16) / 2), -1]) { // first byte, middle, last byte of the tag
        const restore = flipByte(join(bundle, f.path), at);
        try {
          const e = refusal(() => openBundle(bundle, secret));
          assert.equal(e.code, 'bad_bundle');
          assert.match(e.message, new RegExp(`${f.path.replace(/\./g, '\\.')} was altered`));
          if (at === 0) {
            const v = runCli(['verify', bundle]);
            assert.equal(v.code, 1, 'verify without the key sees it too');
            assert.match(v.stderr, new RegExp(`${f.path.replace(/\./g, '\\.')}: changed`));
          }
        } finally {
          restore();
        }
      }
    }
    assert.equal(loadBundledModel(bundle, secret).model.architecture, 'GPT2LMHeadModel', 'the restored bundle opens');
  });

  it('refuses one flipped byte anywhere in the manifest', () => {
    const path = join(bundle, 'manifest.json');
    const text = readFileSync(path, 'utf8');
    const m = manifestOf(bundle);
    // Bytes inside each field's value (JSON stays valid, so the MAC must catch them), then every 211th byte.
    const targets = [text.indexOf(m.kdf.salt) + 3, text.indexOf(m.key_id) + 2, text.indexOf(m.model_sha256) + 5,
      text.indexOf(m.files[3].nonce) + 1, text.indexOf(`"size": ${m.files[3].size}`) + 9, text.indexOf(m.files[2].ciphertext_sha256) + 7,
      text.indexOf(m.mac) + 10, text.indexOf('"name": "tiny"') + 10, text.indexOf(m.created) + 3];
    for (let i = 0; i < text.length; i += 211) targets.push(i);
    for (const at of targets) {
      const restore = flipByte(path, at);
      try {
        const e = refusal(() => openBundle(bundle, secret));
        assert.ok(['wrong_key', 'bad_bundle'].includes(e.code), `${at}: ${e.code} ${e.message}`);
      } finally {
        restore();
      }
    }
    const valueFlip = flipByte(path, text.indexOf(m.files[3].nonce) + 1);
    try {
      assert.match(refusal(() => openBundle(bundle, secret)).message, /wrong key, or the manifest was changed/);
    } finally {
      valueFlip();
    }
  });

  it('the GCM tag alone refuses a changed ciphertext or a file moved under another name (manifest re-signed)', () => {
    // An attacker who could re-sign the manifest still cannot change a ciphertext or swap files: AES-GCM's tag
    // covers the ciphertext and the file's name (its additional data).
    const copy = join(tmp, 'resigned');
    cpSync(bundle, copy, { recursive: true });
    const m = manifestOf(copy);
    const resign = (man: BundleManifest): void => {
      const keys = deriveBundleKeys(secret, Buffer.from(man.kdf.salt, 'hex'), man.kdf);
      const { mac: _mac, ...rest } = man;
      const mac = createHmacHex(keys.mac, canonicalJson(rest));
      writeFileSync(join(copy, 'manifest.json'), JSON.stringify({ ...man, mac }, null, 2));
    };
    const cfg = m.files.find((f) => f.name === 'config.json')!;
    const bytes = readFileSync(join(copy, cfg.path));
    bytes[5] ^= 0x80;
    writeFileSync(join(copy, cfg.path), bytes);
    resign({ ...m, files: m.files.map((f) => (f === cfg ? { ...f, ciphertext_sha256: sha256Hex(bytes) } : f)) });
    assert.match(refusal(() => openBundle(copy, secret)).message, /config\.json\.enc was altered: its authentication tag does not match/);

    // Swap: generation_config.json's ciphertext, nonce and size listed as tokenizer_config.json.
    rmSync(copy, { recursive: true });
    cpSync(bundle, copy, { recursive: true });
    const gen = m.files.find((f) => f.name === 'generation_config.json')!;
    const tok = m.files.find((f) => f.name === 'tokenizer_config.json')!;
    renameSync(join(copy, gen.path), join(copy, tok.path));
    resign({ ...m, files: m.files.filter((f) => f !== gen).map((f) => (f === tok ? { ...gen, name: tok.name, path: tok.path } : f)) });
    assert.match(refusal(() => openBundle(copy, secret)).message, /tokenizer_config\.json\.enc was altered: its authentication tag/);
  });

  it('refuses a missing file, naming it; verify also names unlisted files', () => {
    const copy = join(tmp, 'missing');
    rmSync(copy, { recursive: true, force: true });
    cpSync(bundle, copy, { recursive: true });
    rmSync(join(copy, 'vocab.json.enc'));
    const e = refusal(() => loadBundledModel(copy, secret));
    assert.match(e.message, /vocab\.json\.enc is missing/);
    writeFileSync(join(copy, 'extra.bin'), 'x');
    const v = runCli(['verify', copy, '--json']);
    assert.equal(v.code, 1);
    const out = JSON.parse(v.stdout) as { ok: boolean; problems: string[] };
    assert.deepEqual(out.problems, ['vocab.json.enc: missing', 'extra.bin: not listed in manifest.json']);
  });

  it('verify with the key authenticates the intact bundle', () => {
    const r = runCli(['verify', bundle, '--key-file', keyFile]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /OK, 6 encrypted files match the manifest; the key opens it and every tag is valid/);
  });

  it('records the release with the key id, never the key', () => {
    const records = readReleaseRecords(model);
    assert.equal(records.length, 1);
    const rec = records[0];
    assert.equal(rec.kind, 'closed');
    assert.equal(rec.out, bundle);
    assert.equal(rec.key_id, keyId(secret));
    assert.equal(rec.key_id, manifestOf(bundle).key_id);
    assert.equal(rec.model_sha256, manifestOf(bundle).model_sha256);
    const everything = [join(model, 'ajar_releases.jsonl'), ...filesUnder(bundle)].map((f) => readFileSync(f).toString('latin1')).join('');
    assert.ok(!everything.includes(secretText) && !everything.includes(secretText.slice(0, 16)), 'the secret appears nowhere');
    const list = runCli(['release', 'list', '--model', model, '--json']);
    assert.equal(list.code, 0, list.stderr);
    const rows = JSON.parse(list.stdout) as Array<{ kind: string; key_id: string; present: boolean; same_model: boolean }>;
    assert.deepEqual(rows.map((r) => [r.kind, r.key_id, r.present, r.same_model]), [['closed', keyId(secret), true, true]]);
    const table = runCli(['release', 'list', '--model', model]);
    assert.match(table.stdout, new RegExp(`closed\\s+tiny\\s+key ${keyId(secret)}`));
  });
});

function createHmacHex(key: Uint8Array, text: string): string {
  return createHmac('sha256', key).update(text).digest('hex');
}

describe('ajar release closed: keys and refusals', () => {
  const dir = tempDir('ajar-bundle-keys-');
  const small = join(dir, 'char');
  before(() => cpSync(goldenPath('release/char-tiny'), small, { recursive: true }));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('takes the key from AJAR_BUNDLE_KEY; a key file with one trailing newline is the same key', () => {
    const r = runCli(['release', 'closed', '--model', small, '--out', join(dir, 'b1'), '--json'], { env: { AJAR_BUNDLE_KEY: secretText } });
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { key_id: string };
    assert.equal(out.key_id, keyId(secret), 'same id as the key file with a newline');
    assert.equal(openBundle(join(dir, 'b1'), secret).files.size, 6);
  });

  it('ajar release key writes a 600-mode key whose id it prints, and never overwrites', () => {
    const k = join(dir, 'new.key');
    const r = runCli(['release', 'key', '--out', k]);
    assert.equal(r.code, 0, r.stderr);
    const text = readFileSync(k, 'utf8');
    assert.match(text, /^[0-9a-f]{64}\n$/);
    assert.ok(r.stdout.includes(keyId(Buffer.from(text.trim()))));
    const again = runCli(['release', 'key', '--out', k]);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /already exists/);
  });

  it('refuses a short key, no key, and an output folder that is not empty', () => {
    const short = join(dir, 'short.key');
    writeFileSync(short, 'x'.repeat(31), { mode: 0o600 });
    const s = runCli(['release', 'closed', '--model', small, '--out', join(dir, 'b2'), '--key-file', short]);
    assert.equal(s.code, 2);
    assert.match(s.stderr, /^ajar release: --key-file .* holds 31 bytes; a bundle key needs at least 32/);
    const none = runCli(['release', 'closed', '--model', small, '--out', join(dir, 'b3')], { env: { AJAR_BUNDLE_KEY: '' } });
    assert.equal(none.code, 2);
    assert.match(none.stderr, /no bundle key: pass --key-file FILE or set AJAR_BUNDLE_KEY/);
    const full = join(dir, 'full');
    mkdirSync(full);
    writeFileSync(join(full, 'keep.txt'), 'mine');
    const ne = runCli(['release', 'closed', '--model', small, '--out', full], { env: { AJAR_BUNDLE_KEY: secretText } });
    assert.equal(ne.code, 2);
    assert.match(ne.stderr, /is not empty/);
    assert.deepEqual(readdirSync(full), ['keep.txt']);
    assert.equal(s.stderr.split('\n').filter((l) => l !== '').length, 1, 'one line, no stack trace');
  });
});
