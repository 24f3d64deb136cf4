"""Greedy generation past the context window with nanoGPT's crop, in plain PyTorch: expected.json here.

    /usr/bin/python3 test/golden/generate/make_sliding_golden.py

nanoGPT's model.py generate() feeds the model `idx if idx.size(1) <= block_size else idx[:, -block_size:]` and takes
the last position's logits; with temperature 0 the next token is their argmax. Two models:
  - ../gpt2-tiny (GPT-2, context 128), prompt: the first 120 ids of its eval.txt (../gpt2-tiny/expected.json's
    eval_ids), 24 new tokens: the last 16 are past the context; and 4 tokens from <|endoftext|> alone (what an
    empty prompt starts from). Computed by ../train/reload_trained.py's gpt2_logits.
  - ../llama/mistral-tiny read with a context of 16 (the test rewrites max_position_embeddings to 16; RoPE with
    rope_scaling null does not depend on it), prompt ids [5, 9, 40, 7], 40 new tokens, no stop at EOS; Mistral's
    own sliding_window of 12 applies inside the crop. Computed by ../llama/make_llama_tiny.py's forward (transformers' modeling_llama.py in plain torch).
The smallest gap between the best and second-best logit of any step is recorded: a test that compares argmax
choices needs that gap to stay far above float32 rounding.
Debian's python3-torch 1.13 and python3-numpy are enough.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "train"))
sys.path.insert(0, os.path.join(HERE, "..", "release"))
sys.path.insert(0, os.path.join(HERE, "..", "llama"))

import torch  # noqa: E402

from reload_trained import gpt2_logits, read_safetensors  # noqa: E402
from reload_release import llama_spec  # noqa: E402
from make_llama_tiny import forward as mistral_forward  # noqa: E402


def greedy_crop(logits_of, prompt_ids, block, new_tokens):
    """nanoGPT's generate() at temperature 0: crop to the last `block` ids, argmax of the last position."""
    idx = list(prompt_ids)
    gap = float("inf")
    with torch.no_grad():
        for _ in range(new_tokens):
            cond = idx[-block:]
            logits = logits_of(torch.tensor([cond]))[0, -1]  # (V,)
            top2 = torch.topk(logits, 2).values
            gap = min(gap, float(top2[0] - top2[1]))
            idx.append(int(torch.argmax(logits)))
    return idx[len(prompt_ids):], gap


def main():
    torch.set_num_threads(1)
    gpt2_dir = os.path.join(HERE, "..", "gpt2-tiny")
    with open(os.path.join(gpt2_dir, "config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    with open(os.path.join(gpt2_dir, "expected.json"), encoding="utf-8") as f:
        prompt_ids = json.load(f)["eval_ids"][:120]
    w = {k: v.float() for k, v in read_safetensors(os.path.join(gpt2_dir, "model.safetensors")).items()}
    gpt2_ids, gpt2_gap = greedy_crop(lambda x: gpt2_logits(w, cfg, x), prompt_ids, cfg["n_positions"], 24)
    # An empty prompt read as the server reads it: the BOS token <|endoftext|> (50256) alone.
    bos_ids, bos_gap = greedy_crop(lambda x: gpt2_logits(w, cfg, x), [cfg["bos_token_id"]], cfg["n_positions"], 4)

    mistral_dir = os.path.join(HERE, "..", "llama", "mistral-tiny")
    with open(os.path.join(mistral_dir, "config.json"), encoding="utf-8") as f:
        lcfg = json.load(f)
    lw = read_safetensors(os.path.join(mistral_dir, "model.safetensors"))
    spec = llama_spec(lcfg)
    mistral_prompt = [5, 9, 40, 7]
    mistral_ids, mistral_gap = greedy_crop(lambda x: mistral_forward(spec, lw, x), mistral_prompt, 16, 40)

    expected = {
        "about": "greedy tokens past the context with nanoGPT's crop; written by make_sliding_golden.py",
        "torch_version": torch.__version__,
        "gpt2_tiny": {"prompt_ids": prompt_ids, "block_size": cfg["n_positions"], "max_new_tokens": 24,
                      "generated_ids": gpt2_ids, "min_top2_gap": gpt2_gap},
        "gpt2_tiny_from_bos": {"prompt_ids": [cfg["bos_token_id"]], "max_new_tokens": 4, "generated_ids": bos_ids,
                               "min_top2_gap": bos_gap},
        "mistral_tiny": {"prompt_ids": mistral_prompt, "block_size": 16, "max_new_tokens": 40,
                       "generated_ids": mistral_ids, "min_top2_gap": mistral_gap},
    }
    with open(os.path.join(HERE, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    print(json.dumps(expected, indent=1))


if __name__ == "__main__":
    main()
