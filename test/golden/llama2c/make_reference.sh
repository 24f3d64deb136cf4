#!/bin/sh
# Writes expected.json for ajar's llama2.c conversion tests: compiles run.c (an independent C implementation of
# llama2.c's inference) with gcc -O2 and records, for stories260K, the greedy continuation of "Once upon a time"
# (64 new tokens at temperature 0) and run.c's BPE encoding of several strings.
# usage: sh test/golden/llama2c/make_reference.sh [MODEL_DIR]   (default: the committed copy in stories260K/)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
models=${1:-$here/stories260K}
bin=$(mktemp -d)/run
trap 'rm -rf "$(dirname "$bin")"' EXIT
gcc -O2 -Wall -o "$bin" "$here/run.c" -lm
model="$models/stories260K.bin"
tok="$models/tok512.bin"
prompt="Once upon a time"
steps=64
"$bin" "$model" "$tok" generate "$prompt" "$steps" > "$(dirname "$bin")/generate.txt"
# NOTE: the strings cover merges across words, punctuation, digits, repeated spaces, a newline, an empty
# string, and characters outside the vocabulary (byte fallback: é, ü, an emoji, CJK).
set -- "Once upon a time" "Hello world" "" "Lily's mom said, \"Let's go to the park!\"" \
  "  two  spaces  " "The end.
A new line" "12345 + 678 = 13023" "naïve café über 😀 東京" "tree trees treehouse" \
  "One day, she saw a big, red ball. She wanted to play with it, but it was too high."
"$bin" "$model" "$tok" encode "$@" > "$(dirname "$bin")/encode.txt"
python3 - "$(dirname "$bin")" "$prompt" "$steps" "$@" > "$here/expected.json" <<'PY'
import json, sys
work, prompt, steps, texts = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
with open(f'{work}/generate.txt', 'rb') as f:
    lines = f.read().split(b'\n', 2)
prompt_ids = [int(x) for x in lines[0].split()]
generated_ids = [int(x) for x in lines[1].split()]
text = lines[2].decode('utf-8')
with open(f'{work}/encode.txt') as f:
    rows = f.read().split('\n')[:len(texts)]
encodings = [{'text': t, 'ids': [int(x) for x in r.split()]} for t, r in zip(texts, rows)]
out = {
    'source': 'test/golden/llama2c/run.c via make_reference.sh (llama2.c inference, temperature 0)',
    'model': 'stories260K.bin + tok512.bin (sha256 b0a507e7..., 037cb335...)',
    'prompt': prompt,
    'prompt_ids': prompt_ids,
    'max_new_tokens': steps,
    'generated_ids': generated_ids,
    'text': text,
    'encodings': encodings,
}
json.dump(out, sys.stdout, ensure_ascii=False, indent=1)
sys.stdout.write('\n')
PY
echo "wrote $here/expected.json"
