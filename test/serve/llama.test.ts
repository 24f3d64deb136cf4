// Serving the Llama family: a grouped-query Llama (BOS added) and a Qwen2 checkpoint behind the OpenAI endpoints,
// answering greedy completions with the tokens PyTorch computed (test/golden/llama/make_llama_tiny.py).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { modelSpecFromFolder } from '../../src/serve/index.js';
import { useReferenceBackend } from '../helpers/backends.js';
import { goldenPath, readGoldenJson } from '../helpers/golden.js';
import { bearer, harness, type Harness } from './helpers.js';

interface Expected {
  generate: { prompt: string; prompt_ids: number[]; generated_ids: number[]; generated_text: string }[];
}

describe('serve: Llama-family models', () => {
  let h: Harness;
  let auth: Record<string, string>;
  const names = ['llama-tiny', 'qwen2-tiny'];

  before(async () => {
    useReferenceBackend();
    h = await harness({ models: names.map((n) => modelSpecFromFolder(goldenPath(`llama/${n}`), n)) });
    auth = bearer((await h.key()).key);
  });
  after(async () => h.close());

  for (const name of names) {
    it(`${name}: a greedy completion is PyTorch's, with the prompt's tokens counted (BOS included)`, async () => {
      const g = readGoldenJson<Expected>(`llama/${name}/expected.json`).generate[0];
      const n = 12;
      const r = await h.app.inject({
        method: 'POST', url: '/v1/completions', headers: auth,
        payload: { model: name, prompt: g.prompt, max_tokens: n, temperature: 0 },
      });
      assert.equal(r.statusCode, 200, r.body);
      const body = r.json<{ choices: { text: string }[]; usage: { prompt_tokens: number; completion_tokens: number } }>();
      assert.equal(body.usage.prompt_tokens, g.prompt_ids.length);
      assert.equal(body.usage.completion_tokens, n);
      // The first n generated tokens decode to a prefix of PyTorch's text (a cut character is held back).
      assert.ok(g.generated_text.startsWith(body.choices[0].text), `${JSON.stringify(body.choices[0].text)} vs ${JSON.stringify(g.generated_text)}`);
      assert.ok(body.choices[0].text.length > 0);
    });
  }
});
