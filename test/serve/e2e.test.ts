// The one real-socket run: the server listens on 127.0.0.1 port 0 and the official `openai` client drives it,
// unchanged, streamed and not; greedy text must equal what generateStream produces directly.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import { generateStream } from '../../src/generate/index.js';
import { FALLBACK_STOPS } from '../../src/serve/index.js';
import { bearer, harness, MODEL_ID, tinyModel, type Harness } from './helpers.js';

async function direct(prompt: string, maxNewTokens: number, stop: string[] = []): Promise<string> {
  const { model, tokenizer } = tinyModel();
  const it = generateStream(model, tokenizer, tokenizer.encode(prompt), { maxNewTokens, temperature: 0, stop });
  let text = '';
  for (;;) {
    const r = await it.next();
    if (r.done) return text;
    text += r.value.text;
  }
}

describe('serve: end to end over a socket with the openai client', () => {
  let h: Harness;
  let client: OpenAI;
  let keyId: string;

  before(async () => {
    h = await harness({ clock: Date.now });
    const { key, id } = await h.key();
    keyId = id;
    await h.app.listen({ host: '127.0.0.1', port: 0 });
    const addr = h.app.server.address();
    assert.ok(typeof addr === 'object' && addr !== null);
    client = new OpenAI({ apiKey: key, baseURL: `http://127.0.0.1:${addr.port}/v1`, maxRetries: 0 });
  });
  after(async () => h.close());

  const PROMPT = 'The quick brown fox';
  let want: Promise<string> | undefined;
  const expected = (): Promise<string> => (want ??= direct(PROMPT, 6));

  it('completes, non-streaming, exactly as generateStream does', async () => {
    const r = await client.completions.create({ model: MODEL_ID, prompt: PROMPT, max_tokens: 6, temperature: 0 });
    assert.equal(r.choices[0].text, await expected());
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.equal(r.usage?.completion_tokens, 6);
  });

  it('streams the same text, with usage, and ends cleanly', async () => {
    const stream = await client.completions.create({
      model: MODEL_ID, prompt: PROMPT, max_tokens: 6, temperature: 0, stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.text ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    assert.equal(text, await expected());
    assert.equal(usage?.completion_tokens, 6);
  });

  it('chats, streamed and not, and lists models', async () => {
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Say hi' }];
    const plain = await client.chat.completions.create({ model: MODEL_ID, messages, max_tokens: 4, temperature: 0 });
    assert.equal(plain.choices[0].message.content, await direct('User: Say hi\nAssistant:', 4, FALLBACK_STOPS));
    const stream = await client.chat.completions.create({ model: MODEL_ID, messages, max_tokens: 4, temperature: 0, stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    assert.equal(text, plain.choices[0].message.content);
    const list = await client.models.list();
    assert.deepEqual(list.data.map((m) => m.id), [MODEL_ID]);
  });

  it('surfaces errors as the client\'s typed errors', async () => {
    const addr = h.app.server.address() as { port: number };
    const bad = new OpenAI({ apiKey: 'ajar_sk_0000000000000000_' + 'A'.repeat(43), baseURL: `http://127.0.0.1:${addr.port}/v1`, maxRetries: 0 });
    await assert.rejects(bad.models.list(), (e: unknown) => e instanceof OpenAI.AuthenticationError && e.code === 'invalid_api_key');
    await assert.rejects(client.completions.create({ model: MODEL_ID, prompt: 'x', max_tokens: 500 }),
      (e: unknown) => e instanceof OpenAI.BadRequestError && e.code === 'context_length_exceeded' && e.param === 'max_tokens');
    // The key's usage is on record.
    const rows = await h.store.listUsage({ keyId });
    assert.ok(rows.length >= 6);
    const res = await fetch(`http://127.0.0.1:${addr.port}/v1/models`, { headers: bearer('nope') });
    assert.equal(res.status, 401);
  });
});
