"""Two optimizer steps on the tiny random GPT-2 (test/golden/gpt2-tiny) with PyTorch's own AdamW and SGD,
written as the reference for ajar's optimizers.

Run from the repository root with Debian's python3-torch 1.13:

    /usr/bin/python3 test/golden/train/make_optim.py

Recipe (nanoGPT's configure_optimizers): parameters with dim >= 2 decay, biases and LayerNorm weights do not;
gradients clipped to global norm 1.0 before each step; AdamW lr 1e-3 then 5e-4, betas (0.9, 0.99), eps 1e-8,
weight decay 0.1; SGD lr 0.1 then 0.05, momentum 0.9, weight decay 0.01 (coupled, as torch.optim.SGD).
Writes optim_expected.json beside this script.
"""
import json
import os
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
TINY = os.path.join(HERE, "..", "gpt2-tiny")
sys.dont_write_bytecode = True
sys.path.insert(0, TINY)
import make_gpt2_tiny as tiny  # noqa: E402  the reference GPT-2 (modeling_gpt2.py's math) and its reader

BATCHES = [
    [[464, 2068, 7586, 21831, 18045, 625, 262, 16931, 3290], [7454, 2402, 257, 640, 612, 373, 257, 1310, 13]],
    [[40, 716, 257, 1332, 13, 632, 318, 3621, 0], [1639, 460, 470, 466, 340, 11, 475, 356, 481]],
]
LRS_ADAMW = [1e-3, 5e-4]
LRS_SGD = [0.1, 0.05]
WTE_IDS = [464, 257, 3290, 50256]  # in the batches, repeated, last target only, never seen (lm_head only)
TRACKED = ["transformer.ln_f.weight", "transformer.h.0.mlp.c_fc.bias", "transformer.h.1.attn.c_attn.weight",
           "transformer.h.2.mlp.c_proj.weight", "transformer.wpe.weight"]


def load_model():
    weights = tiny.read_safetensors(os.path.join(TINY, "model.safetensors"))
    return tiny.build_model(weights, torch.float32)


def loss_of(model, batch):
    x = torch.tensor(batch)  # (2, 9)
    logits = model(x)  # (2, 9, V)
    return F.cross_entropy(logits[:, :-1].reshape(-1, tiny.VOCAB_SIZE), x[:, 1:].reshape(-1))


def groups(model):
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return decay, no_decay


def run(kind):
    model = load_model().train()  # this reference model has no dropout
    decay, no_decay = groups(model)
    if kind == "adamw":
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                                lr=LRS_ADAMW[0], betas=(0.9, 0.99), eps=1e-8)
        lrs = LRS_ADAMW
    else:
        opt = torch.optim.SGD([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                              lr=LRS_SGD[0], momentum=0.9)
        lrs = LRS_SGD
    steps = []
    for batch, lr in zip(BATCHES, lrs):
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad(set_to_none=True)
        loss = loss_of(model, batch)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        steps.append({"loss": float(loss), "grad_norm": float(norm), "lr": lr})
    params = dict(model.named_parameters())
    out = {"steps": steps, "params": {}}
    for name in TRACKED:
        p = params[name].detach()
        out["params"][name] = {"shape": list(p.shape), "values": p.reshape(-1).tolist()}
    wte = params["transformer.wte.weight"].detach()
    out["params"]["transformer.wte.weight"] = {"ids": WTE_IDS, "rows": wte[WTE_IDS].tolist()}
    with torch.no_grad():
        out["loss_after"] = float(loss_of(model, BATCHES[0]))
    return out


def run_synthetic():
    """AdamW and SGD on fixed random parameters and gradients: isolates the update arithmetic."""
    g = torch.Generator().manual_seed(7)
    w0 = torch.randn(3, 257, generator=g)
    b0 = torch.randn(257, generator=g)
    grads = [(torch.randn(3, 257, generator=g) * 10 ** (-3 * torch.rand(3, 257, generator=g)),
              torch.randn(257, generator=g) * 1e-2) for _ in range(3)]
    out = {"w0": w0.reshape(-1).tolist(), "b0": b0.tolist(),
           "grads": [[gw.reshape(-1).tolist(), gb.tolist()] for gw, gb in grads], "lrs": [1e-3, 7e-4, 2e-4]}
    for kind in ("adamw", "sgd"):
        w = w0.clone().requires_grad_(True)
        b = b0.clone().requires_grad_(True)
        if kind == "adamw":
            opt = torch.optim.AdamW([{"params": [w], "weight_decay": 0.1}, {"params": [b], "weight_decay": 0.0}],
                                    lr=1e-3, betas=(0.9, 0.99), eps=1e-8)
        else:
            opt = torch.optim.SGD([{"params": [w], "weight_decay": 0.01}, {"params": [b], "weight_decay": 0.0}],
                                  lr=1e-3, momentum=0.9)
        for (gw, gb), lr in zip(grads, out["lrs"]):
            for group in opt.param_groups:
                group["lr"] = lr
            w.grad = gw.clone()
            b.grad = gb.clone()
            opt.step()
        out[kind] = {"w": w.detach().reshape(-1).tolist(), "b": b.detach().tolist()}
    return out


def main():
    torch.manual_seed(0)
    result = {
        "synthetic": run_synthetic(),
        "about": "PyTorch 1.13 AdamW / SGD, two steps each on test/golden/gpt2-tiny; written by make_optim.py",
        "batches": BATCHES,
        "adamw": run("adamw"),
        "sgd": run("sgd"),
    }
    with open(os.path.join(HERE, "optim_expected.json"), "w") as f:
        json.dump(result, f)
    print("adamw", result["adamw"]["steps"], result["adamw"]["loss_after"])
    print("sgd", result["sgd"]["steps"], result["sgd"]["loss_after"])


if __name__ == "__main__":
    main()
