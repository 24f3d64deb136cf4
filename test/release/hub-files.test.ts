// An open release of a character-level model is complete for the Hugging Face stack: its tokenizer.json encodes and
// decodes exactly as the vocabulary says under @huggingface/tokenizers (check_hf_tokenizer.py runs the Rust tokenizers
// and transformers' AutoTokenizer the same way), ajar reads it back to PyTorch's loss, generation_config.json and
// special_tokens_map.json are filled, and the card's metadata follows the Hub's model card spec.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { evaluateLM } from '../../src/eval/index.js';
import { loadTokenizer } from '../../src/io/tokenizer/index.js';
import { loadCausalLM } from '../../src/models/index.js';
import { hubIdOfCachePath } from '../../src/release/card.js';
import { cardMetadata, releaseOpen, splitFrontMatter, type CardInput, type ResultRecord } from '../../src/release/index.js';
import { useReferenceBackend } from '../helpers/backends.js';
import { goldenPath, readGoldenJson } from '../helpers/golden.js';
import { tempDir } from './helpers.js';

const tmp = tempDir('ajar-hub-files-');
const out = join(tmp, 'shakespeare-char-v1');
const readJson = (name: string): Record<string, unknown> => JSON.parse(readFileSync(join(out, name), 'utf8')) as Record<string, unknown>;
const evalText = readFileSync(goldenPath('release/eval.txt'), 'utf8');

describe('open release of a char model: files for the Hugging Face stack', () => {
  before(() => {
    useReferenceBackend();
    releaseOpen({ modelDir: goldenPath('release/char-tiny'), out, license: 'mit', author: 'A. Person', noEval: true,
      name: 'shakespeare-char-v1', languages: ['en'], record: false });
  });

  it('tokenizer.json under @huggingface/tokenizers: the vocabulary\'s ids for every character, decoded back exactly', () => {
    const tok = new HfTokenizer(readJson('tokenizer.json'), readJson('tokenizer_config.json'));
    const vocab = readJson('vocab.json') as Record<string, number>;
    const want = [...evalText].map((c) => vocab[c]); // reload_release.py's tokenisation: look every character up
    const ids = tok.encode(evalText, { add_special_tokens: false }).ids;
    assert.deepEqual(ids, want);
    assert.equal(tok.decode(ids), evalText);
    assert.equal(tok.decode(want.slice(0, 40)), evalText.slice(0, 40), 'no spaces inserted between characters');
    assert.equal(readJson('tokenizer_config.json').tokenizer_class, 'PreTrainedTokenizerFast', 'a class AutoTokenizer knows');
  });

  it('ajar reads the release\'s tokenizer.json back and evaluates to PyTorch\'s loss', () => {
    assert.equal(loadTokenizer(out).kind, 'char');
    const { model, tokenizer } = loadCausalLM(out);
    const ref = readGoldenJson<{ char_tiny: { loss: number; tokens: number } }>('release/expected.json').char_tiny;
    const r = evaluateLM(model, tokenizer.encode(evalText));
    assert.equal(r.tokens, ref.tokens);
    assert.ok(Math.abs(r.loss - ref.loss) / ref.loss < 1e-4, `${r.loss} vs ${ref.loss}`);
  });

  it('generation_config.json samples up to the context; no special tokens, so special_tokens_map.json is {}', () => {
    // transformers' GenerationConfig keys; a char vocabulary has no BOS, EOS or pad id to name.
    assert.deepEqual(readJson('generation_config.json'), { do_sample: true, max_length: 32 });
    assert.deepEqual(readJson('special_tokens_map.json'), {});
  });

  it('the card: language, library_name, pipeline_tag, named after the release', () => {
    const card = readFileSync(join(out, 'README.md'), 'utf8');
    const meta = splitFrontMatter(card, 'README.md').meta;
    assert.deepEqual(meta.language, ['en']);
    assert.equal(meta.library_name, 'transformers');
    assert.equal(meta.pipeline_tag, 'text-generation');
    assert.match(card, /^# shakespeare-char-v1$/m);
  });

  it('refuses a language that is not a code', () => {
    assert.throws(() => releaseOpen({ modelDir: goldenPath('release/char-tiny'), out: join(tmp, 'x'), license: 'mit', author: 'A',
      noEval: true, name: 'x', languages: ['English'] }), /--language "English" is not a language code/);
  });
});

describe('card metadata: model-index datasets and base_model', () => {
  const rec = (dataset: string, source: string): ResultRecord => ({
    task: 'lm', dataset, metrics: { loss: 1.5 }, iters: null, date: '2026-01-01T00:00:00Z', source,
  });
  const input = (datasets: string[]): CardInput => ({
    name: 'm', datasets, results: [rec('/data/valid.txt', 'ajar eval'), rec('/data/input.txt (held-out 0.1)', 'ajar train')],
    model: { architecture: 'GPT2LMHeadModel', task: 'causal-lm', config: { model_type: 'gpt2' }, parameters: 1, contextLength: 8,
      vocabSize: 4, tokenizerKind: 'char' },
    license: { metadata: { license: 'mit' } } as unknown as CardInput['license'], trainingArgs: null, date: new Date(0),
  });

  it('model-index names the Hub dataset id as type (the spec\'s required field), the file as name', () => {
    const index = cardMetadata(input(['karpathy/tiny_shakespeare']))['model-index'] as Array<{ results: Array<{ dataset: unknown }> }>;
    assert.deepEqual(index[0].results.map((r) => r.dataset), [
      { name: 'valid.txt', type: 'karpathy/tiny_shakespeare' },
      { name: 'input.txt (held-out 0.1)', type: 'karpathy/tiny_shakespeare', split: 'validation' },
    ]);
  });

  it('without a Hub dataset id there is no model-index (a file name is not a dataset id)', () => {
    const meta = cardMetadata(input([]));
    assert.equal(meta['model-index'], undefined);
    assert.deepEqual(meta.metrics, ['loss', 'perplexity']);
  });

  it('base_model from a huggingface_hub cache path (ajar train --init-from ORG/NAME)', () => {
    assert.equal(hubIdOfCachePath('/home/u/.cache/huggingface/hub/models--openai-community--gpt2/snapshots/607a30d/'),
      'openai-community/gpt2');
    assert.equal(hubIdOfCachePath('out/run'), undefined);
    assert.equal(hubIdOfCachePath(undefined), undefined);
  });
});
