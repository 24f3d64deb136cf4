// Open releases: the folder transformers loads (files, tensor names, tied weights once, tokenizer files), the model
// card's front matter and body, licences, SHA256SUMS and `ajar verify`, the release record, and every refusal.
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { evaluateLM } from '../../src/eval/index.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { loadTokenizer } from '../../src/io/tokenizer/index.js';
import { loadCausalLM } from '../../src/models/index.js';
import {
  contentHash, readReleaseRecords, readResults, releaseOpen, sha256Hex, splitFrontMatter, type ResultRecord,
} from '../../src/release/index.js';
import { AjarError } from '../../src/tensor/errors.js';
import { useReferenceBackend } from '../helpers/backends.js';
import { runCli } from '../helpers/cli.js';
import { goldenPath, readGoldenJson } from '../helpers/golden.js';
import { copyGpt2Tiny, tempDir } from './helpers.js';

const require = createRequire(import.meta.url);
const spdxText = (id: string): string => (require(`spdx-license-list/licenses/${id}.json`) as { licenseText: string }).licenseText;

const tmp = tempDir('ajar-open-');
const gpt2 = copyGpt2Tiny(join(tmp, 'gpt2'));
const NOW = new Date('2026-03-04T05:06:07Z');
const CHATML = '{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}';

interface ModelIndex {
  name: string;
  results: Array<{ task: { type: string }; dataset: { name: string; type: string; split?: string }; metrics: Array<{ type: string; value: number }> }>;
}

function frontMatter(dir: string): Record<string, unknown> {
  return splitFrontMatter(readFileSync(join(dir, 'README.md'), 'utf8'), 'README.md').meta;
}

function refusal(f: () => unknown): AjarError {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof AjarError, String(e));
    return e;
  }
  assert.fail('expected a refusal');
}

describe('ajar release open: gpt2-tiny', () => {
  const out = join(tmp, 'gpt2-release');
  before(() => {
    useReferenceBackend();
    writeFileSync(join(gpt2, 'chat_template.jinja'), CHATML);
    releaseOpen({ modelDir: gpt2, out, license: 'Apache-2.0', name: 'gpt2-tiny', author: 'Example Org', noEval: true, now: NOW });
  });

  it('writes exactly the files of a Hugging Face folder, a card, the licence and checksums', () => {
    assert.deepEqual(readdirSync(out).sort(), ['LICENSE', 'README.md', 'SHA256SUMS', 'chat_template.jinja', 'config.json',
      'generation_config.json', 'merges.txt', 'model.safetensors', 'special_tokens_map.json', 'tokenizer.json',
      'tokenizer_config.json', 'vocab.json']);
    assert.deepEqual(readdirSync(tmp).filter((n) => n.includes('staging')), [], 'no staging folder left');
  });

  it('stores the weights as transformers does: its tensor names, float32, the tied lm_head once', () => {
    const src = readSafetensors(join(gpt2, 'model.safetensors')).tensors;
    const rel = readSafetensors(join(out, 'model.safetensors'));
    assert.equal(rel.metadata.format, 'pt', 'transformers refuses safetensors without format "pt"');
    const expectedNames = [...src.keys()].filter((n) => !/\.attn\.bias$/.test(n)).sort();
    assert.deepEqual([...rel.tensors.keys()].sort(), expectedNames);
    assert.ok(!rel.tensors.has('lm_head.weight'));
    for (const [name, t] of rel.tensors) {
      assert.equal(t.dtype, 'F32', name);
      assert.deepEqual(t.data, src.get(name)!.data, `${name}: F16 widened exactly`);
    }
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual(config.architectures, ['GPT2LMHeadModel']);
    assert.equal(config.model_type, 'gpt2');
    assert.equal(config.torch_dtype, 'float32');
    assert.deepEqual(JSON.parse(readFileSync(join(out, 'generation_config.json'), 'utf8')),
      { bos_token_id: 50256, eos_token_id: 50256, do_sample: true, max_length: 128 });
  });

  it('carries BPE tokenizer files that give the same ids, and the chat template', () => {
    const text = readFileSync(goldenPath('gpt2-tiny/eval.txt'), 'utf8');
    const ids = readGoldenJson<{ eval_ids: number[] }>('gpt2-tiny/expected.json').eval_ids;
    assert.deepEqual(loadTokenizer(out).encode(text), ids);
    const tc = JSON.parse(readFileSync(join(out, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(tc.tokenizer_class, 'GPT2Tokenizer');
    assert.equal(tc.model_max_length, 128);
    assert.deepEqual(JSON.parse(readFileSync(join(out, 'special_tokens_map.json'), 'utf8')),
      { bos_token: '<|endoftext|>', eos_token: '<|endoftext|>', unk_token: '<|endoftext|>' });
    const tj = JSON.parse(readFileSync(join(out, 'tokenizer.json'), 'utf8')) as { model: { type: string } };
    assert.equal(tj.model.type, 'BPE');
    assert.equal(readFileSync(join(out, 'chat_template.jinja'), 'utf8'), CHATML);
  });

  it('evaluates to the PyTorch reference loss of the original checkpoint', () => {
    const { model, tokenizer } = loadCausalLM(out);
    const ref = readGoldenJson<{ eval: Record<string, { loss: number; tokens: number }> }>('gpt2-tiny/expected.json').eval['128'];
    const r = evaluateLM(model, tokenizer.encode(readFileSync(goldenPath('gpt2-tiny/eval.txt'), 'utf8')));
    assert.equal(r.tokens, ref.tokens);
    assert.ok(Math.abs(r.loss - ref.loss) / ref.loss < 1e-4, `${r.loss} vs ${ref.loss}`);
  });

  it('ships the official licence text with the copyright line filled', () => {
    const text = readFileSync(join(out, 'LICENSE'), 'utf8');
    assert.equal(text, `${spdxText('Apache-2.0').replace('[yyyy] [name of copyright owner]', '2026 Example Org')}`.replace(/\n?$/, '\n'));
    assert.ok(text.includes('Copyright 2026 Example Org'));
  });

  it('writes a card whose front matter follows the Hub spec, and says there are no results', () => {
    const meta = frontMatter(out);
    assert.deepEqual(Object.keys(meta), ['license', 'library_name', 'tags', 'pipeline_tag']);
    assert.deepEqual(meta, { license: 'apache-2.0', library_name: 'transformers', tags: ['ajar', 'gpt2', 'text-generation'],
      pipeline_tag: 'text-generation' });
    const card = readFileSync(join(out, 'README.md'), 'utf8');
    assert.match(card, /^---\n[\s\S]*\n---\n\n# gpt2-tiny\n/);
    assert.match(card, /No evaluation results were recorded/);
    assert.match(card, /AutoTokenizer\.from_pretrained/);
    for (const heading of ['Model details', 'How to use', 'Training details', 'Evaluation results', 'Intended use', 'Limitations', 'Licence']) {
      assert.match(card, new RegExp(`^## ${heading}$`, 'm'), heading);
    }
    assert.ok(!card.includes(tmp), 'no local path in the card');
  });

  it('lists every other file in SHA256SUMS, which sha256sum -c reads', () => {
    const lines = readFileSync(join(out, 'SHA256SUMS'), 'utf8').trimEnd().split('\n');
    const names = lines.map((l) => l.slice(66));
    assert.deepEqual(names, readdirSync(out).filter((n) => n !== 'SHA256SUMS').sort());
    for (const l of lines) {
      assert.match(l, /^[0-9a-f]{64} {2}\S+$/);
      assert.equal(l.slice(0, 64), sha256Hex(readFileSync(join(out, l.slice(66)))));
    }
    const r = runCli(['verify', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /OK, 11 files match SHA256SUMS/);
  });

  it('ajar verify catches one changed byte, a missing file and an extra file', () => {
    const copy = join(tmp, 'verify-copy');
    cpSync(out, copy, { recursive: true });
    for (const name of ['model.safetensors', 'README.md', 'vocab.json']) {
      const path = join(copy, name);
      const bytes = readFileSync(path);
      const at = Math.floor(bytes.length / 3);
      bytes[at] ^= 0x04;
      writeFileSync(path, bytes);
      const r = runCli(['verify', copy]);
      assert.equal(r.code, 1, name);
      assert.match(r.stderr, new RegExp(`: ${name.replace('.', '\\.')}: changed \\(SHA-256 differs from SHA256SUMS\\)`));
      assert.match(r.stderr, /FAILED \(1 problem\)/);
      bytes[at] ^= 0x04;
      writeFileSync(path, bytes);
    }
    assert.equal(runCli(['verify', copy]).code, 0, 'restored');
    rmSync(join(copy, 'merges.txt'));
    writeFileSync(join(copy, 'notes.txt'), 'added later');
    const r = runCli(['verify', copy, '--json']);
    assert.equal(r.code, 1);
    assert.deepEqual((JSON.parse(r.stdout) as { problems: string[] }).problems,
      ['merges.txt: missing', 'notes.txt: not listed in SHA256SUMS']);
    const none = runCli(['verify', gpt2]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /has neither SHA256SUMS \(an open release\) nor manifest\.json \(a closed bundle\)/);
  });

  it('records the release beside the model', () => {
    const recs = readReleaseRecords(gpt2);
    assert.equal(recs.length, 1);
    assert.deepEqual({ ...recs[0] }, {
      kind: 'open', out, date: NOW.toISOString(), model_sha256: contentHash(gpt2), name: 'gpt2-tiny', license: 'apache-2.0',
    });
  });
});

describe('ajar release open: a char model trained and evaluated by ajar', () => {
  const dir = join(tmp, 'char');
  const model = join(dir, 'model');
  const data = join(dir, 'text.txt');
  const out = join(dir, 'release');
  let results: ResultRecord[];

  before(() => {
    useReferenceBackend();
    mkdirSync(dir, { recursive: true });
    writeFileSync(data, 'the cat sat on the mat. the dog sat on the log. '.repeat(40));
    const t = runCli(['train', '--data', data, '--tokenizer', 'char', '--n-layer', '1', '--n-head', '2', '--n-embd', '16',
      '--block-size', '16', '--batch-size', '4', '--max-iters', '10', '--eval-interval', '5', '--eval-iters', '2',
      '--warmup-iters', '2', '--sample-tokens', '0', '--out', model]);
    assert.equal(t.code, 0, t.stderr);
    const e = runCli(['eval', '--model', model, '--data', data, '--record', '--json']);
    assert.equal(e.code, 0, e.stderr);
    assert.match(e.stderr, /recorded in .*ajar_results\.json/);
    results = readResults(model);
    const r = runCli(['release', 'open', '--model', model, '--out', out, '--license', 'mit', '--author', 'A. Person',
      '--dataset', 'karpathy/tiny_shakespeare', '--base-model', 'openai-community/gpt2']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /released .*: 10 files, licence mit, 2 evaluation result\(s\) in the card/);
  });

  it('ajar eval --record appends a record of the same shape as ajar train', () => {
    assert.deepEqual(results.map((r) => r.source), ['ajar train', 'ajar eval']);
    const ev = results[1];
    assert.equal(ev.task, 'lm');
    assert.equal(ev.dataset, data);
    assert.equal(ev.iters, null);
    assert.equal(ev.block_size, 16);
    assert.deepEqual(Object.keys(ev.metrics), ['loss', 'perplexity', 'accuracy', 'tokens']);
    assert.ok(Math.abs(ev.metrics.perplexity! - Math.exp(ev.metrics.loss!)) < 1e-9 * ev.metrics.perplexity!);
  });

  it('puts the recorded results in model-index, with the keys of the Hub spec', () => {
    const meta = frontMatter(out);
    assert.deepEqual(Object.keys(meta), ['license', 'library_name', 'tags', 'datasets', 'metrics', 'base_model', 'pipeline_tag', 'model-index']);
    assert.equal(meta.license, 'mit');
    assert.deepEqual(meta.tags, ['ajar', 'gpt2', 'text-generation', 'character-level']);
    assert.deepEqual(meta.datasets, ['karpathy/tiny_shakespeare']);
    assert.equal(meta.base_model, 'openai-community/gpt2');
    assert.deepEqual(meta.metrics, ['loss', 'perplexity', 'accuracy']);
    const index = meta['model-index'] as ModelIndex[];
    assert.equal(index.length, 1);
    assert.equal(index[0].name, 'release', 'named after the release, not the folder it came from');
    const [train, ev] = index[0].results;
    assert.deepEqual(train.task, { type: 'text-generation', name: 'Text Generation' });
    assert.deepEqual(train.dataset, { name: 'text.txt (held-out 0.1)', type: 'karpathy/tiny_shakespeare', split: 'validation' });
    assert.deepEqual(ev.dataset, { name: 'text.txt', type: 'karpathy/tiny_shakespeare' });
    const close = (a: number, b: number) => Math.abs(a - b) <= 1e-5 * Math.abs(b);
    assert.deepEqual(train.metrics.map((m) => m.type), ['loss', 'perplexity']);
    assert.ok(close(train.metrics[0].value, results[0].metrics.val_loss!));
    assert.ok(close(train.metrics[1].value, Math.exp(results[0].metrics.val_loss!)));
    assert.deepEqual(ev.metrics.map((m) => m.type), ['loss', 'perplexity', 'accuracy']);
    assert.ok(close(ev.metrics[0].value, results[1].metrics.loss!));
    assert.ok(close(ev.metrics[2].value, results[1].metrics.accuracy!));
  });

  it('loads the char tokenizer with AutoTokenizer, and gives training details', () => {
    const card = readFileSync(join(out, 'README.md'), 'utf8');
    assert.match(card, /AutoTokenizer\.from_pretrained/);
    assert.match(card, /no\s+special tokens/);
    assert.match(card, /max_new_tokens=11,/, 'prompt + new tokens within the 16-token context');
    assert.match(card, /\| steps \| 10 \|/);
    assert.match(card, /\| training data \| text\.txt \|/);
    assert.match(card, /\| text\.txt \| loss \(nats per token\) \| \d+\.\d{4} \| ajar eval \|/);
    assert.ok(!card.includes(dir), 'no local path in the card');
    const tc = JSON.parse(readFileSync(join(out, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(tc.tokenizer_class, 'PreTrainedTokenizerFast');
    assert.ok(readFileSync(join(out, 'LICENSE'), 'utf8').includes(`Copyright (c) ${new Date().getUTCFullYear()} A. Person`));
  });

  it('ajar release list shows the release; ajar verify passes', () => {
    const list = runCli(['release', 'list', '--model', model, '--json']);
    assert.equal(list.code, 0, list.stderr);
    const rows = JSON.parse(list.stdout) as Array<{ kind: string; license: string; out: string; present: boolean; same_model: boolean }>;
    assert.deepEqual(rows.map((r) => [r.kind, r.license, r.out, r.present, r.same_model]), [['open', 'mit', out, true, true]]);
    assert.equal(runCli(['verify', out]).code, 0);
    const empty = runCli(['release', 'list', '--model', gpt2 + '-none']);
    assert.equal(empty.code, 0);
    assert.match(empty.stdout, /has no releases yet/);
  });
});

describe('ajar release open: licences and the publisher\'s card', () => {
  const dir = join(tmp, 'licences');
  before(() => {
    useReferenceBackend();
    mkdirSync(dir, { recursive: true });
    cpSync(goldenPath('release/char-tiny'), join(dir, 'model'), { recursive: true });
  });

  it('openrail-m and other take the text from --license-file', () => {
    const rail = join(dir, 'RAIL.txt');
    writeFileSync(rail, 'Open RAIL-M License\n\n(the official text)\n');
    releaseOpen({ modelDir: join(dir, 'model'), out: join(dir, 'rail'), license: 'openrail-m', name: 'm', licenseFile: rail, noEval: true });
    assert.equal(frontMatter(join(dir, 'rail')).license, 'openrail');
    assert.equal(readFileSync(join(dir, 'rail', 'LICENSE'), 'utf8'), 'Open RAIL-M License\n\n(the official text)\n');
    const own = join(dir, 'OWN.txt');
    writeFileSync(own, 'Example Model Licence 1.0\nYou may ...');
    releaseOpen({ modelDir: join(dir, 'model'), out: join(dir, 'other'), license: 'other', name: 'm', licenseFile: own, noEval: true });
    const meta = frontMatter(join(dir, 'other'));
    assert.deepEqual([meta.license, meta.license_name, meta.license_link], ['other', 'example-model-licence-1.0', 'LICENSE']);
    releaseOpen({ modelDir: join(dir, 'model'), out: join(dir, 'cc'), license: 'cc-by-4.0', name: 'm', noEval: true });
    assert.equal(readFileSync(join(dir, 'cc', 'LICENSE'), 'utf8').trimEnd(), spdxText('CC-BY-4.0').trimEnd());
  });

  it('--card merges the publisher\'s front matter and body; the licence keys stay those of --license', () => {
    const card = join(dir, 'card.md');
    writeFileSync(card, '---\nlanguage:\n  - en\nlicense: apache-2.0\ntags: [poetry]\n---\n# Ignored title\n\nA model of verse.\n\n'
      + '## Intended use\n\nReading aloud.\n');
    releaseOpen({ modelDir: join(dir, 'model'), out: join(dir, 'carded'), license: 'mit', name: 'verse', author: 'Me', cardFile: card, noEval: true });
    const text = readFileSync(join(dir, 'carded', 'README.md'), 'utf8');
    const meta = frontMatter(join(dir, 'carded'));
    assert.deepEqual(meta.language, ['en']);
    assert.deepEqual(meta.tags, ['poetry']);
    assert.equal(meta.license, 'mit');
    assert.match(text, /\n# verse\n\nA model of verse\.\n/);
    assert.equal(text.match(/^## Intended use$/gm)!.length, 1, 'the publisher\'s section replaces ours');
    assert.match(text, /Reading aloud\./);
    assert.ok(!text.includes('Ignored title'));
    assert.ok(parseYaml(text.split('---\n')[1]) !== null);
  });
});

describe('ajar release open: refusals', () => {
  const dir = join(tmp, 'refusals');
  const model = join(dir, 'model');
  before(() => {
    useReferenceBackend();
    mkdirSync(dir, { recursive: true });
    cpSync(goldenPath('release/char-tiny'), model, { recursive: true });
  });

  const release = (...args: string[]) => runCli(['release', 'open', '--model', model, ...args]);

  function refused(r: { code: number; stderr: string }, pattern: RegExp, out: string): void {
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr.trimEnd().split('\n').length, 1, `one line: ${r.stderr}`);
    assert.match(r.stderr, pattern);
    assert.ok(!existsSync(out) || readdirSync(out).length === 0 || readdirSync(out).includes('mine.txt'), 'nothing written');
    assert.deepEqual(readdirSync(dir).filter((n) => n.includes('staging')), [], 'no staging folder left');
  }

  it('a licence id outside the SPDX list, naming where the ids are', () => {
    const out = join(dir, 'a');
    refused(release('--out', out, '--license', 'apache-3.0', '--no-eval'),
      /^ajar release: unknown licence 'apache-3\.0': give an SPDX licence id \(https:\/\/spdx\.org\/licenses\/, e\.g\. apache-2\.0, mit,.*for another licence pass --license other --license-file FILE/, out);
  });

  it('a model without evaluation results, unless --no-eval', () => {
    const out = join(dir, 'b');
    refused(release('--out', out, '--license', 'cc-by-4.0'),
      /has no evaluation results .*ajar eval --model .* --data FILE --record'.*or pass --no-eval/, out);
    assert.equal(release('--out', out, '--license', 'cc-by-4.0', '--no-eval').code, 0);
  });

  it('an output folder that exists and is not empty (left untouched)', () => {
    const out = join(dir, 'c');
    mkdirSync(out);
    writeFileSync(join(out, 'mine.txt'), 'keep');
    refused(release('--out', out, '--license', 'cc-by-4.0', '--no-eval'), /c is not empty .*choose another --out or empty it/, out);
    assert.deepEqual(readdirSync(out), ['mine.txt']);
    const emptyOut = join(dir, 'c-empty');
    mkdirSync(emptyOut);
    assert.equal(release('--out', emptyOut, '--license', 'cc-by-4.0', '--no-eval').code, 0, 'an empty folder is fine');
  });

  it('openrail-m or other without --license-file; MIT without a copyright holder', () => {
    refused(release('--out', join(dir, 'd'), '--license', 'openrail-m', '--no-eval'),
      /--license openrail-m needs --license-file FILE holding the official Open RAIL-M licence text: it is not in the SPDX licence list/, join(dir, 'd'));
    refused(release('--out', join(dir, 'e'), '--license', 'other', '--no-eval'), /--license other needs --license-file FILE/, join(dir, 'e'));
    refused(release('--out', join(dir, 'f'), '--license', 'mit', '--no-eval'), /MIT licence names its copyright holder: pass --author/, join(dir, 'f'));
  });

  it('a model folder that does not load leaves nothing behind', () => {
    const broken = join(dir, 'broken');
    cpSync(model, broken, { recursive: true });
    writeFileSync(join(broken, 'model.safetensors'), readFileSync(join(model, 'model.safetensors')).subarray(0, 100));
    const out = join(dir, 'g');
    const e = refusal(() => releaseOpen({ modelDir: broken, out, license: 'cc-by-4.0', name: 'x', noEval: true }));
    assert.equal(e.code, 'bad_weights');
    assert.ok(!existsSync(out));
    assert.deepEqual(readdirSync(dir).filter((n) => n.includes('staging')), []);
  });
});

after(() => rmSync(tmp, { recursive: true, force: true }));
