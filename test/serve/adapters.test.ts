// LoRA adapters served per key over one base (issue 13 item 4), in-process: completions through an adapter pick
// PyTorch's greedy tokens (test/golden/lora/make_serve_greedy.py), the base by its own id its own; scoped keys get
// the 404 of a nonexistent name; /v1/models per key with `parent`; admin load/unload (audited, in-flight requests
// finish); one fair queue; and 8 adapters cost their own bytes, not copies of the base.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parseAdapterArg } from '../../src/cli/serve.js';
import { generate } from '../../src/generate/index.js';
import { loadCausalLM } from '../../src/models/index.js';
import { Conv1D, Linear } from '../../src/nn/index.js';
import { AdapterHost, modelSpecFromFolder, type ModelSpec } from '../../src/serve/index.js';
import { GenerationQueue } from '../../src/serve/queue.js';
import { runCli } from '../helpers/cli.js';
import { goldenPath, readGoldenJson } from '../helpers/golden.js';
import { ADMIN_TOKEN, bearer, harness, waitFor, type Harness } from './helpers.js';
import { useReferenceBackend } from '../helpers/backends.js';

interface Greedy {
  prompt: string;
  prompt_ids: number[];
  max_new_tokens: number;
  base: number[];
  pos: number[];
  neg: number[];
}

interface Completion {
  model: string;
  choices: Array<{ text: string }>;
}

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string };
}

interface ModelObject {
  id: string;
  object: string;
  parent?: string;
}

const BASE = 'gpt2-tiny';
const BASE_DIR = goldenPath('gpt2-tiny');
const POS_DIR = goldenPath('lora/gpt2-tiny-lora');
const exp = readGoldenJson<Greedy>('lora/serve-greedy.expected.json');

const tmp = mkdtempSync(join(tmpdir(), 'ajar-serve-adapters-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A copy of the golden adapter with lora_alpha negated: the "neg" adapter of make_serve_greedy.py. */
function negAdapter(): string {
  const dir = join(tmp, 'neg');
  cpSync(POS_DIR, dir, { recursive: true });
  const path = join(dir, 'adapter_config.json');
  const cfg = JSON.parse(readFileSync(path, 'utf8')) as { lora_alpha: number };
  cfg.lora_alpha = -cfg.lora_alpha;
  writeFileSync(path, JSON.stringify(cfg));
  return dir;
}

/** A copy of the golden adapter whose target_modules also name a module gpt2 lacks (refused halfway). */
function wrongTargets(): string {
  const dir = join(tmp, 'wrong');
  cpSync(POS_DIR, dir, { recursive: true });
  const path = join(dir, 'adapter_config.json');
  const cfg = JSON.parse(readFileSync(path, 'utf8')) as { target_modules: string[] };
  cfg.target_modules = [...cfg.target_modules, 'q_proj'];
  writeFileSync(path, JSON.stringify(cfg));
  return dir;
}

/** A fresh base (not the helpers' shared one: adapters install routers in its layers). */
function freshBase(): ModelSpec {
  useReferenceBackend();
  return modelSpecFromFolder(BASE_DIR, BASE);
}

describe('serve: LoRA adapters per key', () => {
  let h: Harness;
  let base: ModelSpec;
  let neg: string;
  let all: Record<string, string>;
  const texts = (ids: number[]): string => base.tokenizer.decode(ids);

  before(async () => {
    neg = negAdapter();
    base = freshBase();
    h = await harness({ models: [base], adapters: [{ id: 'pos', dir: POS_DIR }, { id: 'neg', dir: neg }] });
    all = bearer((await h.key()).key);
  });
  after(async () => h.close());

  const complete = (model: string, headers = all, extra: Record<string, unknown> = {}) => h.app.inject({
    method: 'POST', url: '/v1/completions', headers,
    payload: { model, prompt: exp.prompt_ids, max_tokens: exp.max_new_tokens, temperature: 0, ...extra },
  });
  const admin = (method: 'POST' | 'DELETE' | 'GET', url: string, payload?: object) => h.app.inject({
    method, url, headers: bearer(ADMIN_TOKEN), ...(payload ? { payload } : {}),
  });

  it('a completion through each adapter picks PyTorch\'s greedy tokens; the base id gives the base\'s', async () => {
    assert.notDeepEqual(exp.pos, exp.base, 'the fixture\'s adapter changes the output');
    assert.notDeepEqual(exp.neg, exp.pos);
    for (const [model, ids] of [['pos', exp.pos], ['neg', exp.neg], [BASE, exp.base], ['pos', exp.pos]] as const) {
      const r = await complete(model);
      assert.equal(r.statusCode, 200, r.body);
      const c = r.json<Completion>();
      assert.equal(c.model, model);
      assert.equal(c.choices[0].text, texts([...ids]), `model ${model}`);
    }
  });

  it('the library (loadCausalLM with an adapter) and ajar generate --adapter pick the same tokens', async () => {
    const lib = loadCausalLM(BASE_DIR, { adapter: POS_DIR });
    const r = await generate(lib.model, lib.tokenizer, exp.prompt_ids, { maxNewTokens: exp.max_new_tokens, temperature: 0 });
    assert.deepEqual(r.ids, exp.pos);
    const g = runCli(['generate', '--model', BASE_DIR, '--adapter', POS_DIR, '--prompt', exp.prompt,
      '--max-new-tokens', String(exp.max_new_tokens), '--temperature', '0', '--json']);
    assert.equal(g.code, 0, g.stderr);
    assert.deepEqual((JSON.parse(g.stdout) as { ids: number[] }).ids, exp.pos);
  });

  it('interleaved requests for two adapters and the base each get their own output', async () => {
    const order = ['pos', 'neg', BASE, 'neg', 'pos', BASE];
    const rs = await Promise.all(order.map((m) => complete(m, all, { stream: true })));
    for (const [i, r] of rs.entries()) {
      assert.equal(r.statusCode, 200);
      const events = r.body.split('\n\n').filter((b) => b.startsWith('data: {'))
        .map((b) => JSON.parse(b.slice(6)) as { choices: Array<{ text: string }> });
      const text = events.map((e) => e.choices[0]?.text ?? '').join('');
      const want = order[i] === 'pos' ? exp.pos : order[i] === 'neg' ? exp.neg : exp.base;
      assert.equal(text, texts(want), `request ${i} (${order[i]})`);
    }
  });

  it('one queue serves adapters fairly: a burst for one adapter does not starve another', async () => {
    const done: string[] = [];
    const models = ['pos', 'pos', 'pos', 'pos', 'neg'];
    await Promise.all(models.map(async (m, i) => {
      const r = await complete(m, all, { max_tokens: 4 });
      assert.equal(r.statusCode, 200);
      done.push(`${m}${i}`);
    }));
    // FIFO would finish neg4 last; the least recently served lane goes next, so it runs right after pos0.
    assert.ok(done.indexOf('neg4') < done.indexOf('pos2'), `completion order ${done.join(', ')}`);
  });

  it('GenerationQueue: the oldest waiter of the least recently served lane runs next', async () => {
    const q = new GenerationQueue(8);
    const order: string[] = [];
    const first = await q.acquire(undefined, 'a');
    const waits = ['a1', 'a2', 'b1', 'a3', 'b2', 'c1'].map((n) => q.acquire(undefined, n[0]).then((release) => {
      order.push(n);
      release();
    }));
    first();
    await Promise.all(waits);
    assert.deepEqual(order, ['b1', 'c1', 'a1', 'b2', 'a2', 'a3']);
  });

  it('/v1/models lists adapters with parent, and a scoped key sees only its own', async () => {
    const list = (headers: Record<string, string>) => h.app.inject({ method: 'GET', url: '/v1/models', headers })
      .then((r) => r.json<{ data: ModelObject[] }>().data);
    const everything = await list(all);
    assert.deepEqual(everything.map((m) => [m.id, m.parent]), [[BASE, undefined], ['pos', BASE], ['neg', BASE]]);
    assert.ok(everything.every((m) => m.object === 'model'));
    const scoped = bearer((await h.key({ models: ['pos'] })).key);
    assert.deepEqual((await list(scoped)).map((m) => [m.id, m.parent]), [['pos', BASE]]);
    const one = await h.app.inject({ method: 'GET', url: '/v1/models/pos', headers: scoped });
    assert.deepEqual(one.json<ModelObject>().parent, BASE);
  });

  it('a key asking outside its scope gets exactly the 404 of a nonexistent name', async () => {
    const scoped = bearer((await h.key({ models: ['pos'] })).key);
    const ok = await complete('pos', scoped);
    assert.equal(ok.statusCode, 200);
    assert.equal(ok.json<Completion>().choices[0].text, texts(exp.pos));
    const named = (body: string, id: string): string => body.split(`'${id}'`).join("'<id>'");
    const ghost = await complete('ghost', scoped);
    assert.equal(ghost.statusCode, 404);
    assert.equal(ghost.json<ErrorBody>().error.code, 'model_not_found');
    for (const id of ['neg', BASE]) {
      const r = await complete(id, scoped);
      assert.equal(r.statusCode, 404);
      assert.equal(named(r.body, id), named(ghost.body, 'ghost'), `out-of-scope ${id}`);
      // A token id too large for any vocabulary: still the 404, not a 400 that would show the model exists.
      const big = await complete(id, scoped, { prompt: [10 ** 9] });
      const bigGhost = await complete('ghost', scoped, { prompt: [10 ** 9] });
      assert.equal(named(big.body, id), named(bigGhost.body, 'ghost'));
      const chat = await h.app.inject({
        method: 'POST', url: '/v1/chat/completions', headers: scoped,
        payload: { model: id, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 1 },
      });
      assert.equal(chat.statusCode, 404);
      const get = await h.app.inject({ method: 'GET', url: `/v1/models/${id}`, headers: scoped });
      const getGhost = await h.app.inject({ method: 'GET', url: '/v1/models/ghost', headers: scoped });
      assert.equal(get.statusCode, 404);
      assert.equal(named(get.body, id), named(getGhost.body, 'ghost'));
    }
  });

  it('admin loads and unloads adapters at run time, audited; a request in flight finishes', async () => {
    assert.equal((await h.app.inject({ method: 'POST', url: '/admin/adapters', payload: { name: 'x', path: POS_DIR } })).statusCode, 401);
    // An adapter refused halfway (a target the base lacks) leaves the base and the other adapters as they were.
    const wrong = await admin('POST', '/admin/adapters', { name: 'wrong', path: wrongTargets() });
    assert.deepEqual([wrong.statusCode, wrong.json<ErrorBody>().error.param], [400, 'path']);
    assert.match(wrong.json<ErrorBody>().error.message, /q_proj/);
    assert.equal((await complete(BASE)).json<Completion>().choices[0].text, texts(exp.base));
    assert.equal((await complete('neg')).json<Completion>().choices[0].text, texts(exp.neg));
    const loaded = await admin('POST', '/admin/adapters', { name: 'extra', path: POS_DIR });
    assert.equal(loaded.statusCode, 201, loaded.body);
    assert.equal(loaded.json<ModelObject>().parent, BASE);
    const r = await complete('extra');
    assert.equal(r.json<Completion>().choices[0].text, texts(exp.pos));
    const listed = (await admin('GET', '/admin/adapters')).json<{ data: ModelObject[] }>().data.map((m) => m.id);
    assert.deepEqual(listed, ['pos', 'neg', 'extra']);

    // Refusals: a taken name, a folder that is no adapter, an unknown or base name to unload.
    const dup = await admin('POST', '/admin/adapters', { name: 'pos', path: POS_DIR });
    assert.deepEqual([dup.statusCode, dup.json<ErrorBody>().error.param], [400, 'name']);
    const bad = await admin('POST', '/admin/adapters', { name: 'bad', path: BASE_DIR });
    assert.deepEqual([bad.statusCode, bad.json<ErrorBody>().error.param], [400, 'path']);
    assert.match(bad.json<ErrorBody>().error.message, /adapter_config\.json/);
    assert.equal((await admin('DELETE', '/admin/adapters/nothing')).statusCode, 404);
    assert.equal((await admin('DELETE', `/admin/adapters/${BASE}`)).statusCode, 400);

    // Keep the queue busy with a long base request, queue one for 'extra' behind it, then unload 'extra'.
    const long = complete(BASE, all, { max_tokens: 40 });
    await waitFor(async () => (await h.app.inject({ method: 'GET', url: '/metrics' })).body.includes(`ajar_generations_running{model="${BASE}"} 1`));
    const inflight = complete('extra');
    await waitFor(async () => (await h.app.inject({ method: 'GET', url: '/metrics' })).body.includes(`ajar_queue_depth{model="${BASE}"} 1`));
    const unloaded = await admin('DELETE', '/admin/adapters/extra');
    assert.equal(unloaded.statusCode, 200);
    assert.deepEqual(unloaded.json(), { id: 'extra', object: 'model', deleted: true });
    const after = await complete('extra');
    assert.equal(after.statusCode, 404);
    const finished = await inflight;
    assert.equal(finished.statusCode, 200);
    assert.equal(finished.json<Completion>().choices[0].text, texts(exp.pos));
    assert.equal((await long).statusCode, 200);

    const audit = await h.store.listAudit({});
    const actions = audit.filter((e) => e.action.startsWith('adapter.')).map((e) => [e.action, e.detail?.name, e.detail?.base]);
    assert.deepEqual(actions, [['adapter.load', 'extra', BASE], ['adapter.unload', 'extra', BASE]]);
    const requests = audit.filter((e) => e.action === 'admin.request' && String(e.detail?.path).startsWith('/admin/adapters'));
    assert.ok(requests.length >= 7, 'every admin call is audited');
  });
});

describe('serve: AdapterHost', () => {
  it('an adapter refused halfway leaves every layer of a fresh base without an adapter', () => {
    const b = freshBase();
    const host = new AdapterHost(b.model);
    assert.throws(() => host.load('wrong', wrongTargets()), /q_proj/);
    const slots = b.model.module.namedModules().filter(([, m]) => m instanceof Linear || m instanceof Conv1D)
      .map(([p, m]) => [p, (m as Linear).lora]);
    assert.ok(slots.length > 0);
    assert.deepEqual(slots.filter(([, l]) => l !== null), []);
  });
});

describe('serve: a Llama adapter', () => {
  it('a completion through llama-tiny-lora equals the library\'s greedy output with that adapter', async () => {
    useReferenceBackend();
    const dir = goldenPath('llama/llama-tiny');
    const adapter = goldenPath('lora/llama-tiny-lora');
    const h = await harness({ models: [modelSpecFromFolder(dir, 'llama-tiny')], adapters: [{ id: 'l', dir: adapter }] });
    try {
      const key = bearer((await h.key()).key);
      const lib = loadCausalLM(dir, { adapter });
      const plain = loadCausalLM(dir);
      const prompt = [1, 72, 101, 108, 108, 111];
      const want = await generate(lib.model, lib.tokenizer, prompt, { maxNewTokens: 8, temperature: 0, stopAtEos: false });
      const base = await generate(plain.model, plain.tokenizer, prompt, { maxNewTokens: 8, temperature: 0, stopAtEos: false });
      assert.notDeepEqual(want.ids, base.ids, 'the adapter changes the output');
      for (const [model, r] of [['l', want], ['llama-tiny', base]] as const) {
        const got = await h.app.inject({
          method: 'POST', url: '/v1/completions', headers: key,
          payload: { model, prompt, max_tokens: 8, temperature: 0 },
        });
        assert.equal(got.json<Completion>().choices[0].text, r.text, model);
      }
    } finally {
      await h.close();
    }
  });
});

describe('serve: adapter memory', () => {
  it('with 8 adapters loaded, memory is the base plus the adapters\' own bytes plus at most 10%', async () => {
    // NOTE: measured as ArrayBuffer bytes (process.memoryUsage().arrayBuffers, after a full GC), where every
    // Float32Array of weights lives; RSS would add the JS heap and allocator noise of the test runner.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const buffers = (): number => {
      gc();
      gc();
      return process.memoryUsage().arrayBuffers;
    };
    const before0 = buffers();
    const b = freshBase();
    const paramBytes = b.model.module.parameters().reduce((s, t) => s + t.data.byteLength, 0);
    // The adapter's own size: its tensors as stored (float32 A and B), from the safetensors header.
    const st = readFileSync(join(POS_DIR, 'adapter_model.safetensors'));
    const header = JSON.parse(st.subarray(8, 8 + Number(st.readBigUInt64LE(0))).toString('utf8')) as Record<string, { data_offsets?: number[] }>;
    const adapterBytes = Object.values(header).reduce((s, v) => s + (v.data_offsets ? v.data_offsets[1] - v.data_offsets[0] : 0), 0);
    const adapters = Array.from({ length: 8 }, (_, i) => ({ id: `a${i}`, dir: POS_DIR }));
    const h = await harness({ models: [b], adapters });
    try {
      const used = buffers() - before0;
      const budget = paramBytes + 8 * adapterBytes;
      assert.ok(used <= 1.1 * budget, `ArrayBuffer bytes ${used} > 1.1 x (base ${paramBytes} + 8 x adapter ${adapterBytes})`);
      assert.ok(used >= paramBytes, `the measure sees the base (${used} < ${paramBytes})`);
      const r = await h.app.inject({
        method: 'POST', url: '/v1/completions', headers: bearer((await h.key()).key),
        payload: { model: 'a7', prompt: exp.prompt_ids, max_tokens: exp.max_new_tokens, temperature: 0 },
      });
      assert.equal(r.json<Completion>().choices[0].text, b.tokenizer.decode(exp.pos));
    } finally {
      await h.close();
    }
  });
});

describe('serve: --adapter flag', () => {
  it('parses NAME=DIR and NAME=BASE:DIR; a malformed one is one line and exit 2', () => {
    assert.deepEqual(parseAdapterArg('support=./loras/support'), { id: 'support', dir: './loras/support' });
    assert.deepEqual(parseAdapterArg('support=gpt2:./loras/support'), { id: 'support', base: 'gpt2', dir: './loras/support' });
    assert.deepEqual(parseAdapterArg('s=/abs/dir:x'), { id: 's', dir: '/abs/dir:x' });
    const r = runCli(['serve', '--model', BASE_DIR, '--adapter', 'no-name-here']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--adapter 'no-name-here' must be NAME=DIR/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    // Two bases and an adapter that names neither: refused before the server listens.
    const two = runCli(['serve', '--model', `a=${BASE_DIR}`, '--model', `b=${BASE_DIR}`, '--adapter', `x=${POS_DIR}`,
      '--db', `sqlite:${join(tmp, 'cli.db')}`, '--port', '0']);
    assert.equal(two.code, 2, two.stderr);
    assert.match(two.stderr, /adapter 'x': 2 base models are served; say which one/);
  });
});
