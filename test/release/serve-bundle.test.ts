// Serving from a closed bundle: the model decrypted in memory by loadBundledModel goes into the same buildServer as a
// folder model, and the serve API tests' representative requests (completions plain and streamed, chat plain and
// streamed with the bundle's chat template, models, auth) answer exactly as the folder-served model does; then
// `ajar serve --bundle --key-file` as a real process, and its refusals before it listens.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { generate } from '../../src/generate/index.js';
import { modelSpecFromFolder } from '../../src/serve/index.js';
import { loadBundledModel, sealBundle } from '../../src/release/index.js';
import { useReferenceBackend } from '../helpers/backends.js';
import { runCli } from '../helpers/cli.js';
import { bearer, harness, MODEL_ID, sseEvents, type Harness } from '../serve/helpers.js';
import { copyGpt2Tiny, tempDir } from './helpers.js';

const binPath = fileURLToPath(new URL('../../../bin/ajar.js', import.meta.url));

const CHATML = '{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}'
  + '{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}';

interface Completion {
  object: string;
  model: string;
  choices: Array<{ text?: string; message?: { role: string; content: string }; finish_reason: string }>;
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

describe('ajar serve from a closed bundle answers as from the folder', () => {
  const tmp = tempDir('ajar-serve-bundle-');
  const secret = Buffer.from(randomBytes(32).toString('hex'));
  let folder: Harness;
  let bundled: Harness;
  let folderAuth: Record<string, string>;
  let bundleAuth: Record<string, string>;

  before(async () => {
    useReferenceBackend();
    const model = copyGpt2Tiny(join(tmp, 'model'));
    writeFileSync(join(model, 'chat_template.jinja'), CHATML);
    sealBundle({ modelDir: model, out: join(tmp, 'bundle'), secret, name: 'tiny' });
    const fromBundle = loadBundledModel(join(tmp, 'bundle'), secret);
    assert.equal(fromBundle.chatTemplate, CHATML, 'the chat template travels in the bundle');
    folder = await harness({ models: [modelSpecFromFolder(model, MODEL_ID)] });
    bundled = await harness({ models: [{ id: MODEL_ID, model: fromBundle.model, tokenizer: fromBundle.tokenizer, chatTemplate: fromBundle.chatTemplate }] });
    folderAuth = bearer((await folder.key()).key);
    bundleAuth = bearer((await bundled.key()).key);
  });
  after(async () => {
    await folder?.close();
    await bundled?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  const both = async (url: string, payload: object) => {
    const a = await folder.app.inject({ method: 'POST', url, headers: folderAuth, payload });
    const b = await bundled.app.inject({ method: 'POST', url, headers: bundleAuth, payload });
    assert.equal(a.statusCode, 200, a.body);
    assert.equal(b.statusCode, 200, b.body);
    return [a, b] as const;
  };

  it('completions: the same greedy text and usage', async () => {
    const [a, b] = await both('/v1/completions', { model: MODEL_ID, prompt: 'Hello world', max_tokens: 8, temperature: 0 });
    const ca = a.json<Completion>();
    const cb = b.json<Completion>();
    assert.equal(cb.object, 'text_completion');
    assert.equal(cb.model, MODEL_ID);
    assert.deepEqual(cb.choices, ca.choices);
    assert.deepEqual(cb.usage, ca.usage);
    assert.equal(cb.usage.completion_tokens, 8);
  });

  it('streamed completions: the same chunks, ending in [DONE]', async () => {
    const [a, b] = await both('/v1/completions', {
      model: MODEL_ID, prompt: 'Once upon a time', max_tokens: 6, temperature: 0, stream: true, stream_options: { include_usage: true },
    });
    assert.match(String(b.headers['content-type']), /^text\/event-stream/);
    const ea = sseEvents(a.body);
    const eb = sseEvents(b.body);
    assert.ok(eb.done);
    const strip = (events: unknown[]) => events.map((e) => {
      const { id: _id, created: _created, ...rest } = e as Record<string, unknown>;
      return rest;
    });
    assert.deepEqual(strip(eb.events), strip(ea.events));
  });

  it('chat: the bundle\'s chat template, plain and streamed', async () => {
    const messages = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'hi' }];
    const [a, b] = await both('/v1/chat/completions', { model: MODEL_ID, messages, max_tokens: 5, temperature: 0 });
    const cb = b.json<Completion>();
    assert.equal(cb.object, 'chat.completion');
    assert.deepEqual(cb.choices, a.json<Completion>().choices);
    assert.deepEqual(cb.usage, a.json<Completion>().usage);
    const tok = (await bundled.app.inject({ method: 'GET', url: '/v1/models', headers: bundleAuth })).json<{ data: Array<{ id: string }> }>();
    assert.deepEqual(tok.data.map((d) => d.id), [MODEL_ID]);
    const [sa, sb] = await both('/v1/chat/completions', { model: MODEL_ID, messages, max_tokens: 4, temperature: 0, stream: true });
    const deltas = (body: string) => (sseEvents(body).events as Array<{ choices: Array<{ delta: unknown; finish_reason: unknown }> }>)
      .map((e) => e.choices[0]);
    assert.deepEqual(deltas(sb.body), deltas(sa.body));
  });

  it('auth: no key or a wrong key gets 401, as from a folder', async () => {
    const none = await bundled.app.inject({ method: 'POST', url: '/v1/completions', payload: { model: MODEL_ID, prompt: 'x', max_tokens: 1 } });
    assert.equal(none.statusCode, 401);
    assert.equal(none.json<{ error: { code: string } }>().error.code, 'missing_api_key');
    const wrong = await bundled.app.inject({ method: 'GET', url: '/v1/models', headers: bearer(`ajar_sk_0123456789abcdef_${'B'.repeat(43)}`) });
    assert.equal(wrong.statusCode, 401);
    assert.equal((await bundled.app.inject({ method: 'GET', url: '/v1/models', headers: bundleAuth })).statusCode, 200);
  });
});

describe('ajar serve --bundle --key-file (a real process and socket)', () => {
  const tmp = tempDir('ajar-serve-bundle-cli-');
  const keyFile = join(tmp, 'bundle.key');
  const bundle = join(tmp, 'tiny-bundle');
  const db = `sqlite:${join(tmp, 'ajar.db')}`;
  let apiKey: string;
  let child: ChildProcess | undefined;

  before(() => {
    useReferenceBackend();
    const model = copyGpt2Tiny(join(tmp, 'model'));
    assert.equal(runCli(['release', 'key', '--out', keyFile]).code, 0);
    const sealed = runCli(['release', 'closed', '--model', model, '--out', bundle, '--key-file', keyFile]);
    assert.equal(sealed.code, 0, sealed.stderr);
    const k = runCli(['keys', 'create', '--name', 'test', '--db', db, '--json']);
    assert.equal(k.code, 0, k.stderr);
    apiKey = (JSON.parse(k.stdout) as { key: string }).key;
  });
  after(() => {
    child?.kill('SIGKILL');
    rmSync(tmp, { recursive: true, force: true });
  });

  it('decrypts in memory, listens, and completes as the folder model does', async () => {
    child = spawn(process.execPath, [binPath, 'serve', '--bundle', `tiny=${bundle}`, '--key-file', keyFile, '--port', '0', '--db', db,
      '--log-level', 'silent'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    const port = await new Promise<number>((resolvePort, reject) => {
      const timer = setTimeout(() => reject(new Error(`no listening line: ${stderr}`)), 60_000);
      child!.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString();
        const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(stderr);
        if (m) {
          clearTimeout(timer);
          resolvePort(Number(m[1]));
        }
      });
      child!.on('exit', (code) => reject(new Error(`exited ${code}: ${stderr}`)));
    });
    assert.match(stderr, /decrypting .*tiny-bundle in memory/);
    assert.match(stderr, /models: tiny/);
    const res = await fetch(`http://127.0.0.1:${port}/v1/completions`, {
      method: 'POST', headers: { ...bearer(apiKey), 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'tiny', prompt: 'The quick brown fox', max_tokens: 6, temperature: 0 }),
    });
    assert.equal(res.status, 200);
    const body = (await res.json()) as Completion;
    const folder = modelSpecFromFolder(join(tmp, 'model'));
    const direct = await generate(folder.model, folder.tokenizer, folder.tokenizer.encode('The quick brown fox'), { maxNewTokens: 6, temperature: 0 });
    assert.equal(body.choices[0].text, direct.text);
    const anon = await fetch(`http://127.0.0.1:${port}/v1/models`);
    assert.equal(anon.status, 401);
    child.kill('SIGTERM');
    await new Promise((r) => child!.once('exit', r));
  });

  it('refuses a wrong key or a changed byte before listening, in one line', () => {
    const wrongKey = join(tmp, 'wrong.key');
    writeFileSync(wrongKey, randomBytes(32).toString('hex'), { mode: 0o600 });
    const wrong = runCli(['serve', '--bundle', bundle, '--key-file', wrongKey, '--port', '0', '--db', db]);
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /^ajar serve: decrypting .*\najar serve: bundle .*: wrong key, or the manifest was changed/);
    assert.doesNotMatch(wrong.stderr, /listening/);
    const path = join(bundle, 'model.safetensors.enc');
    const bytes = readFileSync(path);
    bytes[12345] ^= 0x10;
    writeFileSync(path, bytes);
    const flipped = runCli(['serve', '--bundle', bundle, '--key-file', keyFile, '--port', '0', '--db', db]);
    assert.equal(flipped.code, 2);
    assert.match(flipped.stderr, /model\.safetensors\.enc was altered/);
    assert.doesNotMatch(flipped.stderr, /listening/);
    const noKey = runCli(['serve', '--bundle', bundle, '--port', '0', '--db', db], { env: { AJAR_BUNDLE_KEY: '' } });
    assert.equal(noKey.code, 2);
    assert.match(noKey.stderr, /no bundle key: pass --key-file FILE or set AJAR_BUNDLE_KEY/);
  });
});
