// The library entry: importing it installs a backend, and the public API generates PyTorch's greedy tokens.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { defaultBackendName, generate, getBackend, loadCausalLM } from '../src/index.js';
import { goldenPath, readGoldenJson } from './helpers/golden.js';

it('installs a default backend and generates the reference greedy tokens through the public API', async () => {
  const env = process.env.AJAR_BACKEND;
  assert.equal(getBackend().name, env !== undefined && env !== '' ? env : defaultBackendName());
  assert.ok(['native', 'wasm', 'js'].includes(getBackend().name));
  const expected = readGoldenJson<{ generate: { prompt: string; generated_ids: number[] }[] }>('gpt2-tiny/expected.json');
  const { model, tokenizer } = loadCausalLM(goldenPath('gpt2-tiny'));
  const g = expected.generate[0];
  const r = await generate(model, tokenizer, tokenizer.encode(g.prompt), { maxNewTokens: 8, temperature: 0 });
  assert.deepEqual(r.ids, g.generated_ids.slice(0, 8));
});
