"""Check a character-level open release against Hugging Face's own tokenizer code (Rust tokenizers, transformers).

    PYTHONPATH=DIR_WITH_TOKENIZERS_AND_TRANSFORMERS /usr/bin/python3 test/golden/release/check_hf_tokenizer.py RELEASE TEXT

Encodes TEXT with the release's tokenizer.json through `tokenizers.Tokenizer` and, when transformers is importable,
through `AutoTokenizer.from_pretrained(RELEASE)`; both must give exactly the ids of looking every character up in
vocab.json and decode them back to TEXT. Prints one line per library; exit status 1 on any mismatch.
Run for the char release of issue 15 with tokenizers 0.23.2 and transformers 5.18.0 (pip --no-deps into a folder
on PYTHONPATH; Debian has no python3-tokenizers): both OK. test/release/hub-files.test.ts runs the same check with
@huggingface/tokenizers in every npm test.
"""
import json
import os
import sys


def main():
    release, text_path = sys.argv[1], sys.argv[2]
    with open(text_path, encoding="utf-8", newline="") as f:
        text = f.read()
    with open(os.path.join(release, "vocab.json"), encoding="utf-8") as f:
        vocab = json.load(f)
    want = [vocab[c] for c in text]
    ok = True

    from tokenizers import Tokenizer, __version__ as tv

    tok = Tokenizer.from_file(os.path.join(release, "tokenizer.json"))
    ids = tok.encode(text, add_special_tokens=False).ids
    good = ids == want and tok.decode(ids) == text
    ok = ok and good
    print(f"tokenizers {tv}: {'OK' if good else 'MISMATCH'} ({len(ids)} ids)")
    try:
        import transformers
        from transformers import AutoTokenizer
    except ImportError:
        print("transformers: not importable, skipped")
    else:
        auto = AutoTokenizer.from_pretrained(release)
        ids = auto(text)["input_ids"]
        good = ids == want and auto.decode(ids) == text
        ok = ok and good
        print(f"transformers {transformers.__version__} AutoTokenizer ({type(auto).__name__}): {'OK' if good else 'MISMATCH'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
