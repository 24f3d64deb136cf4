"""PyTorch's CPU generator, sampled, as the reference for ajar's Rng (src/tensor/random.ts).

Run from the repository root with Debian's python3-torch 1.13:

    /usr/bin/python3 test/golden/random/make_random.py

Writes random_expected.json beside this script:
- "streams": after torch.manual_seed(seed), a sequence of calls in order (randint of several ranges, normal_
  of float32 tensors below and above 16 elements and not a multiple of 16, uniform_ on a float32 tensor,
  normal_ on a float64 tensor, which takes the double path, F.dropout of a tensor of ones in training mode);
  each call's values are recorded.
- "nanogpt": nanoGPT's model.py initialisation (GPT(config) right after torch.manual_seed(seed)) for a small
  config, with the model of bench/nanogpt_shakespeare.py (torch's own nn.Embedding / nn.Linear, so construction
  draws their default initialisation in nanoGPT's order, then apply(_init_weights), then the scaled c_proj
  draw); every parameter is recorded (in torch's [out, in] layout), followed by nanoGPT's first
  get_batch('train') offsets
  (torch.randint(len(data) - block_size, (batch_size,))) for a data length given in the file.
"""
import json
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


def values(t):
    return [float(v) for v in t.flatten().tolist()]


def stream(seed):
    torch.manual_seed(seed)
    calls = []

    def rec(kind, args, t):
        calls.append({"kind": kind, "args": args, "values": values(t)})

    rec("randint", [100, 7], torch.randint(100, (7,)))
    rec("randint", [2 ** 32, 3], torch.randint(2 ** 32, (3,)))
    rec("randint", [2 ** 40 + 7, 3], torch.randint(2 ** 40 + 7, (3,)))
    rec("normal", [5, 1.0, 0.0], torch.empty(5, dtype=torch.float32).normal_(0.0, 1.0))
    rec("normal", [3, 0.5, 2.0], torch.empty(3, dtype=torch.float32).normal_(2.0, 0.5))  # uses the cached half
    rec("normal", [16, 1.0, 0.0], torch.empty(16, dtype=torch.float32).normal_(0.0, 1.0))
    rec("normal", [100, 0.02, 0.0], torch.empty(100, dtype=torch.float32).normal_(0.0, 0.02))
    rec("normal", [1000, 1.0, 0.5], torch.empty(1000, dtype=torch.float32).normal_(0.5, 1.0))
    rec("uniform", [50, -0.25, 0.25], torch.empty(50, dtype=torch.float32).uniform_(-0.25, 0.25))
    rec("normal64", [7], torch.empty(7, dtype=torch.float64).normal_())
    rec("rand", [9], torch.rand(9))
    rec("dropout", [100, 0.1], F.dropout(torch.ones(100), 0.1, True))
    rec("dropout", [37, 0.5], F.dropout(torch.ones(37), 0.5, True))
    return {"seed": seed, "calls": calls}


# nanoGPT's model.py as the PyTorch peer of `ajar train --preset shakespeare-char` writes it, at a small size.
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "bench"))
from nanogpt_shakespeare import GPT, Config  # noqa: E402

V, T, L, H, C = 23, 16, 2, 2, 16
DATA_LEN, BATCH = 5000, 4


def nanogpt(seed):
    torch.manual_seed(seed)
    model = GPT(Config(V, block_size=T, n_layer=L, n_head=H, n_embd=C))
    params = {name: {"shape": list(p.shape), "values": values(p.detach())} for name, p in model.named_parameters()}
    offsets = torch.randint(DATA_LEN - T, (BATCH,))
    return {"seed": seed, "config": {"vocab_size": V, "block_size": T, "n_layer": L, "n_head": H, "n_embd": C},
            "data_len": DATA_LEN, "batch_size": BATCH, "params": params, "first_batch_offsets": values(offsets)}


out = {"torch": torch.__version__, "streams": [stream(s) for s in (0, 1337, 2 ** 32 + 5)], "nanogpt": nanogpt(1337)}
with open(os.path.join(HERE, "random_expected.json"), "w") as f:
    json.dump(out, f)
print("wrote", os.path.join(HERE, "random_expected.json"))
