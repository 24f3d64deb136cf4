// The hybrid path end to end: `ajar release hybrid` (open base, sealed adapter), then the server holding the base
// and the adapter decrypted in memory (what `ajar serve --adapter-bundle` does), answering one scoped key with the
// greedy tokens PyTorch computed for base + adapter (test/golden/lora/make_serve_greedy.py).
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadAdapterBundle, readSecret } from '../../src/release/index.js';
import { modelSpecFromFolder } from '../../src/serve/index.js';
import { runCli } from '../helpers/cli.js';
import { useReferenceBackend } from '../helpers/backends.js';
import { goldenPath, readGoldenJson } from '../helpers/golden.js';
import { bearer, harness, type Harness } from './helpers.js';

interface Greedy { prompt: string; prompt_ids: number[]; max_new_tokens: number; base: number[]; pos: number[] }

describe('serve: a hybrid release, its adapter decrypted in memory, to one scoped key', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ajar-hybrid-serve-'));
  const out = join(tmp, 'release');
  const keyFile = join(tmp, 'bundle.key');
  let h: Harness;
  const g = readGoldenJson<Greedy>('lora/serve-greedy.expected.json');

  before(async () => {
    useReferenceBackend();
    assert.equal(runCli(['release', 'key', '--out', keyFile]).code, 0);
    // Copies: a release records itself in the base's and the adapter's folders, and the fixtures stay as committed.
    cpSync(goldenPath('gpt2-tiny'), join(tmp, 'base'), { recursive: true });
    cpSync(goldenPath('lora/gpt2-tiny-lora'), join(tmp, 'adapter'), { recursive: true });
    const r = runCli(['release', 'hybrid', '--model', join(tmp, 'base'), '--adapter', join(tmp, 'adapter'),
      '--out', out, '--license', 'apache-2.0', '--key-file', keyFile, '--no-eval']);
    assert.equal(r.code, 0, r.stderr);
    const secret = readSecret(keyFile).bytes;
    h = await harness({
      models: [modelSpecFromFolder(join(out, 'base'), 'base')],
      adapters: [{ id: 'acme', dir: join(out, 'adapter'), attach: (m) => loadAdapterBundle(m, join(out, 'adapter'), secret) }],
    });
  });
  after(async () => {
    await h.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('the adapter answers with PyTorch\'s greedy tokens; the key sees only its adapter', async () => {
    const auth = bearer((await h.key({ models: ['acme'] })).key);
    const post = (model: string) => h.app.inject({
      method: 'POST', url: '/v1/completions', headers: auth,
      payload: { model, prompt: g.prompt, max_tokens: g.max_new_tokens, temperature: 0 },
    });
    const r = await post('acme');
    assert.equal(r.statusCode, 200, r.body);
    const { tokenizer } = modelSpecFromFolder(goldenPath('gpt2-tiny'), 'ref');
    assert.equal(r.json<{ choices: { text: string }[] }>().choices[0].text, tokenizer.decode(g.pos));
    const base = await post('base');
    const none = await post('no-such-model');
    assert.equal(base.statusCode, 404);
    assert.equal(base.json<{ error: { code: string } }>().error.code, 'model_not_found');
    assert.equal(base.body.replace(/'base'/, 'X'), none.body.replace(/'no-such-model'/, 'X'), 'no existence leak');
    const models = await h.app.inject({ method: 'GET', url: '/v1/models', headers: auth });
    assert.deepEqual(models.json<{ data: { id: string; parent?: string }[] }>().data.map((m) => [m.id, m.parent]), [['acme', 'base']]);
  });

  it('ajar serve --adapter-bundle without --key-file is one line and exit 2', () => {
    const r = runCli(['serve', '--model', join(out, 'base'), '--adapter-bundle', `acme=${join(out, 'adapter')}`]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--adapter-bundle needs --key-file/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });
});
