#!/usr/bin/env python3
"""Reload a PEFT LoRA adapter (as `ajar train --lora` writes it) over its base in plain PyTorch and reproduce
`ajar eval --model BASE --adapter ADAPTER`'s loss.

    /usr/bin/python3 test/golden/lora/reload_lora.py BASE_DIR ADAPTER_DIR TEXT_FILE [BLOCK_SIZE]

Prints {"loss", "tokens"}. Nothing here comes from ajar: adapter_config.json and adapter_model.safetensors are
read by hand (PEFT's format: base_model.model.<path>.lora_A.weight (r, in), .lora_B.weight (out, r)), each
adapted weight becomes W + scaling * B @ A (scaling lora_alpha / r, or / sqrt(r) with use_rslora; transposed for
GPT-2's Conv1D, fan_in_fan_out), modules_to_save tensors replace the base's, and the text is tokenised and the
loss computed by ../release/reload_release.py (OpenAI's reference BPE encoder, transformers' math in plain torch).
"""
import json
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "release"))
sys.path.insert(0, os.path.join(HERE, "..", "train"))
sys.dont_write_bytecode = True

import torch  # noqa: E402

import reload_release  # noqa: E402
from reload_trained import read_safetensors  # noqa: E402

PREFIX = "base_model.model."


def apply_adapter(w, adapter_dir):
    """The base's tensors w (name -> float32 tensor) with the adapter folded in, as PEFT's merge_and_unload does."""
    with open(os.path.join(adapter_dir, "adapter_config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    assert cfg["peft_type"] == "LORA" and cfg.get("bias", "none") == "none"
    r, alpha = cfg["r"], cfg["lora_alpha"]
    scaling = alpha / math.sqrt(r) if cfg.get("use_rslora") else alpha / r
    sd = read_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors"))
    out = dict(w)
    done = set()
    for key in sd:
        assert key.startswith(PREFIX), key
        if key.endswith(".lora_A.weight"):
            path = key[len(PREFIX):-len(".lora_A.weight")]
            A = sd[key].float()  # (r, in)
            B = sd[PREFIX + path + ".lora_B.weight"].float()  # (out, r)
            delta = scaling * (B @ A)  # (out, in)
            name = path + ".weight"
            out[name] = out[name].float() + (delta.T if cfg.get("fan_in_fan_out") else delta)
            done.update([key, PREFIX + path + ".lora_B.weight"])
    for key in sd:
        if key not in done:  # modules_to_save
            name = key[len(PREFIX):]
            out[name] = sd[key].float()
    return out


def main():
    base_dir, adapter_dir, text_path = sys.argv[1], sys.argv[2], sys.argv[3]
    block = int(sys.argv[4]) if len(sys.argv) > 4 else None
    torch.set_num_threads(1)
    with open(text_path, encoding="utf-8", newline="") as f:
        text = f.read()
    ids = reload_release.tokenize(base_dir, text)
    with open(os.path.join(base_dir, "config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    w = apply_adapter(read_safetensors(os.path.join(base_dir, "model.safetensors")), adapter_dir)
    if cfg["architectures"][0] in reload_release.LLAMA_FAMILY:
        result = reload_release.llama_loss(w, cfg, ids, block or cfg["max_position_embeddings"])
    else:
        result = reload_release.windowed_loss(w, cfg, ids, block or cfg["n_positions"])
    print(json.dumps(result))


if __name__ == "__main__":
    main()
