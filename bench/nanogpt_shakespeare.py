"""nanoGPT's CPU Shakespeare recipe in plain PyTorch, as the peer for `ajar train --preset shakespeare-char`.

    /usr/bin/python3 bench/nanogpt_shakespeare.py [--seed 1337]

Follows nanoGPT's model.py (bias=False, nn.GELU, tied head, GPT-2 init with scaled c_proj) and train.py
(AdamW betas (0.9, 0.99), weight decay 0.1 on tensors of rank >= 2, warmup 100 then cosine to 1e-4 at 2000,
clip 1.0, get_batch windows, estimate_loss over 20 batches every 250 steps) with the README's CPU flags:
block 64, batch 12, 4 layers, 4 heads, width 128, 2000 iterations, dropout 0. Data: examples/data/tinyshakespeare.txt,
first 90% of characters for training, last 10% for validation. Prints one JSON line per evaluation.
"""
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

SEED = int(sys.argv[sys.argv.index("--seed") + 1]) if "--seed" in sys.argv else 1337
torch.manual_seed(SEED)
torch.set_num_threads(int(os.environ.get("AJAR_THREADS") or os.cpu_count() or 1))
HERE = os.path.dirname(os.path.abspath(__file__))
text = open(os.path.join(HERE, "..", "examples", "data", "tinyshakespeare.txt"), encoding="utf-8").read()
chars = sorted(set(text))
stoi = {c: i for i, c in enumerate(chars)}
data = torch.tensor([stoi[c] for c in text], dtype=torch.long)
n = int(0.9 * len(data))
train_data, val_data = data[:n], data[n:]
V, T, B, L, H, C = len(chars), 64, 12, 4, 4, 128


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1 = nn.LayerNorm(C, bias=False) if "bias" in nn.LayerNorm.__init__.__code__.co_varnames else nn.LayerNorm(C)
        self.c_attn = nn.Linear(C, 3 * C, bias=False)
        self.c_proj = nn.Linear(C, C, bias=False)
        self.ln_2 = nn.LayerNorm(C, bias=False) if "bias" in nn.LayerNorm.__init__.__code__.co_varnames else nn.LayerNorm(C)
        self.c_fc = nn.Linear(C, 4 * C, bias=False)
        self.mlp_c_proj = nn.Linear(4 * C, C, bias=False)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = (z.view(b, t, H, c // H).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(c // H)
        att = att.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf")).softmax(-1)
        x = x + self.c_proj((att @ v).transpose(1, 2).reshape(b, t, c))
        return x + self.mlp_c_proj(F.gelu(self.c_fc(self.ln_2(x))))


class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(V, C)
        self.wpe = nn.Embedding(T, C)
        self.h = nn.ModuleList([Block() for _ in range(L)])
        self.ln_f = nn.LayerNorm(C)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0.0, 0.02)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * L))
        # torch 1.13's LayerNorm has no bias=False: hold its biases at zero, untrained, as nanoGPT has none.
        for m in self.modules():
            if isinstance(m, nn.LayerNorm) and m.bias is not None:
                m.bias.requires_grad_(False)

    def forward(self, idx, targets):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for blk in self.h:
            x = blk(x)
        logits = F.linear(self.ln_f(x), self.wte.weight)
        return F.cross_entropy(logits.view(-1, V), targets.view(-1))


def get_batch(split):
    d = train_data if split == "train" else val_data
    ix = torch.randint(len(d) - T, (B,))
    return torch.stack([d[i:i + T] for i in ix]), torch.stack([d[i + 1:i + 1 + T] for i in ix])


def get_lr(it):
    if it < 100:
        return 1e-3 * (it + 1) / 101
    if it > 2000:
        return 1e-4
    ratio = (it - 100) / (2000 - 100)
    return 1e-4 + 0.5 * (1 + math.cos(math.pi * ratio)) * (1e-3 - 1e-4)


model = GPT()
params = [p for p in model.parameters() if p.requires_grad]
opt = torch.optim.AdamW([{"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
                         {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}], lr=1e-3, betas=(0.9, 0.99))
start = time.time()
for it in range(2001):
    if it % 250 == 0:
        model.eval()
        with torch.no_grad():
            losses = {s: sum(model(*get_batch(s)).item() for _ in range(20)) / 20 for s in ("train", "val")}
        model.train()
        print(json.dumps({"step": it, "train_loss": losses["train"], "val_loss": losses["val"], "seconds": time.time() - start}), flush=True)
    if it == 2000:
        break
    for g in opt.param_groups:
        g["lr"] = get_lr(it)
    x, y = get_batch("train")
    loss = model(x, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
