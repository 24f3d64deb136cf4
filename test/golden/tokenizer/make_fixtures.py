"""Writes gpt2_expected.json: GPT-2 token ids computed by OpenAI's reference encoder (../gpt2-vocab/gpt2_encoder_ref.py).

Every expected id in test/io/tokenizer*.test.ts comes from here. Cases: a long mixed-script text, hand-picked edge
cases, seeded random strings, and decode cases (ids -> text, with U+FFFD for bytes that are not valid UTF-8).
Lone surrogates cannot be UTF-8 encoded; our tokenizer encodes each as U+FFFD (as TextEncoder does), so a case's
"text" may hold one and its ids are the reference's ids for the text with every lone surrogate replaced by U+FFFD.

Run: /usr/bin/python3 test/golden/tokenizer/make_fixtures.py   (from the repository root; needs python3-regex)
"""
import json
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "gpt2-vocab"))
import gpt2_encoder_ref  # noqa: E402

OUT = os.path.join(HERE, "gpt2_expected.json")


def well_formed(s):
    """JavaScript's String.prototype.toWellFormed: each lone UTF-16 surrogate -> U+FFFD, pairs combined."""
    return s.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


EDGE_CASES = [
    ("empty", ""),
    ("hello", "Hello world"),
    ("leading space", " Hello"),
    ("trailing space", "Hello "),
    ("two leading spaces", "  leading"),
    ("two trailing spaces", "trailing  "),
    ("space run inside", "a   b    c"),
    ("only spaces", "     "),
    ("single space", " "),
    ("tabs", "a\tb\t\tc\t"),
    ("newlines", "line1\nline2\n\nline3\n"),
    ("crlf", "windows\r\nline\r\n\r\nend"),
    ("only newlines", "\n\n\n"),
    ("mixed whitespace", " \t \n \r\n\t "),
    ("indented code", "def f(x):\n    return x**2  # square\n\n\tif x:\n\t\tpass\n"),
    ("contractions", "I'm sure you're right; we've seen they'll go, he'd know it's fine, don't."),
    ("uppercase contractions", "I'M SURE YOU'RE RIGHT, WE'VE SEEN THEY'LL GO, HE'D KNOW IT'S FINE, DON'T."),
    ("mixed case contractions", "It'S he'D We'Ve"),
    ("curly apostrophes", "it\u2019s don\u2019t we\u2019ve \u2018quoted\u2019"),
    ("apostrophe runs", "'s's's ''s 'tis 'twas '' ' s 'S"),
    ("digits", "1234567890 3.14159 1,000,000 2024-01-01 007 42nd"),
    ("punctuation runs", "!!!??? ... --- ;;; *** ()[]{} <<>> @#$%^&"),
    ("special token text", "<|endoftext|>"),
    ("special token inside text", "before<|endoftext|>after <|endoftext|> end"),
    ("japanese", "日本語のテキストです。カタカナとひらがな。"),
    ("chinese", "中文文本，包含标点符号。这是一个测试！"),
    ("korean", "한국어 텍스트입니다"),
    ("emoji", "Emoji: 😀👍🏽👨\u200d👩\u200d👧\u200d👦 🇺🇸 ❤️"),
    ("accents precomposed", "café naïve résumé Ångström"),
    ("combining marks", "cafe\u0301 nai\u0308ve x\u0300\u0301\u0302\u0303 a\u20dd"),
    ("scripts", "Ελληνικά Русский עברית العربية हिन्दी ภาษาไทย"),
    ("zero width and odd spaces", "ZWJ\u200d ZWNJ\u200c BOM\ufeff NBSP\u00a0x ideographic\u3000space"),
    ("NEL is whitespace to the reference", "a\u0085b \u0085\u0085 c"),
    ("BOM is not whitespace to the reference", "\ufeffstart \ufeff\ufeff x\ufeff"),
    ("NEL before a contraction", "a\u0085'll \u0085'd x"),
    ("BOM before a contraction", "\ufeff's \ufeff'll x\ufeff're"),
    ("unicode 15.1 letter before a contraction", "\U0002EBF0'd \U0002EBF0's"),
    ("line and paragraph separators", "hello\u2028world\u2029end"),
    ("lone high surrogate", "a\ud800b"),
    ("lone low surrogate at end", "x\udc00"),
    ("reversed surrogates", "\udc00\ud800"),
    ("control characters", "\u0000\u0001\u0007\u001b[0m\u007f"),
    ("math alphanumerics astral", "𝕳𝖊𝖑𝖑𝖔 𝟘𝟙𝟚 𝐀𝐁𝐂"),
    ("other numbers", "Ⅻ ⅓ ² ٣٤٥ ௰"),
    ("unicode 15.1 letter unknown to the reference", "x\U0002EBF0y \U0002EBF0\U0002EBF1"),
    ("unicode 16 digit unknown to the reference", "7\U000116D08"),
    ("private use and max code point", "\ue000\U000F0000\U0010FFFF"),
    ("latin-1", "¡¢£¤¥ ÀÁÂÃÄÅ ÿ"),
    ("byte-level alphabet chars", "Ġhello Ċ ĉ"),
    ("url", "https://example.com/path?q=1&r=2#frag"),
    ("odd runs (overlapping merges)", "aaa aaaaa ooo eee !!!!! ---- ==== .... \n\n\n\n\n         x"),
    ("repeated syllables", "lalalala nanana hahahahaha tatatat abcabcabc"),
    ("long single word", "a" * 1000),
    ("long alternating word", "ab" * 500),
    ("long cjk without spaces", "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(3000))),
    ("long digit run", "9" * 300),
    ("long punctuation run", "-=" * 300),
    ("long space run", "x" + " " * 500 + "y"),
    ("repeated emoji", "🙂" * 60),
    ("json", '{"key": [1, 2.5, "va\\"l"], "n": null}'),
]

PARAGRAPHS = [
    "The lighthouse keeper's log for the winter of 1887 begins: \"Wind from the north-east, 42 knots; no ships.\"\n",
    "  She said, \"It's 3:45 p.m. -- we'll leave at 4.\"  He'd already gone.\t(Really?)\r\n",
    "Le café était bondé; naïve, elle commanda un crème brûlée à 7,50 €.\n",
    "Die Straße führt über den Fluß nach Köln. Größe: 1.234,56 m².\n",
    "東京は日本の首都です。人口は約1400万人。  今日は晴れ☀️！\n",
    "北京欢迎你！我们在2024年见面，好吗？\n",
    "안녕하세요, 세계! 오늘은 좋은 날이에요.\n",
    "Привет, мир! Это тест — с тире и «кавычками».\n",
    "مرحبا بالعالم! هذا اختبار.\n",
    "नमस्ते दुनिया! यह एक परीक्षण है।\n",
    "Emoji time: 😀😃😄 👍🏽👎🏿 👨\u200d💻 🏳️\u200d🌈 🇯🇵🇫🇷 — done.\n",
    "def tokenize(text):\n    for i, ch in enumerate(text):\n        yield i, ch  # TODO: bytes?\n\n",
    "    \n\t\n   \n",
    "Combining: e\u0301 a\u0308 n\u0303 o\u0302\u0323; precomposed: é ä ñ ộ.\n",
    "I'M HERE, YOU'RE THERE, THEY'VE GONE. it\u2019s curly.  <|endoftext|>  <|endoftext|>\n",
    "Numbers: 0 00 000 1e10 -3.5 +7 ½ ¾ ² ³ Ⅳ 四十二\n",
    "Weird spaces:\u00a0nbsp\u2009thin\u3000ideographic\u0085nel\ufeffbom\u200bzwsp.\n",
    "Math: ∀x∈ℝ, x²≥0 ⇒ √(x²)=|x|; 𝔽𝕆ℝ 𝓐𝓑𝓒.\n",
]


def long_text():
    rng = random.Random(1887)
    parts = []
    for _ in range(600):
        parts.append(rng.choice(PARAGRAPHS))
        if rng.random() < 0.3:
            parts.append(" " * rng.randint(1, 5))
        if rng.random() < 0.2:
            parts.append("\n" * rng.randint(1, 3))
    return "".join(parts)


# Characters random strings are drawn from: every class the pre-tokenizer regex distinguishes, and then some.
POOL = (
    list("aAbBsStTdDmMlLrReEvV") + list("0123456789") + list(" '''\t\n\r ") + list(".,;:!?-_()[]{}<>|\"/\\@#$%^&*+=~`")
    + list("éüñçåø") + ["e\u0301", "\u0308", "\u200d", "\ufeff", "\u0085", "\u00a0", "\u3000", "\u2028", "\u200b"]
    + list("日本語中文한국어ТестΩ") + list("①²½٣Ⅻ") + ["😀", "👍🏽", "🇺🇸", "𝕳", "𝟘", "\U0002EBF0", "\U0010FFFF", "\ud800", "\udc00"]
    + ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "<|endoftext|>", "\u2019s"]
)


def random_strings(n):
    rng = random.Random(20240531)
    out = []
    for i in range(n):
        length = rng.choice([1, 2, 3, 5, 8, 13, 21, 40, 80])
        out.append(("random %d" % i, "".join(rng.choice(POOL) for _ in range(length))))
    return out


def random_words(n):
    """Letter-only words from a small alphabet: many overlapping merge candidates per word."""
    rng = random.Random(7)
    out = []
    for i in range(n):
        word = "".join(rng.choice("aeionrstlh") for _ in range(rng.randint(2, 60)))
        out.append(("random word %d" % i, (" " if i % 2 else "") + word))
    return out


def main():
    enc = gpt2_encoder_ref.load()

    def case(name, text):
        ids = enc.encode(well_formed(text))
        return {"name": name, "text": text, "ids": ids}

    cases = [case(n, t) for n, t in EDGE_CASES]
    randoms = [case(n, t) for n, t in random_strings(300) + random_words(100)]
    long_case = case("long mixed-script text", long_text())

    decode_cases = []
    for text in ["😀", "日本", "é", "👨\u200d👩\u200d👧", "naïve café"]:
        ids = enc.encode(text)
        for cut in range(1, len(ids)):
            for part in (ids[:cut], ids[cut:]):
                decode_cases.append({"ids": part, "text": enc.decode(part)})
    decode_cases.append({"ids": [50256], "text": enc.decode([50256])})
    decode_cases.append({"ids": long_case["ids"][7:301], "text": enc.decode(long_case["ids"][7:301])})
    # Byte tokens alone: 0x80 (a lone continuation byte) and 0xE6 (a lead byte with nothing after).
    for b in (0x80, 0xE6, 0xFF):
        tid = enc.encoder[enc.byte_encoder[b]]
        decode_cases.append({"ids": [tid, tid], "text": enc.decode([tid, tid])})

    # Character-level vocabulary as nanoGPT's data/shakespeare_char/prepare.py builds it: sorted(set(text)).
    # The training text mixes BMP characters above the surrogate range (U+E000.., U+FF01) with astral ones
    # (emoji, math letters), where sorting by code point and by UTF-16 unit disagree.
    char_train = "First Citizen:\nBefore we proceed any further, hear me speak.\n\u00e9\u00e8 \uff01\ufb01 \ue000 \U0001F600\U0001D573 \u4e2d\u6587 \u0301\n"
    chars = sorted(set(char_train))
    stoi = {ch: i for i, ch in enumerate(chars)}
    char_probe = "hear me, \U0001F600\u4e2d\uff01\n"
    char_case = {
        "train_text": char_train,
        "chars": chars,
        "probe_text": char_probe,
        "probe_ids": [stoi[c] for c in char_probe],
    }

    doc = {
        "source": "OpenAI gpt-2 src/encoder.py (test/golden/gpt2-vocab/gpt2_encoder_ref.py) over GPT-2's vocab.json/merges.txt",
        "written_by": "test/golden/tokenizer/make_fixtures.py",
        "eos_token_id": enc.encoder["<|endoftext|>"],
        "vocab_size": len(enc.encoder),
        "long": long_case,
        "edge_cases": cases,
        "random_cases": randoms,
        "decode_cases": decode_cases,
        "char_case": char_case,
    }
    # One case per line, so a diff of the fixture shows which case changed.
    lines = ["{"]
    items = list(doc.items())
    for k, (key, value) in enumerate(items):
        comma = "," if k < len(items) - 1 else ""
        if isinstance(value, list):
            lines.append(" %s: [" % json.dumps(key))
            for j, item in enumerate(value):
                lines.append("  " + json.dumps(item, ensure_ascii=True) + ("," if j < len(value) - 1 else ""))
            lines.append(" ]" + comma)
        else:
            lines.append(" %s: %s%s" % (json.dumps(key), json.dumps(value, ensure_ascii=True), comma))
    lines.append("}")
    with open(OUT, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote %s: %d edge, %d random, long text of %d chars / %d tokens, %d decode cases" % (
        os.path.relpath(OUT), len(cases), len(randoms), len(long_case["text"]), len(long_case["ids"]), len(decode_cases)))


if __name__ == "__main__":
    main()
