// Small contracts of the release code: metrics -> model-index entries per task, front matter splitting, licence
// ids, key secrets (length floor, one trailing newline), key ids, canonical manifest JSON and the content hash.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  canonicalJson, contentHash, datasetLabel, indexMetrics, keyId, MIN_SECRET_BYTES, normalizeLicenseId, readSecret,
  splitFrontMatter, type ResultRecord,
} from '../../src/release/index.js';
import { AjarError } from '../../src/tensor/errors.js';
import { goldenPath } from '../helpers/golden.js';
import { tempDir } from './helpers.js';

const rec = (task: string, metrics: Record<string, number | null>): ResultRecord =>
  ({ task, dataset: '/home/me/data/reviews.csv (held-out 0.1)', metrics, iters: 100, date: '2026-01-01T00:00:00Z', source: 'ajar train' });

describe('release: model-index metrics', () => {
  it('a language model: loss and perplexity from val_loss', () => {
    assert.deepEqual(indexMetrics(rec('lm', { val_loss: 2 })).map((m) => [m.type, m.value]), [['loss', 2], ['perplexity', 7.38906]]);
  });

  it('a classifier: loss, accuracy and macro F1, no perplexity; a regressor: mse and mae', () => {
    assert.deepEqual(indexMetrics(rec('classification', { val_loss: 0.5, accuracy: 0.8, macro_f1: 0.75, majority_baseline: 0.5 }))
      .map((m) => m.type), ['loss', 'accuracy', 'f1']);
    assert.deepEqual(indexMetrics(rec('regression', { val_loss: null, mse: 0.25, mae: 0.4 })).map((m) => m.type), ['mse', 'mae']);
    assert.deepEqual(indexMetrics(rec('lm', { val_loss: null })), []);
  });

  it('shows a dataset by its file name, not its local path', () => {
    assert.equal(datasetLabel('/home/me/data/reviews.csv (held-out 0.1)'), 'reviews.csv (held-out 0.1)');
    assert.equal(datasetLabel('../x/eval.txt'), 'eval.txt');
  });

  it('splits front matter from a Markdown body, and refuses broken YAML clearly', () => {
    assert.deepEqual(splitFrontMatter('---\na: 1\n---\n# T\n', 'x'), { meta: { a: 1 }, body: '# T\n' });
    assert.deepEqual(splitFrontMatter('# T\n', 'x'), { meta: {}, body: '# T\n' });
    assert.throws(() => splitFrontMatter('---\na: [\n---\n', 'card.md'), /card\.md: the front matter is not valid YAML/);
    assert.throws(() => splitFrontMatter('---\na: 1\n', 'card.md'), /no closing '---' line/);
  });

  it('knows licence ids case-insensitively, SPDX spellings included, and refuses a non-SPDX id', () => {
    assert.equal(normalizeLicenseId('Apache-2.0'), 'apache-2.0');
    assert.equal(normalizeLicenseId('OpenRAIL-M'), 'openrail-m');
    assert.equal(normalizeLicenseId('GPL-3.0-only'), 'gpl-3.0');
    assert.equal(normalizeLicenseId('WTFPL'), 'wtfpl');
    assert.throws(() => normalizeLicenseId('apache-3.0'), (e: unknown) => e instanceof AjarError && e.code === 'unknown_license');
  });
});

describe('release: keys', () => {
  const dir = tempDir('ajar-keys-');
  after(() => rmSync(dir, { recursive: true, force: true }));

  it(`refuses secrets under ${MIN_SECRET_BYTES} bytes; strips one trailing newline only`, () => {
    const f = join(dir, 'k');
    writeFileSync(f, `${'a'.repeat(31)}\n`, { mode: 0o600 });
    assert.throws(() => readSecret(f, {}), /holds 31 bytes; a bundle key needs at least 32/);
    writeFileSync(f, `${'a'.repeat(32)}\r\n`, { mode: 0o600 });
    assert.equal(readSecret(f, {}).bytes.toString(), 'a'.repeat(32));
    writeFileSync(f, `${'a'.repeat(32)}\n\n`, { mode: 0o600 });
    assert.equal(readSecret(f, {}).bytes.toString(), `${'a'.repeat(32)}\n`);
    assert.equal(readSecret(undefined, { AJAR_BUNDLE_KEY: 'b'.repeat(40) }).source, 'AJAR_BUNDLE_KEY');
    assert.throws(() => readSecret(undefined, {}), /no bundle key/);
    const open = join(dir, 'open');
    writeFileSync(open, 'c'.repeat(40));
    chmodSync(open, 0o644);
    assert.match(readSecret(open, {}).warnings[0], /readable by other users; chmod 600/);
  });

  it('a key id is 16 hex characters, stable, distinct per secret, and not derived by a fast hash', () => {
    const s = Buffer.from('s'.repeat(64));
    const id = keyId(s);
    assert.match(id, /^[0-9a-f]{16}$/);
    assert.equal(keyId(Buffer.from('s'.repeat(64))), id);
    assert.notEqual(keyId(Buffer.from('t'.repeat(64))), id);
    assert.ok(!createHash('sha256').update(s).digest('hex').startsWith(id));
  });
});

describe('release: hashing', () => {
  it('canonical JSON sorts keys at every level and drops undefined', () => {
    assert.equal(canonicalJson({ b: 1, a: [{ d: 2, c: 'x' }], e: undefined }), '{"a":[{"c":"x","d":2}],"b":1}');
  });

  it('the content hash is sha256 of sha256sum lines of the model files in name order', () => {
    const dir = goldenPath('release/char-tiny');
    const names = ['config.json', 'generation_config.json', 'model.safetensors', 'special_tokens_map.json', 'tokenizer_config.json', 'vocab.json'];
    const lines = names.map((n) => `${createHash('sha256').update(readFileSync(join(dir, n))).digest('hex')}  ${n}\n`).join('');
    assert.equal(contentHash(dir), createHash('sha256').update(lines).digest('hex'));
  });
});
