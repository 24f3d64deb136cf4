// Writes small byte-level BPE tokenizer.json fixtures in the layouts of Llama 3, Qwen2 and SmolLM2 (bytelevel/<name>/),
// and the ids and text @huggingface/tokenizers (tokenizers.js, the JS port of HF tokenizers) gives for test strings.
// The vocabulary is GPT-2's 256 byte tokens plus the results of its first MERGES merges (test/golden/gpt2-vocab),
// renumbered 0..n-1; the Split regexes are copied from the published tokenizer.json of meta-llama/Meta-Llama-3-8B
// and Qwen/Qwen2-7B. Run: node test/golden/tokenizer/make_bytelevel_fixtures.mjs   (from the repository root)
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const here = join(root, 'test/golden/tokenizer/bytelevel');
const MERGES = 3000;

const LLAMA3_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

// GPT-2's byte characters (bytes_to_unicode) and its first merges.
const gpt2Vocab = JSON.parse(readFileSync(join(root, 'test/golden/gpt2-vocab/vocab.json'), 'utf8'));
const gpt2Merges = readFileSync(join(root, 'test/golden/gpt2-vocab/merges.txt'), 'utf8').split('\n').slice(1, -1);
const byteChars = Object.entries(gpt2Vocab).filter(([, id]) => id < 256).sort((a, b) => a[1] - b[1]).map(([t]) => t);

/** vocab (token -> id) and merges for the first `count` merges, renumbered from `first`. */
function baseVocab(first) {
  const vocab = {};
  let next = first;
  for (const t of byteChars) vocab[t] = next++;
  const merges = gpt2Merges.slice(0, MERGES).map((m) => m.split(' '));
  for (const [a, b] of merges) if (!(a + b in vocab)) vocab[a + b] = next++;
  return { vocab, merges, next };
}

const special = (id, content) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
const byteLevel = (addPrefixSpace, trimOffsets, useRegex) => ({ type: 'ByteLevel', add_prefix_space: addPrefixSpace, trim_offsets: trimOffsets, use_regex: useRegex });
const bpeModel = (vocab, merges, extra) => ({
  type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false,
  byte_fallback: false, ...extra, vocab, merges,
});

const CHATML = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
const LLAMA3_CHAT = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

function llama3() {
  const { vocab, merges, next } = baseVocab(0);
  const names = ['<|begin_of_text|>', '<|end_of_text|>', '<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>'];
  const added = names.map((n, i) => special(next + i, n));
  const bos = { SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } };
  return {
    tokenizer: {
      version: '1.0', truncation: null, padding: null, added_tokens: added, normalizer: null,
      pre_tokenizer: { type: 'Sequence', pretokenizers: [
        { type: 'Split', pattern: { Regex: LLAMA3_REGEX }, behavior: 'Isolated', invert: false },
        byteLevel(false, true, false),
      ] },
      post_processor: { type: 'Sequence', processors: [
        byteLevel(true, false, true),
        { type: 'TemplateProcessing', single: [bos, { Sequence: { id: 'A', type_id: 0 } }],
          pair: [bos, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '<|begin_of_text|>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
          special_tokens: { '<|begin_of_text|>': { id: '<|begin_of_text|>', ids: [next], tokens: ['<|begin_of_text|>'] } } },
      ] },
      decoder: byteLevel(true, true, true),
      // Llama 3 sets ignore_merges: a pre-token that is itself in the vocabulary is one token.
      model: bpeModel(vocab, merges.map((m) => m.join(' ')), { ignore_merges: true }),
    },
    config: {
      tokenizer_class: 'PreTrainedTokenizerFast', bos_token: '<|begin_of_text|>', eos_token: '<|eot_id|>',
      clean_up_tokenization_spaces: false, model_input_names: ['input_ids', 'attention_mask'], chat_template: LLAMA3_CHAT,
    },
  };
}

function qwen2() {
  const { vocab, merges, next } = baseVocab(0);
  const added = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'].map((n, i) => special(next + i, n));
  return {
    tokenizer: {
      version: '1.0', truncation: null, padding: null, added_tokens: added, normalizer: { type: 'NFC' },
      pre_tokenizer: { type: 'Sequence', pretokenizers: [
        { type: 'Split', pattern: { Regex: QWEN2_REGEX }, behavior: 'Isolated', invert: false },
        byteLevel(false, false, false),
      ] },
      post_processor: byteLevel(false, false, false),
      decoder: byteLevel(false, false, false),
      // The newer merges layout: [left, right] pairs.
      model: bpeModel(vocab, merges, {}),
    },
    config: {
      tokenizer_class: 'Qwen2Tokenizer', bos_token: null, eos_token: '<|im_end|>', pad_token: '<|endoftext|>', unk_token: null,
      add_prefix_space: false, clean_up_tokenization_spaces: false, errors: 'replace', chat_template: CHATML,
    },
  };
}

function smollm2() {
  // SmolLM2 puts its special tokens first (ids 0..2), inside the model vocabulary too.
  const names = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];
  const { vocab: rest, merges } = baseVocab(names.length);
  const vocab = Object.fromEntries([...names.map((n, i) => [n, i]), ...Object.entries(rest)]);
  return {
    tokenizer: {
      version: '1.0', truncation: null, padding: null, added_tokens: names.map((n, i) => special(i, n)), normalizer: null,
      pre_tokenizer: byteLevel(false, true, true),
      post_processor: byteLevel(true, false, true),
      decoder: byteLevel(true, true, true),
      model: bpeModel(vocab, merges.map((m) => m.join(' ')), {}),
    },
    config: {
      tokenizer_class: 'GPT2Tokenizer', bos_token: '<|im_start|>', eos_token: '<|im_end|>', unk_token: '<|endoftext|>',
      pad_token: '<|im_end|>', add_prefix_space: false, clean_up_tokenization_spaces: false, chat_template: CHATML,
    },
  };
}

const TEXTS = [
  ['empty', ''],
  ['hello', 'Hello world'],
  ['contractions', "I'm sure you're right; WE'VE seen THEY'LL go, he'd know it'S fine, don't."],
  ['digits', '1234567 89 3.14159 2024-01-01 1,000,000 ٣٤٥'],
  ['whitespace', '  leading\tand\ttabs   runs  \n\n  trailing  \r\n\r\nend  '],
  ['newlines after punctuation', 'one.\ntwo!!\n\nthree?\r\n'],
  ['accents', 'Café naïve résumé Ångström façade'],
  ['combining marks (NFC composes them for Qwen2)', 'cafe\u0301 nai\u0308ve A\u030a'],
  ['cyrillic', 'Привет, мир! Как дела?'],
  ['cjk', '日本語のテキストです。中文文本，包含标点符号。한국어 텍스트'],
  ['emoji', 'Emoji: 😀👍🏽👨\u200d👩\u200d👧 🇺🇸 ❤️ 🦙'],
  ['scripts', 'Ελληνικά עברית العربية हिन्दी ภาษาไทย'],
  ['code', 'def f(x):\n    return x**2  # square\n\n\tif x:\n\t\tpass\n'],
  ['llama3 specials', '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>'],
  ['chatml specials', '<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n'],
  ['special text glued', 'a<|endoftext|>b <|im_end|> c<|im_start|>'],
  ['lone surrogate free odd spaces', 'NBSP\u00a0x ideographic\u3000space ZWJ\u200d BOM\ufeff NEL\u0085'],
  ['mixed', 'Hello Привет 日本 😀 café 123456 🦙 γειά\n\n  ok'],
];

function main() {
  const summary = [];
  for (const [name, make] of [['llama3', llama3], ['qwen2', qwen2], ['smollm2', smollm2]]) {
    const { tokenizer, config } = make();
    const dir = join(here, name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'tokenizer.json'), `${JSON.stringify(tokenizer)}\n`);
    writeFileSync(join(dir, 'tokenizer_config.json'), `${JSON.stringify(config, null, 2)}\n`);
    const hf = new Tokenizer(tokenizer, config);
    const cases = TEXTS.map(([caseName, text]) => {
      const ids = hf.encode(text, { add_special_tokens: false }).ids;
      const withSpecial = hf.encode(text, { add_special_tokens: true }).ids;
      return { name: caseName, text, ids, ids_with_special_tokens: withSpecial, decoded: ids.length > 0 ? hf.decode(ids) : '' };
    });
    const expected = { reference: '@huggingface/tokenizers 0.2.0 encode(text, {add_special_tokens}) / decode(ids)', cases };
    writeFileSync(join(dir, 'expected.json'), `${JSON.stringify(expected, null, 1)}\n`);
    summary.push(`${name}: ${Object.keys(tokenizer.model.vocab).length} vocab, ${tokenizer.model.merges.length} merges`);
  }
  console.log(`wrote ${here}: ${summary.join('; ')}`);
}

main();
