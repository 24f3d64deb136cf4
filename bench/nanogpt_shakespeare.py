"""nanoGPT's CPU Shakespeare recipe in plain PyTorch, as the peer for `ajar train --preset shakespeare-char`.

    /usr/bin/python3 bench/nanogpt_shakespeare.py [--seed 1337] [--iters 2000] [--eval-interval 250]
                                                 [--eval-iters 20] [--dropout 0] [--log-steps]

Follows nanoGPT's model.py and train.py with the README's CPU flags (block 64, batch 12, 4 layers, 4 heads,
width 128, 2000 iterations, dropout 0 unless --dropout, bias=False), down to the order in which they draw from torch's
generator, so that a seed means what it means in nanoGPT:
- model.py: the modules are built in nanoGPT's order (nn.Embedding and nn.Linear draw their default
  initialisation as they are built), lm_head is tied to wte, `apply(_init_weights)` redraws every Linear and
  Embedding with N(0, 0.02) (wte first, then again as lm_head), then each c_proj.weight gets N(0, 0.02/sqrt(2L)).
- train.py: the first training batch is drawn before the loop; each iteration evaluates first when due
  (20 train then 20 validation batches from the same generator), runs the forward pass, draws the next batch,
  then backward, clip 1.0, AdamW (betas 0.9/0.99, weight decay 0.1 on tensors of rank >= 2), warmup 100 then
  cosine to 1e-4 at 2000 (get_lr with (it + 1) / (warmup + 1), as nanoGPT's master has it).
Data: examples/data/tinyshakespeare.txt, the first 90% of characters for training, the rest for validation.
The model (Config, GPT) is importable: test/golden/random/make_random.py builds it for its fixture.
Prints one JSON line per evaluation ({"step", "train_loss", "val_loss", "seconds"}) and, with --log-steps, one per
training step ({"iter", "loss", "lr"}: the loss of that step's batch, as train.py logs it). --iters stops early
without changing the schedule (the cosine still ends at 2000), as nanoGPT's --max_iters without --lr_decay_iters.
"""
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Config:
    """nanoGPT's GPTConfig for this recipe (bias=False): the README's CPU flags by default."""

    def __init__(self, vocab_size, block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0):
        self.vocab_size, self.block_size, self.n_layer = vocab_size, block_size, n_layer
        self.n_head, self.n_embd, self.dropout = n_head, n_embd, dropout


class LayerNorm(nn.Module):
    """nanoGPT's LayerNorm with bias=False (torch 1.13's nn.LayerNorm always has a bias)."""

    def __init__(self, ndim):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, None, 1e-5)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.n_head, self.n_embd = cfg.n_head, cfg.n_embd
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=False)
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=False)
        self.attn_dropout = nn.Dropout(cfg.dropout)
        self.resid_dropout = nn.Dropout(cfg.dropout)
        T = cfg.block_size
        self.register_buffer("bias", torch.tril(torch.ones(T, T)).view(1, 1, T, T))

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        q, k, v = (z.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = F.softmax(att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf")), dim=-1)
        att = self.attn_dropout(att)
        return self.resid_dropout(self.c_proj((att @ v).transpose(1, 2).contiguous().view(B, T, C)))


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=False)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=False)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.ln_1 = LayerNorm(cfg.n_embd)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = LayerNorm(cfg.n_embd)
        self.mlp = MLP(cfg)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(cfg.vocab_size, cfg.n_embd),
            wpe=nn.Embedding(cfg.block_size, cfg.n_embd),
            drop=nn.Dropout(cfg.dropout),
            h=nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)]),
            ln_f=LayerNorm(cfg.n_embd),
        ))
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight
        self.apply(self._init_weights)
        for pn, p in self.named_parameters():
            if pn.endswith("c_proj.weight"):
                torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx, targets):
        t = idx.size(1)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(torch.arange(0, t, dtype=torch.long)))
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)


def arg(name, default, kind=int):
    return kind(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


def main():
    seed = arg("--seed", 1337)
    max_iters = arg("--iters", 2000)
    log_steps = "--log-steps" in sys.argv
    eval_interval, eval_iters = arg("--eval-interval", 250), arg("--eval-iters", 20)
    batch_size = 12
    lr_max, min_lr, warmup_iters, lr_decay_iters = 1e-3, 1e-4, 100, 2000
    torch.set_num_threads(int(os.environ.get("AJAR_THREADS") or os.cpu_count() or 1))

    torch.manual_seed(seed)
    here = os.path.dirname(os.path.abspath(__file__))
    text = open(os.path.join(here, "..", "examples", "data", "tinyshakespeare.txt"), encoding="utf-8").read()
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    n = len(text)
    train_data = torch.tensor([stoi[c] for c in text[: int(n * 0.9)]], dtype=torch.long)
    val_data = torch.tensor([stoi[c] for c in text[int(n * 0.9):]], dtype=torch.long)
    cfg = Config(len(chars), dropout=arg("--dropout", 0.0, float))
    T = cfg.block_size

    def get_batch(split):
        data = train_data if split == "train" else val_data
        ix = torch.randint(len(data) - T, (batch_size,))
        return torch.stack([data[i:i + T] for i in ix]), torch.stack([data[i + 1:i + 1 + T] for i in ix])

    @torch.no_grad()
    def estimate_loss():
        out = {}
        model.eval()
        for split in ("train", "val"):
            losses = torch.zeros(eval_iters)
            for k in range(eval_iters):
                losses[k] = model(*get_batch(split)).item()
            out[split] = losses.mean().item()
        model.train()
        return out

    def get_lr(it):
        if it < warmup_iters:
            return lr_max * (it + 1) / (warmup_iters + 1)
        if it > lr_decay_iters:
            return min_lr
        ratio = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
        return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (lr_max - min_lr)

    model = GPT(cfg)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW([{"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
                                   {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}],
                                  lr=lr_max, betas=(0.9, 0.99))
    X, Y = get_batch("train")
    start = time.time()
    iter_num = 0
    while True:
        lr = get_lr(iter_num)
        for g in optimizer.param_groups:
            g["lr"] = lr
        if iter_num % eval_interval == 0 or iter_num == max_iters:
            losses = estimate_loss()
            print(json.dumps({"step": iter_num, "train_loss": losses["train"], "val_loss": losses["val"],
                              "seconds": time.time() - start}), flush=True)
        if iter_num == max_iters:
            break  # nanoGPT trains one more step before it stops; the step-max_iters evaluation is the result
        loss = model(X, Y)
        if log_steps:
            print(json.dumps({"iter": iter_num, "loss": loss.item(), "lr": lr}), flush=True)
        X, Y = get_batch("train")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        iter_num += 1


if __name__ == "__main__":
    main()
