// Evidence for the library-or-own decision: runs @huggingface/tokenizers (tokenizers.js) over gpt2_expected.json
// and counts cases whose ids differ from OpenAI's reference encoder. Run: node test/golden/tokenizer/compare_hf_tokenizers.mjs
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const vocab = JSON.parse(readFileSync(join(root, 'test/golden/gpt2-vocab/vocab.json'), 'utf8'));
const merges = readFileSync(join(root, 'test/golden/gpt2-vocab/merges.txt'), 'utf8').split('\n').slice(1, -1);
const fixture = JSON.parse(readFileSync(join(root, 'test/golden/tokenizer/gpt2_expected.json'), 'utf8'));
const cases = [fixture.long, ...fixture.edge_cases, ...fixture.random_cases];

function gpt2(addedTokens) {
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return new Tokenizer({
    version: '1.0', truncation: null, padding: null, added_tokens: addedTokens, normalizer: null,
    pre_tokenizer: byteLevel, post_processor: null, decoder: byteLevel,
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, vocab, merges },
  }, { tokenizer_class: 'GPT2Tokenizer', clean_up_tokenization_spaces: false });
}

const eot = { id: 50256, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: true, special: true };
for (const [label, tok] of [['no added tokens', gpt2([])], ['<|endoftext|> as added special token (the Hub gpt2 layout)', gpt2([eot])]]) {
  const bad = cases.filter((c) => JSON.stringify(tok.encode(c.text, { add_special_tokens: false }).ids) !== JSON.stringify(c.ids));
  console.log(`${label}: ${cases.length - bad.length}/${cases.length} cases identical; differing: ${bad.map((c) => c.name).join(' | ')}`);
  const badDecode = fixture.decode_cases.filter((d) => tok.decode(d.ids) !== d.text);
  console.log(`  decode: ${fixture.decode_cases.length - badDecode.length}/${fixture.decode_cases.length} identical`);
}
