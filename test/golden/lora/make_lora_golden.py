#!/usr/bin/env python3
"""Writes LoRA adapters in PEFT's format for the tiny GPT-2 and Llama fixtures, and what ajar must compute with them.

Run from the repository root with Debian's python3 (python3-torch 1.13, python3-numpy):

    /usr/bin/python3 test/golden/lora/make_lora_golden.py

PEFT is not installed here, so its format is followed by hand (peft/tuners/lora/config.py, layer.py and
peft/utils/save_and_load.py): adapter_config.json holds LoraConfig's fields; adapter_model.safetensors holds
`base_model.model.<module path>.lora_A.weight` (r, in) and `.lora_B.weight` (out, r), float32, no adapter name
in the key. A and B are random and nonzero, as an adapter is after training.

For each adapter, expected.json records:
- eval: the mean next-token loss over ../<model>/eval.txt in windows of the model's context, with the adapter;
- gradients: dLoss/dA and dLoss/dB of some adapters for a two-row batch (the loss of ../<model>'s gradient test).
Gradients are computed in float64 (the exact values a float32 implementation approximates).
GPT-2 runs the real LoRA forward (y = base(x) + scaling * B(A(x)) on each Conv1D, PEFT's lora.Linear with
fan_in_fan_out); Llama runs make_llama_tiny.py's functional forward on W + scaling * B @ A, the same function
of A and B. Each is checked against the other formulation before anything is written.
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.dirname(HERE)
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(GOLDEN, "gpt2-tiny"))
sys.path.insert(0, os.path.join(GOLDEN, "llama"))
import make_gpt2_tiny as g2  # noqa: E402
import make_llama_tiny as ll  # noqa: E402

GRAD_TEXTS = ["The quick brown fox jumps over the lazy dog", "Once upon a time, there was a little girl"]
GRAD_LEN = 9

ADAPTERS = {
    # GPT-2: the default targets of `ajar train --lora` (attention and MLP projections), plain scaling alpha / r.
    "gpt2-tiny-lora": dict(base="gpt2-tiny", seed=21, r=4, alpha=8, rslora=False,
                           targets=["c_attn", "c_proj", "c_fc"], std_a=0.3, std_b=0.15),
    # Llama: every projection, rank-stabilised scaling alpha / sqrt(r).
    "llama-tiny-lora": dict(base="llama/llama-tiny", seed=22, r=4, alpha=6, rslora=True,
                            targets=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
                            std_a=0.3, std_b=0.15),
}

GRAD_MODULES = {
    "gpt2-tiny-lora": ["transformer.h.0.attn.c_attn", "transformer.h.1.mlp.c_proj", "transformer.h.2.attn.c_proj"],
    "llama-tiny-lora": ["model.layers.0.self_attn.q_proj", "model.layers.1.self_attn.v_proj", "model.layers.2.mlp.down_proj"],
}


def scaling_of(a):
    return a["alpha"] / math.sqrt(a["r"]) if a["rslora"] else a["alpha"] / a["r"]


def adapter_config(a, fan_in_fan_out):
    """LoraConfig.to_dict() as PEFT 0.10's save_pretrained writes it (inference_mode true)."""
    return {
        "alpha_pattern": {}, "auto_mapping": None, "base_model_name_or_path": a["base"], "bias": "none",
        "fan_in_fan_out": fan_in_fan_out, "inference_mode": True, "init_lora_weights": True, "layers_pattern": None,
        "layers_to_transform": None, "loftq_config": {}, "lora_alpha": a["alpha"], "lora_dropout": 0.05,
        "megatron_config": None, "megatron_core": "megatron.core", "modules_to_save": None, "peft_type": "LORA",
        "r": a["r"], "rank_pattern": {}, "revision": None, "target_modules": a["targets"], "task_type": "CAUSAL_LM",
        "use_dora": False, "use_rslora": a["rslora"],
    }


def write_safetensors_f32(path, tensors):
    """The adapter's tensors as F32 safetensors, by make_llama_tiny's writer (the spec's layout, names in order)."""
    ll.write_safetensors(path, {name: t.detach() for name, t in tensors.items()}, "F32")


def random_adapters(a, layers):
    """{path: (A (r, in), B (out, r))} for each (path, in, out), seeded normal values."""
    torch.manual_seed(a["seed"])
    out = {}
    for path, n_in, n_out in layers:
        A = torch.randn(a["r"], n_in) * a["std_a"]
        B = torch.randn(n_out, a["r"]) * a["std_b"]
        out[path] = (A, B)
    return out


def peft_state_dict(adapters):
    sd = {}
    for path, (A, B) in adapters.items():
        sd[f"base_model.model.{path}.lora_A.weight"] = A
        sd[f"base_model.model.{path}.lora_B.weight"] = B
    return sd


def grad_record(t):
    g = t.grad.double()
    return {"shape": list(g.shape), "values": g.flatten().tolist(), "sum": float(g.sum()), "sum_of_squares": float((g * g).sum())}


def lm_loss(logits, x):
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))


# ---------------------------------------------------------------- GPT-2: PEFT's lora.Linear on transformers' Conv1D


class LoraConv1D(nn.Module):
    """PEFT's lora.Linear wrapping a Conv1D (fan_in_fan_out): base(x) + lora_B(lora_A(dropout(x))) * scaling."""

    def __init__(self, base, A, B, scaling):
        super().__init__()
        self.base = base
        self.A = nn.Parameter(A.clone())  # (r, in), lora_A.weight
        self.B = nn.Parameter(B.clone())  # (out, r), lora_B.weight
        self.scaling = scaling

    def forward(self, x):
        return self.base(x) + F.linear(F.linear(x, self.A), self.B) * self.scaling


def gpt2_targets(model, targets):
    out = []
    for name, mod in model.named_modules():
        if isinstance(mod, g2.Conv1D) and any(name == t or name.endswith("." + t) for t in targets):
            out.append((name, mod))
    return out


def gpt2_with_lora(weights, adapters, s, dtype):
    """make_gpt2_tiny's model in dtype with a LoraConv1D around each adapted Conv1D; only A and B require grad."""
    model = g2.build_model(weights, dtype)
    wrapped = {}
    for path, (A, B) in adapters.items():
        parent = model.get_submodule(path.rsplit(".", 1)[0])
        lora = LoraConv1D(model.get_submodule(path), A.to(dtype), B.to(dtype), s)
        setattr(parent, path.rsplit(".", 1)[1], lora)
        wrapped[path] = lora
    for p in model.parameters():
        p.requires_grad_(False)
    for lora in wrapped.values():
        lora.A.requires_grad_(True)
        lora.B.requires_grad_(True)
    return model, wrapped


def make_gpt2(name, a):
    base_dir = os.path.join(GOLDEN, a["base"])
    weights = g2.read_safetensors(os.path.join(base_dir, "model.safetensors"))
    model = g2.build_model(weights, torch.float32)
    expected_base = json.load(open(os.path.join(base_dir, "expected.json")))
    ids = expected_base["eval_ids"]
    base_loss = g2.compute_eval(model, ids, g2.N_POSITIONS)["loss"]
    assert abs(base_loss - expected_base["eval"]["128"]["loss"]) < 1e-6, "the base model does not reproduce its fixture"
    targets = gpt2_targets(model, a["targets"])
    adapters = random_adapters(a, [(p, m.weight.shape[0], m.weight.shape[1]) for p, m in targets])
    s = scaling_of(a)
    model, _ = gpt2_with_lora(weights, adapters, s, torch.float32)
    ev = g2.compute_eval(model, ids, g2.N_POSITIONS)
    # The other formulation: Conv1D weight + scaling * (B @ A)^T, no adapter.
    merged = g2.build_model(weights, torch.float32)
    with torch.no_grad():
        for path, (A, B) in adapters.items():
            merged.get_submodule(path).weight += s * (B @ A).T
    ev_merged = g2.compute_eval(merged, ids, g2.N_POSITIONS)
    assert abs(ev["loss"] - ev_merged["loss"]) < 1e-5 * ev["loss"], (ev, ev_merged)
    enc = g2.gpt2_encoder_ref.load()
    rows = [enc.encode(t)[:GRAD_LEN] for t in GRAD_TEXTS]
    x = torch.tensor(rows)
    model64, wrapped = gpt2_with_lora(weights, adapters, s, torch.float64)  # the exact gradient, for float32 ajar
    loss = lm_loss(model64(x), x)
    loss.backward()
    grads = {"inputs": rows, "loss": float(loss)}
    for path in GRAD_MODULES[name]:
        grads[path] = {"lora_A": grad_record(wrapped[path].A), "lora_B": grad_record(wrapped[path].B)}
    return adapters, adapter_config(a, True), {"base_loss": base_loss, "eval": ev, "gradients": grads}


# ---------------------------------------------------------------- Llama: make_llama_tiny.py's forward on W + s B A


def make_llama(name, a):
    base_dir = os.path.join(GOLDEN, a["base"])
    m = ll.MODELS[os.path.basename(a["base"])]
    W = ll.make_weights(m)  # seeded: the folder's BF16 values, widened
    expected_base = json.load(open(os.path.join(base_dir, "expected.json")))
    ids = expected_base["eval_ids"]
    block = m["max_pos"]
    base_loss = ll.compute_eval(m, W, ids, block)["loss"]
    assert abs(base_loss - expected_base["eval"][str(block)]["loss"]) < 1e-6, "the base model does not reproduce its fixture"
    layers = []
    for wname, w in W.items():
        path = wname[: -len(".weight")]
        if wname.endswith(".weight") and any(path.endswith("." + t) for t in a["targets"]):
            layers.append((path, w.shape[1], w.shape[0]))  # nn.Linear weight (out, in)
    adapters = random_adapters(a, layers)
    s = scaling_of(a)
    leaves = {p: (A.clone().requires_grad_(True), B.clone().requires_grad_(True)) for p, (A, B) in adapters.items()}

    def effective():
        W2 = dict(W)
        for path, (A, B) in leaves.items():
            W2[path + ".weight"] = W[path + ".weight"] + s * (B @ A)
        return W2

    with torch.no_grad():
        ev = ll.compute_eval(m, effective(), ids, block)
        # The other formulation: x W^T + s (x A^T) B^T per layer, checked on the first eval window.
        x = torch.tensor([ids[:block]])
        logits_merged = ll.forward(m, effective(), x)
    logits_lora = llama_forward_unmerged(m, W, leaves, s, x)
    diff = float((logits_merged - logits_lora).abs().max())
    assert diff < 1e-4, f"merged and unmerged Llama LoRA differ by {diff}"
    rows = [expected_base["gradients"]["inputs"][0], expected_base["gradients"]["inputs"][1]]
    x = torch.tensor(rows)
    # The exact gradient, for float32 ajar: everything in float64 (softmax too: make_llama_tiny asks for float32).
    W64 = {k: v.double() for k, v in W.items()}
    leaves64 = {p: (A.double().requires_grad_(True), B.double().requires_grad_(True)) for p, (A, B) in adapters.items()}
    W64.update({p + ".weight": W64[p + ".weight"] + s * (B @ A) for p, (A, B) in leaves64.items()})
    orig_softmax = F.softmax
    ll.F.softmax = lambda t, dim, dtype=None: orig_softmax(t, dim=dim)
    try:
        loss = lm_loss(ll.forward(m, W64, x), x)
    finally:
        ll.F.softmax = orig_softmax
    loss.backward()
    grads = {"inputs": rows, "loss": float(loss)}
    for path in GRAD_MODULES[name]:
        A, B = leaves64[path]
        grads[path] = {"lora_A": grad_record(A), "lora_B": grad_record(B)}
    return adapters, adapter_config(a, False), {"base_loss": base_loss, "eval": ev, "gradients": grads}


def llama_forward_unmerged(m, W, leaves, s, ids):
    """make_llama_tiny.forward with F.linear patched to add each adapter's s * B(A(x)) (PEFT's lora.Linear)."""
    by_weight = {id(W[p + ".weight"]): (A.detach(), B.detach()) for p, (A, B) in leaves.items()}
    orig = F.linear

    def linear(x, w, b=None):
        y = orig(x, w, b)
        ab = by_weight.get(id(w))
        return y if ab is None else y + orig(orig(x, ab[0]), ab[1]) * s

    ll.F.linear = linear
    try:
        with torch.no_grad():
            return ll.forward(m, W, ids)
    finally:
        ll.F.linear = orig


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    for name, a in ADAPTERS.items():
        make = make_gpt2 if a["base"] == "gpt2-tiny" else make_llama
        adapters, config, expected = make(name, a)
        out = os.path.join(HERE, name)
        os.makedirs(out, exist_ok=True)
        write_safetensors_f32(os.path.join(out, "adapter_model.safetensors"), peft_state_dict(adapters))
        with open(os.path.join(out, "adapter_config.json"), "w") as f:
            json.dump(config, f, indent=2, sort_keys=True)
            f.write("\n")
        expected = {"about": f"Written by ../make_lora_golden.py: {a['base']} with this adapter, in float32 PyTorch.",
                    "base": a["base"], "scaling": scaling_of(a), **expected}
        with open(os.path.join(HERE, f"{name}.expected.json"), "w") as f:
            json.dump(expected, f, indent=1)
        print(name, "base loss", expected["base_loss"], "adapter loss", expected["eval"]["loss"])


if __name__ == "__main__":
    main()
