"""Writes the SentencePiece-style (Llama 2 / TinyLlama / Mistral) tokenizer fixtures in llama-sp/:

  tokenizer.model         a tiny SentencePiece BPE model with byte_fallback, trained here on a mixed-script text
                          with Llama 2's trainer settings (identity normalization, dummy prefix, split digits,
                          whitespace runs kept)
  tokenizer.json          that model converted as transformers' convert_slow_tokenizer.LlamaConverter does
                          (legacy layout of the Hub's Llama 2: normalizer Prepend("▁") + Replace(" ", "▁"), no
                          pre-tokenizer, decoder Replace/ByteFallback/Fuse/Strip, TemplateProcessing adding <s>)
  tokenizer-metaspace.json  the same vocabulary in the non-legacy layout (no normalizer, Metaspace pre-tokenizer
                          with prepend_scheme "first", split false), as LlamaConverter writes when legacy=False
  tokenizer_config.json   LlamaTokenizerFast settings (add_bos_token true, add_eos_token false) and a chat template
  expected.json           sentencepiece's own encode ids (no bos/eos) and decode text for each test string

transformers cannot be imported here, so its converter is re-implemented below (SentencePieceExtractor.extract with
vocab_scores, LlamaConverter.vocab/normalizer/decoder, SpmConverter.tokenizer for model_type BPE), following
transformers 4.40's convert_slow_tokenizer.py.

Run: /usr/bin/python3 test/golden/tokenizer/make_llama_fixtures.py   (from the repository root; needs
python3-sentencepiece, Debian's package, 0.1.97 here)
"""
import io
import json
import os

import sentencepiece as spm

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "llama-sp")

# The training text: English, accents, Cyrillic, CJK, emoji, digits, whitespace runs. Each line is one sentence.
TRAINING_LINES = [
    "The quick brown fox jumps over the lazy dog.",
    "Hello world, hello there! How are you doing today?",
    "It's a small model; we've trained it on a tiny text, and it'll do.",
    "Café au lait, naïve résumé, Ångström, façade, jalapeño, über.",
    "Привет, мир! Как дела? Москва и Санкт-Петербург.",
    "日本語のテキストです。東京は大きい都市です。",
    "中文文本，包含标点符号。我们喜欢学习。",
    "Emoji time 😀 👍 🎉 and more 😀😀 fun.",
    "Numbers 1234567890 and 3.14159, 2024-01-01, 42 apples.",
    "Spaces    between   words  and\ttabs\tinside.",
    "    indented code line with four spaces",
    "def add(a, b):    return a + b  # sum",
    "the the the and and and of of to to in in is is",
    "transformers tokenizers tokenization token tokens",
    "Llama Mistral TinyLlama SentencePiece byte fallback",
]
TRAINING_TEXT = TRAINING_LINES * 20

# Test strings: some inside the training distribution, some with characters the model never saw (byte fallback).
CASES = [
    ("empty", ""),
    ("hello", "Hello world"),
    ("leading space", " Hello"),
    ("two leading spaces", "  Hello"),
    ("trailing spaces", "Hello  "),
    ("space runs", "a   b    c"),
    ("only spaces", "   "),
    ("tabs and newlines", "line one\nline two\n\n\tindented\r\nend"),
    ("contractions", "It's what we've done, they'll say."),
    ("accents", "Café naïve résumé Ångström"),
    ("combining marks", "cafe\u0301 nai\u0308ve"),
    ("cyrillic", "Привет, мир! Как дела?"),
    ("japanese", "日本語のテキストです。"),
    ("chinese", "中文文本，包含标点符号。"),
    ("emoji seen", "Emoji 😀 👍 🎉"),
    ("emoji unseen", "New emoji 🦙🚀 and 👨\u200d👩\u200d👧 family 🇺🇸"),
    ("greek unseen", "Ελληνικά γράμματα"),
    ("thai unseen", "ภาษาไทย"),
    ("hebrew arabic unseen", "עברית العربية"),
    ("digits", "1234567890 3.14159 2024-01-01"),
    ("code", "def add(a, b):\n    return a + b  # sum\n"),
    ("special token text", "<s> hello </s> <unk>"),
    ("byte token text", "<0x41> is not A"),
    ("nul and controls", "a\u0000b\u0007c\u001b"),
    ("rare cjk", "龘靐齉"),
    ("mixed", "Hello Привет 日本 😀 café 123 🦙 γειά"),
    ("long line", " ".join(TRAINING_LINES)),
]

SPIECE = "\u2581"


def train():
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(TRAINING_TEXT),
        model_writer=model,
        model_type="bpe",
        vocab_size=700,
        # Llama 2's trainer settings (its tokenizer.model's trainer_spec).
        byte_fallback=True,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        add_dummy_prefix=True,
        split_digits=True,
        allow_whitespace_only_pieces=True,
        split_by_unicode_script=True,
        split_by_whitespace=True,
        character_coverage=1.0,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        num_threads=1,
        minloglevel=2,
    )
    return model.getvalue()


def extract_merges(sp, vocab_scores):
    """transformers' SentencePieceExtractor.extract(vocab_scores): every split of every piece into two pieces of the
    vocabulary, ordered by the piece's score (highest first), and within one piece by the ids of its two parts."""
    vocab = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
    scores = dict(vocab_scores)
    merges = []
    for merge, piece_score in scores.items():
        local = []
        for index in range(1, len(merge)):
            piece_l, piece_r = merge[:index], merge[index:]
            if piece_l in vocab and piece_r in vocab:
                local.append((piece_l, piece_r, piece_score))
        local = sorted(local, key=lambda x: (vocab[x[0]], vocab[x[1]]))
        merges.extend(local)
    merges = sorted(merges, key=lambda val: val[2], reverse=True)
    return [(a, b) for a, b, _ in merges]


def added(i, content):
    return {"id": i, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": False, "special": True}


def convert(sp, legacy):
    """LlamaConverter(...).converted() for a BPE model with byte_fallback."""
    n = sp.get_piece_size()
    # LlamaConverter.vocab: <unk>, <s>, </s> with score 0, then every other piece with its score.
    vocab_scores = [(sp.id_to_piece(i), 0.0) for i in range(3)]
    vocab_scores += [(sp.id_to_piece(i), sp.get_score(i)) for i in range(3, n)]
    merges = extract_merges(sp, vocab_scores)
    bpe_vocab = {word: i for i, (word, _score) in enumerate(vocab_scores)}
    if legacy:
        normalizer = {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": SPIECE},
            {"type": "Replace", "pattern": {"String": " "}, "content": SPIECE},
        ]}
        pre_tokenizer = None
    else:
        normalizer = None
        pre_tokenizer = {"type": "Metaspace", "replacement": SPIECE, "prepend_scheme": "first", "split": False}
    bos = {"SpecialToken": {"id": "<s>", "type_id": 0}}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        # <unk>, <s>, </s>: the control and unknown pieces, added as special, not normalized (the Hub's Llama 2).
        "added_tokens": [added(i, sp.id_to_piece(i)) for i in range(3)],
        "normalizer": normalizer,
        "pre_tokenizer": pre_tokenizer,
        # LlamaTokenizerFast.update_post_processor with add_bos_token=True, add_eos_token=False.
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [bos, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [bos, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "<s>", "type_id": 1}},
                     {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}},
        },
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": SPIECE}, "content": " "},
            {"type": "ByteFallback"},
            {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0},
        ]},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": "<unk>",
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": True,
            "byte_fallback": True,
            "vocab": bpe_vocab,
            "merges": [f"{a} {b}" for a, b in merges],
        },
    }


# TinyLlama-1.1B-Chat-v1.0's chat template (Zephyr style), from its tokenizer_config.json.
CHAT_TEMPLATE = (
    "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n"
    "{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}"
)


def main():
    os.makedirs(OUT, exist_ok=True)
    model = train()
    with open(os.path.join(OUT, "tokenizer.model"), "wb") as f:
        f.write(model)
    sp = spm.SentencePieceProcessor(model_proto=model)
    assert sp.id_to_piece(0) == "<unk>" and sp.id_to_piece(1) == "<s>" and sp.id_to_piece(2) == "</s>"
    assert sp.is_byte(3) and sp.id_to_piece(3) == "<0x00>"

    for name, legacy in (("tokenizer.json", True), ("tokenizer-metaspace.json", False)):
        with open(os.path.join(OUT, name), "w", encoding="utf-8") as f:
            json.dump(convert(sp, legacy), f, ensure_ascii=False, indent=1)
            f.write("\n")

    config = {
        "tokenizer_class": "LlamaTokenizerFast",
        "add_bos_token": True,
        "add_eos_token": False,
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "legacy": True,
        "clean_up_tokenization_spaces": False,
        "chat_template": CHAT_TEMPLATE,
    }
    with open(os.path.join(OUT, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, ensure_ascii=False, indent=2)
        f.write("\n")

    cases = []
    for name, text in CASES:
        ids = sp.encode(text, out_type=int)
        pieces = sp.encode(text, out_type=str)
        cases.append({"name": name, "text": text, "ids": ids, "pieces": pieces, "decoded": sp.decode(ids)})
    byte_ids = sum(1 for c in cases for i in c["ids"] if sp.is_byte(i))
    assert byte_ids > 20, "the unseen characters should go through byte fallback"
    expected = {
        "reference": f"sentencepiece {spm.__version__} (python3-sentencepiece) encode(text, out_type=int) / decode(ids)",
        "vocab_size": sp.get_piece_size(),
        "unk_id": sp.unk_id(),
        "bos_id": sp.bos_id(),
        "eos_id": sp.eos_id(),
        "cases": cases,
    }
    with open(os.path.join(OUT, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {OUT}: vocab {sp.get_piece_size()}, {len(cases)} cases, {byte_ids} byte-fallback ids")


if __name__ == "__main__":
    main()
