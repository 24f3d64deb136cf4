// The OpenAI-compatible endpoints in-process (app.inject): completions and chat, streamed and not, request
// validation with `param`, context and body limits, models/health/metrics, and the usage records they leave.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generate } from '../../src/generate/index.js';
import { loadChatTemplate } from '../../src/serve/index.js';
import { bearer, harness, MODEL_ID, sseEvents, tinyModel, waitFor, type Harness } from './helpers.js';

interface Completion {
  object: string;
  model: string;
  choices: Array<{ text?: string; message?: { role: string; content: string }; finish_reason: string }>;
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string };
}

const CHATML = '{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}'
  + '{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}';

describe('serve: OpenAI endpoints', () => {
  let h: Harness;
  let auth: Record<string, string>;

  before(async () => {
    h = await harness({ limits: { bodyLimit: 4096 } });
    auth = bearer((await h.key()).key);
  });
  after(async () => h.close());

  const post = (url: string, payload: unknown, headers = auth) => h.app.inject({ method: 'POST', url, headers, payload: payload as object });

  it('completes a prompt greedily, as generate() does, with OpenAI usage', async () => {
    const { model, tokenizer } = tinyModel();
    const ids = tokenizer.encode('Hello world');
    const direct = await generate(model, tokenizer, ids, { maxNewTokens: 6, temperature: 0 });
    const r = await post('/v1/completions', { model: MODEL_ID, prompt: 'Hello world', max_tokens: 6, temperature: 0 });
    assert.equal(r.statusCode, 200, r.body);
    const c = r.json<Completion>();
    assert.equal(c.object, 'text_completion');
    assert.equal(c.model, MODEL_ID);
    assert.equal(c.choices[0].text, direct.text);
    assert.equal(c.choices[0].finish_reason, 'length');
    assert.deepEqual(c.usage, { prompt_tokens: ids.length, completion_tokens: 6, total_tokens: ids.length + 6 });
    // A prompt of token ids gives the same text.
    const r2 = await post('/v1/completions', { model: MODEL_ID, prompt: ids, max_tokens: 6, temperature: 0 });
    assert.equal(r2.json<Completion>().choices[0].text, direct.text);
  });

  it('streams server-sent events ending in [DONE], with a usage chunk when asked', async () => {
    const r = await post('/v1/completions', {
      model: MODEL_ID, prompt: 'Hello world', max_tokens: 5, temperature: 0, stream: true,
      stream_options: { include_usage: true },
    });
    assert.equal(r.statusCode, 200);
    assert.match(String(r.headers['content-type']), /^text\/event-stream/);
    assert.ok(r.headers['x-ratelimit-remaining-requests'] !== undefined, 'limit headers on a stream too');
    const { events, done } = sseEvents(r.body);
    assert.ok(done, 'ends with data: [DONE]');
    const chunks = events as Array<Partial<Completion> & { usage: Completion['usage'] | null }>;
    const usage = chunks.at(-1)!;
    assert.deepEqual(usage.choices, []);
    assert.equal(usage.usage!.completion_tokens, 5);
    const finish = chunks.at(-2)!;
    assert.equal(finish.choices![0].finish_reason, 'length');
    const text = chunks.slice(0, -1).map((c) => c.choices![0].text).join('');
    const plain = await post('/v1/completions', { model: MODEL_ID, prompt: 'Hello world', max_tokens: 5, temperature: 0 });
    assert.equal(text, plain.json<Completion>().choices[0].text);
    for (const c of chunks.slice(0, -1)) assert.equal(c.usage, null, 'include_usage puts usage: null on other chunks');
  });

  it('chat without a template uses the plain fallback format', async () => {
    const { tokenizer } = tinyModel();
    const r = await post('/v1/chat/completions', {
      model: MODEL_ID, messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'hi' }],
      max_tokens: 4, temperature: 0,
    });
    assert.equal(r.statusCode, 200, r.body);
    const c = r.json<Completion>();
    assert.equal(c.object, 'chat.completion');
    assert.equal(c.choices[0].message!.role, 'assistant');
    assert.equal(c.usage.prompt_tokens, tokenizer.encode('System: Be brief.\nUser: hi\nAssistant:').length);
  });

  it('chat streams role, content deltas and a finish chunk', async () => {
    const r = await post('/v1/chat/completions', {
      model: MODEL_ID, messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }], max_tokens: 3,
      temperature: 0, stream: true,
    });
    const { events, done } = sseEvents(r.body);
    assert.ok(done);
    const chunks = events as Array<{ object: string; choices: Array<{ delta: Record<string, string>; finish_reason: string | null }> }>;
    assert.equal(chunks[0].object, 'chat.completion.chunk');
    assert.deepEqual(chunks[0].choices[0].delta, { role: 'assistant', content: '' });
    assert.equal(chunks.at(-1)!.choices[0].finish_reason, 'length');
    assert.ok(chunks.slice(1, -1).every((c) => typeof c.choices[0].delta.content === 'string'));
  });

  it('answers 400 with `param` naming the field', async () => {
    const cases: Array<[unknown, string, string]> = [
      [{ prompt: 'x' }, 'model', 'missing_parameter'],
      [{ model: MODEL_ID }, 'prompt', 'missing_parameter'],
      [{ model: MODEL_ID, prompt: 'x', temperature: 'hot' }, 'temperature', 'invalid_type'],
      [{ model: MODEL_ID, prompt: 'x', temperature: 3 }, 'temperature', 'invalid_value'],
      [{ model: MODEL_ID, prompt: 'x', max_tokens: -1 }, 'max_tokens', 'invalid_value'],
      [{ model: MODEL_ID, prompt: 'x', max_tokens: 1.5 }, 'max_tokens', 'invalid_value'],
      [{ model: MODEL_ID, prompt: 'x', top_p: 0 }, 'top_p', 'invalid_value'],
      [{ model: MODEL_ID, prompt: 'x', n: 2 }, 'n', 'unsupported_parameter'],
      [{ model: MODEL_ID, prompt: 'x', stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop', 'invalid_value'],
      [{ model: MODEL_ID, prompt: 'x', stop: [1] }, 'stop[0]', 'invalid_type'],
      [{ model: MODEL_ID, prompt: 'x', stream_options: { include_usage: true } }, 'stream_options', 'invalid_value'],
      [{ model: MODEL_ID, prompt: [50256, 99999] }, 'prompt[1]', 'invalid_value'],
      [{ model: MODEL_ID, prompt: ['a', 'b'] }, 'prompt', 'unsupported_parameter'],
    ];
    for (const [body, param, code] of cases) {
      const r = await post('/v1/completions', body);
      assert.equal(r.statusCode, 400, `${JSON.stringify(body)} -> ${r.body}`);
      const e = r.json<ErrorBody>().error;
      assert.equal(e.param, param, JSON.stringify(body));
      assert.equal(e.code, code, JSON.stringify(body));
      assert.equal(e.type, 'invalid_request_error');
    }
    const chat: Array<[unknown, string]> = [
      [{ model: MODEL_ID, messages: [] }, 'messages'],
      [{ model: MODEL_ID, messages: [{ role: 'wizard', content: 'x' }] }, 'messages[0].role'],
      [{ model: MODEL_ID, messages: [{ role: 'user' }] }, 'messages[0].content'],
      [{ model: MODEL_ID, messages: [{ role: 'user', content: [{ type: 'image_url' }] }] }, 'messages[0].content[0].type'],
    ];
    for (const [body, param] of chat) {
      const r = await post('/v1/chat/completions', body);
      assert.equal(r.statusCode, 400, r.body);
      assert.equal(r.json<ErrorBody>().error.param, param);
    }
    const unknown = await post('/v1/completions', { model: 'nope', prompt: 'x' });
    assert.equal(unknown.statusCode, 404);
    assert.equal(unknown.json<ErrorBody>().error.code, 'model_not_found');
  });

  it('answers 400 invalid_json, 415 for a non-JSON body and 413 over the body limit', async () => {
    const bad = await h.app.inject({
      method: 'POST', url: '/v1/completions', headers: { ...auth, 'content-type': 'application/json' }, payload: '{"model": ',
    });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json<ErrorBody>().error.code, 'invalid_json');
    const text = await h.app.inject({
      method: 'POST', url: '/v1/completions', headers: { ...auth, 'content-type': 'text/plain' }, payload: 'hello',
    });
    assert.equal(text.statusCode, 415);
    assert.equal(text.json<ErrorBody>().error.code, 'unsupported_media_type');
    const big = await post('/v1/completions', { model: MODEL_ID, prompt: 'x'.repeat(5000) });
    assert.equal(big.statusCode, 413);
    assert.equal(big.json<ErrorBody>().error.code, 'body_too_large');
    assert.match(big.json<ErrorBody>().error.message, /4096 bytes/);
  });

  it('answers context_length_exceeded for a prompt or max_tokens past the context', async () => {
    const long = Array.from({ length: 129 }, () => 464);
    const r = await post('/v1/completions', { model: MODEL_ID, prompt: long, max_tokens: 1 });
    assert.equal(r.statusCode, 400);
    assert.deepEqual([r.json<ErrorBody>().error.code, r.json<ErrorBody>().error.param], ['context_length_exceeded', 'prompt']);
    const r2 = await post('/v1/completions', { model: MODEL_ID, prompt: long.slice(0, 100), max_tokens: 50 });
    assert.equal(r2.statusCode, 400);
    assert.deepEqual([r2.json<ErrorBody>().error.code, r2.json<ErrorBody>().error.param], ['context_length_exceeded', 'max_tokens']);
    assert.match(r2.json<ErrorBody>().error.message, /128 tokens/);
  });

  it('lists models, answers health and unknown routes', async () => {
    const m = await h.app.inject({ method: 'GET', url: '/v1/models', headers: auth });
    assert.deepEqual(m.json<{ data: Array<{ id: string }> }>().data.map((d) => d.id), [MODEL_ID]);
    const one = await h.app.inject({ method: 'GET', url: `/v1/models/${MODEL_ID}`, headers: auth });
    assert.equal(one.json<{ id: string }>().id, MODEL_ID);
    assert.deepEqual((await h.app.inject({ method: 'GET', url: '/health' })).json(), { status: 'ok' });
    const nf = await h.app.inject({ method: 'GET', url: '/v2/nothing' });
    assert.equal(nf.statusCode, 404);
    assert.equal(nf.json<ErrorBody>().error.code, 'not_found');
  });

  it('leaves one usage record per request, with tokens, status and finish reason', async () => {
    const before = (await h.store.listUsage({})).length;
    await post('/v1/completions', { model: MODEL_ID, prompt: 'Hi', max_tokens: 3, temperature: 0, user: 'u-42' });
    await post('/v1/completions', { model: MODEL_ID, prompt: 'x', temperature: 'hot' });
    const rows = (await h.store.listUsage({})).slice(before);
    assert.equal(rows.length, 2);
    assert.deepEqual(
      { s: rows[0].status, m: rows[0].model, c: rows[0].completionTokens, f: rows[0].finishReason, u: rows[0].user, e: rows[0].endpoint },
      { s: 200, m: MODEL_ID, c: 3, f: 'length', u: 'u-42', e: '/v1/completions' });
    assert.ok(rows[0].promptTokens > 0 && rows[0].latencyMs >= 0);
    assert.deepEqual([rows[1].status, rows[1].completionTokens], [400, 0]);
  });

  it('stops generating when a stream is abandoned and records the tokens produced', async () => {
    const { key, id } = await h.key({ name: 'abandon' });
    const res = await h.app.inject({
      method: 'POST', url: '/v1/completions', headers: bearer(key), payloadAsStream: true,
      payload: { model: MODEL_ID, prompt: 'Once', max_tokens: 100, temperature: 0, stream: true },
    });
    assert.equal(res.statusCode, 200);
    const stream = res.stream();
    await new Promise<void>((resolve) => stream.once('data', () => resolve()));
    // The client goes away: the server's response closes before it ended.
    res.raw.res.destroy();
    stream.destroy();
    const row = await waitFor(async () => (await h.store.listUsage({ keyId: id }))[0]);
    assert.equal(row.status, 499);
    assert.equal(row.finishReason, 'abort');
    assert.ok(row.completionTokens >= 1 && row.completionTokens < 100, `partial tokens: ${row.completionTokens}`);
    const summary = await h.store.usageSummary({ keyId: id });
    assert.equal(summary[0].completion_tokens, row.completionTokens);
    // The model is free again.
    const after = await post('/v1/completions', { model: MODEL_ID, prompt: 'x', max_tokens: 1 });
    assert.equal(after.statusCode, 200);
  });

  it('serves /metrics as Prometheus text', async () => {
    const r = await h.app.inject({ method: 'GET', url: '/metrics' });
    assert.equal(r.statusCode, 200);
    assert.match(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    const families = parsePrometheus(r.body);
    for (const name of ['ajar_requests_total', 'ajar_tokens_total', 'ajar_request_duration_seconds', 'ajar_queue_depth',
      'ajar_store_duration_seconds', 'ajar_limiter_duration_seconds']) {
      assert.ok(families.has(name), `${name} present`);
    }
    assert.equal(families.get('ajar_store_duration_seconds'), 'histogram');
    assert.equal(families.get('ajar_limiter_duration_seconds'), 'histogram');
    // Earlier requests in this suite authenticated, were limited and were metered: each call was timed.
    for (const [family, op] of [['store', 'getKey'], ['store', 'recordUsage'], ['limiter', 'take']]) {
      const m = new RegExp(`ajar_${family}_duration_seconds_count\\{op="${op}"\\} (\\d+)`).exec(r.body);
      assert.ok(m && Number(m[1]) > 0, `${family} ${op} timed`);
    }
    assert.equal(families.get('ajar_request_duration_seconds'), 'histogram');
    assert.match(r.body, /ajar_requests_total\{route="\/v1\/completions",status="200"\} \d+/);
    assert.match(r.body, /ajar_tokens_total\{model="gpt2-tiny",type="completion"\} \d+/);
  });
});

/**
 * A strict reader of Prometheus text format 0.0.4: HELP/TYPE before samples, sample syntax, histogram buckets
 * cumulative with +Inf equal to _count. Returns family -> type.
 */
function parsePrometheus(text: string): Map<string, string> {
  assert.ok(text.endsWith('\n'), 'ends with a newline');
  const types = new Map<string, string>();
  const buckets = new Map<string, number[]>();
  const counts = new Map<string, number>();
  const name = '[a-zA-Z_:][a-zA-Z0-9_:]*';
  const label = `${name}="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"`;
  const sample = new RegExp(`^(${name})(\\{(?:${label}(?:,${label})*)?\\})? (-?[0-9.e+-]+|\\+Inf|-Inf|NaN)$`);
  for (const line of text.trimEnd().split('\n')) {
    if (line.startsWith('# HELP ')) continue;
    const t = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (t) {
      assert.ok(!types.has(t[1]), `one TYPE line for ${t[1]}`);
      types.set(t[1], t[2]);
      continue;
    }
    const m = sample.exec(line);
    assert.ok(m, `sample line: ${line}`);
    const family = m[1].replace(/_(bucket|sum|count)$/, '');
    const type = types.get(m[1]) ?? types.get(family);
    assert.ok(type, `${m[1]} has a TYPE line before it`);
    assert.ok(Number.isFinite(Number(m[3])) || /Inf|NaN/.test(m[3]));
    if (type === 'histogram') {
      const series = `${family}${(m[2] ?? '').replace(/,?le="[^"]*"/, '')}`;
      if (m[1].endsWith('_bucket')) buckets.set(series, [...(buckets.get(series) ?? []), Number(m[3])]);
      if (m[1].endsWith('_count')) counts.set(series, Number(m[3]));
    }
  }
  for (const [series, b] of buckets) {
    for (let i = 1; i < b.length; i++) assert.ok(b[i] >= b[i - 1], `${series} buckets are cumulative`);
    assert.equal(b.at(-1), counts.get(series.replace('{}', '')) ?? counts.get(series), `${series} +Inf = _count`);
  }
  return types;
}

describe('serve: chat templates', () => {
  let h: Harness;
  const template = `{% if messages[0].role != 'user' and messages[0].role != 'system' %}`
    + `{{ raise_exception('the first message must come from the user') }}{% endif %}${CHATML}`;

  before(async () => {
    h = await harness({ models: [{ ...tinyModel(), chatTemplate: template }] });
  });
  after(async () => h.close());

  it('renders the model\'s template and counts its tokens as the prompt', async () => {
    const { tokenizer } = tinyModel();
    const { key } = await h.key();
    const r = await h.app.inject({
      method: 'POST', url: '/v1/chat/completions', headers: bearer(key),
      payload: { model: MODEL_ID, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2, temperature: 0 },
    });
    assert.equal(r.statusCode, 200, r.body);
    const rendered = '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n';
    assert.equal(r.json<Completion>().usage.prompt_tokens, tokenizer.encode(rendered).length);
  });

  it('turns a template\'s raise_exception into 400 invalid_messages', async () => {
    const { key } = await h.key();
    const r = await h.app.inject({
      method: 'POST', url: '/v1/chat/completions', headers: bearer(key),
      payload: { model: MODEL_ID, messages: [{ role: 'assistant', content: 'hello' }], max_tokens: 2 },
    });
    assert.equal(r.statusCode, 400);
    assert.deepEqual([r.json<ErrorBody>().error.code, r.json<ErrorBody>().error.param], ['invalid_messages', 'messages']);
    assert.match(r.json<ErrorBody>().error.message, /first message must come from the user/);
  });

  it('finds a folder\'s template in chat_template.jinja or tokenizer_config.json', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ajar-chat-'));
    try {
      assert.equal(loadChatTemplate(dir), undefined);
      writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ chat_template: [{ name: 'default', template: 'A' }] }));
      assert.equal(loadChatTemplate(dir), 'A');
      writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ chat_template: 'B' }));
      assert.equal(loadChatTemplate(dir), 'B');
      writeFileSync(join(dir, 'chat_template.jinja'), 'C');
      assert.equal(loadChatTemplate(dir), 'C');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('serve: timeouts, open mode and internal errors', () => {
  it('times out a long generation with 504 and records the partial tokens', async () => {
    const h = await harness({ limits: { requestTimeoutMs: 400 } });
    try {
      const { key, id } = await h.key();
      const r = await h.app.inject({
        method: 'POST', url: '/v1/completions', headers: bearer(key),
        payload: { model: MODEL_ID, prompt: 'Once', max_tokens: 100, temperature: 0 },
      });
      assert.equal(r.statusCode, 504, r.body);
      assert.equal(r.json<ErrorBody>().error.code, 'request_timeout');
      const [row] = await h.store.listUsage({ keyId: id });
      assert.equal(row.status, 504);
      assert.ok(row.completionTokens > 0 && row.completionTokens < 100);
    } finally {
      await h.close();
    }
  });

  it('open mode serves without keys, limits and meters per address', async () => {
    const h = await harness({ mode: 'open', limits: { defaultRpm: 1 } });
    try {
      const r = await h.app.inject({ method: 'POST', url: '/v1/completions', payload: { model: MODEL_ID, prompt: 'Hi', max_tokens: 2 } });
      assert.equal(r.statusCode, 200, r.body);
      const again = await h.app.inject({ method: 'GET', url: '/v1/models', remoteAddress: '127.0.0.1' });
      assert.equal(again.statusCode, 429);
      const other = await h.app.inject({ method: 'GET', url: '/v1/models', remoteAddress: '10.0.0.7' });
      assert.equal(other.statusCode, 200);
      const summary = await h.store.usageSummary({});
      assert.deepEqual(summary.map((s) => [s.key_id, s.requests]).sort(), [['anon:10.0.0.7', 1], ['anon:127.0.0.1', 2]]);
    } finally {
      await h.close();
    }
  });

  it('answers an internal failure with a generic 500: no stack, no internals, message-only log', async () => {
    const real = tinyModel();
    const broken = new Proxy(real.model, {
      get(target, prop) {
        if (prop === 'forward') {
          return () => {
            throw new Error('kernel exploded in /opt/secret/path');
          };
        }
        const v: unknown = Reflect.get(target, prop, target);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    const h = await harness({ models: [{ ...real, model: broken }] });
    try {
      const { key } = await h.key();
      const r = await h.app.inject({
        method: 'POST', url: '/v1/completions', headers: bearer(key), payload: { model: MODEL_ID, prompt: 'Hi', max_tokens: 2 },
      });
      assert.equal(r.statusCode, 500);
      assert.deepEqual(r.json(), { error: { message: 'internal server error', type: 'server_error', param: null, code: 'internal_error' } });
      const logs = h.logs.join('');
      assert.match(logs, /kernel exploded/);
      assert.doesNotMatch(logs, /\n\s+at /, 'no stack trace in the log');
      assert.doesNotMatch(logs, /"stack"/);
      const s = await h.app.inject({
        method: 'POST', url: '/v1/completions', headers: bearer(key),
        payload: { model: MODEL_ID, prompt: 'Hi', max_tokens: 2, stream: true },
      });
      const { events, done } = sseEvents(s.body);
      assert.ok(done);
      assert.equal((events.at(-1) as ErrorBody).error.code, 'internal_error');
      assert.doesNotMatch(s.body, /exploded|secret/);
    } finally {
      await h.close();
    }
  });
});
