#!/usr/bin/env python3
"""Greedy continuations of one prompt under gpt2-tiny alone and under two LoRA adapters, in plain PyTorch, for
test/serve/adapters.test.ts (the server's completion through each adapter must pick these tokens).

    /usr/bin/python3 test/golden/lora/make_serve_greedy.py > test/golden/lora/serve-greedy.expected.json

Nothing here comes from ajar: the prompt is tokenised by OpenAI's reference encoder (../release/reload_release.py),
each adapter is folded into the weights as PEFT's merge_and_unload does (reload_lora.apply_adapter), and GPT-2 is
transformers' math in plain torch (../train/reload_trained.gpt2_logits). The adapters: gpt2-tiny-lora as written
by make_lora_golden.py ("pos", lora_alpha 8), and the same folder with lora_alpha -8 ("neg"; the test writes that
copy the same way). Generation stops at max_new_tokens or after the end-of-text token, as ajar's does.
"""
import json
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "release"))
sys.path.insert(0, os.path.join(HERE, "..", "train"))
sys.dont_write_bytecode = True

import torch  # noqa: E402

import reload_release  # noqa: E402
from reload_lora import apply_adapter  # noqa: E402
from reload_trained import gpt2_logits, read_safetensors  # noqa: E402

PROMPT = "The meaning of life is"
MAX_NEW = 8
BASE = os.path.join(HERE, "..", "gpt2-tiny")
ADAPTER = os.path.join(HERE, "gpt2-tiny-lora")


def greedy(w, cfg, ids):
    out = []
    with torch.no_grad():
        for _ in range(MAX_NEW):
            logits = gpt2_logits(w, cfg, torch.tensor([ids + out]))  # (1, T, V)
            nxt = int(torch.argmax(logits[0, -1]))
            out.append(nxt)
            if nxt == cfg["eos_token_id"]:
                break
    return out


def main():
    torch.set_num_threads(1)
    with open(os.path.join(BASE, "config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    base_w = read_safetensors(os.path.join(BASE, "model.safetensors"))
    ids = reload_release.tokenize(BASE, PROMPT)
    tmp = tempfile.mkdtemp()
    try:
        neg = os.path.join(tmp, "neg")
        shutil.copytree(ADAPTER, neg)
        path = os.path.join(neg, "adapter_config.json")
        with open(path, encoding="utf-8") as f:
            acfg = json.load(f)
        acfg["lora_alpha"] = -acfg["lora_alpha"]
        with open(path, "w", encoding="utf-8") as f:
            json.dump(acfg, f, indent=2)
        result = {
            "about": "Written by make_serve_greedy.py: greedy ids of gpt2-tiny (float32 PyTorch) alone and with adapters.",
            "prompt": PROMPT,
            "prompt_ids": ids,
            "max_new_tokens": MAX_NEW,
            "base": greedy(base_w, cfg, ids),
            "pos": greedy(apply_adapter(base_w, ADAPTER), cfg, ids),
            "neg": greedy(apply_adapter(base_w, neg), cfg, ids),
        }
    finally:
        shutil.rmtree(tmp)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
