"""Reload a model folder written by `ajar train` in PyTorch and reproduce its loss.

    /usr/bin/python3 test/golden/train/reload_trained.py MODEL_DIR IDS_JSON

MODEL_DIR is a Hugging Face GPT-2 folder (config.json + model.safetensors); IDS_JSON is a JSON file
{"ids": [...], "block_size": N} of token ids (from `ajar tokenize --json`). The script builds GPT2LMHeadModel
from config.json exactly as transformers' modeling_gpt2.py computes it (written out here in plain torch, since
transformers is not in Debian), loads the weights through a hand-written safetensors reader, and prints
{"loss", "tokens"} for ajar eval's windowing (consecutive windows of block_size, every token after the first of
each window predicted). Debian's python3-torch 1.13 is enough.
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

DTYPES = {"F32": "<f4", "F16": "<f2"}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    header.pop("__metadata__", None)
    base = 8 + n
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        arr = np.frombuffer(raw[base + b:base + e], dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
        out[name] = torch.from_numpy(arr.astype(np.float32))
    return out


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


ACTIVATIONS = {"gelu_new": gelu_new, "gelu_pytorch_tanh": gelu_new, "gelu": F.gelu}  # transformers' ACT2FN names


def gpt2_logits(w, cfg, ids):  # ids (1, T)
    act_name = cfg.get("activation_function", "gelu_new")
    assert act_name in ACTIVATIONS, act_name
    act = ACTIVATIONS[act_name]
    n_head = cfg["n_head"]
    eps = cfg.get("layer_norm_epsilon", 1e-5)
    p = "transformer." if "transformer.wte.weight" in w else ""
    T = ids.shape[1]
    x = w[p + "wte.weight"][ids] + w[p + "wpe.weight"][:T]  # (1, T, C)
    C = x.shape[-1]
    hs = C // n_head
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for i in range(cfg["n_layer"]):
        h = f"{p}h.{i}."
        a = F.layer_norm(x, (C,), w[h + "ln_1.weight"], w[h + "ln_1.bias"], eps)
        qkv = a @ w[h + "attn.c_attn.weight"] + w[h + "attn.c_attn.bias"]  # Conv1D: x W + b
        q, k, v = qkv.split(C, dim=2)
        q, k, v = (t.view(1, T, n_head, hs).transpose(1, 2) for t in (q, k, v))  # (1, nh, T, hs)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(hs)
        att = att.masked_fill(~mask, torch.finfo(att.dtype).min).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(1, T, C)
        x = x + (y @ w[h + "attn.c_proj.weight"] + w[h + "attn.c_proj.bias"])
        m = F.layer_norm(x, (C,), w[h + "ln_2.weight"], w[h + "ln_2.bias"], eps)
        m = act(m @ w[h + "mlp.c_fc.weight"] + w[h + "mlp.c_fc.bias"])
        x = x + (m @ w[h + "mlp.c_proj.weight"] + w[h + "mlp.c_proj.bias"])
    x = F.layer_norm(x, (C,), w[p + "ln_f.weight"], w[p + "ln_f.bias"], eps)
    head = w.get("lm_head.weight", w[p + "wte.weight"])
    return x @ head.T  # (1, T, V)


def windowed_loss(w, cfg, ids, block, logits_of=None):
    """Mean next-token loss over ajar eval's windows of `block` ids, in float32, summed in float64.

    logits_of(w, cfg, x) gives the (1, T, V) logits of ids x (1, T); GPT-2's by default."""
    logits_of = logits_of or gpt2_logits
    total = 0.0
    count = 0
    with torch.no_grad():
        for s in range(0, len(ids), block):
            win = ids[s:s + block]
            if len(win) < 2:
                continue
            x = torch.tensor([win])
            logits = logits_of(w, cfg, x)  # (1, T, V)
            total += float(F.cross_entropy(logits[0, :-1], x[0, 1:], reduction="sum").double())
            count += len(win) - 1
    return {"loss": total / count, "tokens": count}


def main():
    model_dir, ids_path = sys.argv[1], sys.argv[2]
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    w = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    with open(ids_path) as f:
        spec = json.load(f)
    ids = spec["ids"]
    print(json.dumps(windowed_loss(w, cfg, ids, spec.get("block_size") or cfg["n_positions"])))


if __name__ == "__main__":
    main()
