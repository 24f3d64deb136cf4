#!/usr/bin/env python3
"""Writes the reference for ajar's DP-SGD step: a tiny GPT-2 (tied embeddings) with fixed random weights, three
examples of different lengths, and each example's gradient computed on its own (one forward and backward per
example, no batching), clipped to max_grad_norm as one flat vector (factor min(1, C / (norm + 1e-6)), Opacus's),
summed, divided by the expected batch size (noise multiplier 0), then one SGD step. Twice: the language model
(each example's loss its mean next-token cross-entropy), and GPT2ForSequenceClassification on the same trunk (a
bias-free `score` head on each example's last token; its loss the cross-entropy of its label). Then two more cases on
the language model: documents cut into windows (--dp-unit: each document is one example, its loss the mean over all
its windows' targets, each window run as its own sequence, and ONE clip per document), and LoRA adapters on c_attn
(r 2, alpha 4: scaling 2, A and B drawn at random) with only A and B trained.

Run from the repository root with Debian's python3 (python3-torch 1.13):

    /usr/bin/python3 test/golden/dp/make_dp_step.py

Writes test/golden/dp/dp_step.json: config.json's fields, the weights (Hugging Face names and layouts), the
examples, C, the expected batch size, the learning rate, each example's gradient norm, the DP gradient and the
parameters after the step.
"""
import json
import math
import os

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
torch.manual_seed(20261203)

VOCAB, N_EMBD, N_HEAD, N_LAYER, N_POS, EPS = 23, 16, 2, 2, 16, 1e-5
CONFIG = {
    "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": VOCAB, "n_embd": N_EMBD,
    "n_head": N_HEAD, "n_layer": N_LAYER, "n_positions": N_POS, "n_ctx": N_POS, "n_inner": None,
    "activation_function": "gelu_new", "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0,
    "layer_norm_epsilon": EPS, "initializer_range": 0.02, "tie_word_embeddings": True,
    "bos_token_id": 0, "eos_token_id": 0,
}
EXAMPLES = [[3, 7, 1, 19, 4, 4, 22, 8, 15], [5, 2, 11, 9, 17, 6], [13, 21, 0, 10]]
EXPECTED_BATCH = 4  # q N: deliberately not the batch's size (3)
LR = 0.5


def param(shape, std, mean=0.0):
    return (torch.randn(shape, dtype=torch.float64) * std + mean).float().requires_grad_(True)


W = {"transformer.wte.weight": param((VOCAB, N_EMBD), 0.3), "transformer.wpe.weight": param((N_POS, N_EMBD), 0.1)}
for i in range(N_LAYER):
    p = f"transformer.h.{i}."
    W[p + "ln_1.weight"] = param((N_EMBD,), 0.1, 1.0)
    W[p + "ln_1.bias"] = param((N_EMBD,), 0.1)
    W[p + "attn.c_attn.weight"] = param((N_EMBD, 3 * N_EMBD), 0.2)  # GPT-2's Conv1D: (in, out)
    W[p + "attn.c_attn.bias"] = param((3 * N_EMBD,), 0.1)
    W[p + "attn.c_proj.weight"] = param((N_EMBD, N_EMBD), 0.2)
    W[p + "attn.c_proj.bias"] = param((N_EMBD,), 0.1)
    W[p + "ln_2.weight"] = param((N_EMBD,), 0.1, 1.0)
    W[p + "ln_2.bias"] = param((N_EMBD,), 0.1)
    W[p + "mlp.c_fc.weight"] = param((N_EMBD, 4 * N_EMBD), 0.2)
    W[p + "mlp.c_fc.bias"] = param((4 * N_EMBD,), 0.1)
    W[p + "mlp.c_proj.weight"] = param((4 * N_EMBD, N_EMBD), 0.2)
    W[p + "mlp.c_proj.bias"] = param((N_EMBD,), 0.1)
W["transformer.ln_f.weight"] = param((N_EMBD,), 0.1, 1.0)
W["transformer.ln_f.bias"] = param((N_EMBD,), 0.1)
NAMES = list(W)


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


LORA = {}  # layer prefix -> (A (r, in), B (out, r)), added to c_attn's output times LORA_SCALING when set
LORA_R, LORA_ALPHA = 2, 4
LORA_SCALING = LORA_ALPHA / LORA_R


def hidden(ids):
    """transformers' GPT2Model in eval mode, one sequence (T,) -> final hidden states (T, C)."""
    T = len(ids)
    x = W["transformer.wte.weight"][ids] + W["transformer.wpe.weight"][:T]
    hd = N_EMBD // N_HEAD
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for i in range(N_LAYER):
        p = f"transformer.h.{i}."
        a = F.layer_norm(x, (N_EMBD,), W[p + "ln_1.weight"], W[p + "ln_1.bias"], EPS)
        qkv = a @ W[p + "attn.c_attn.weight"] + W[p + "attn.c_attn.bias"]
        if p in LORA:
            A, B = LORA[p]
            qkv = qkv + LORA_SCALING * ((a @ A.t()) @ B.t())  # PEFT's lora.Linear: scaling * B(A(x))
        q, k, v = qkv.split(N_EMBD, dim=-1)
        q, k, v = (t.view(T, N_HEAD, hd).transpose(0, 1) for t in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hd)
        att = att.masked_fill(~mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(0, 1).reshape(T, N_EMBD)
        x = x + y @ W[p + "attn.c_proj.weight"] + W[p + "attn.c_proj.bias"]
        m = F.layer_norm(x, (N_EMBD,), W[p + "ln_2.weight"], W[p + "ln_2.bias"], EPS)
        h = gelu_new(m @ W[p + "mlp.c_fc.weight"] + W[p + "mlp.c_fc.bias"])
        x = x + h @ W[p + "mlp.c_proj.weight"] + W[p + "mlp.c_proj.bias"]
    return F.layer_norm(x, (N_EMBD,), W["transformer.ln_f.weight"], W["transformer.ln_f.bias"], EPS)


def lm_loss(ids):
    ids_t = torch.tensor(ids)
    return F.cross_entropy(hidden(ids_t[:-1]) @ W["transformer.wte.weight"].t(), ids_t[1:])


LABELS = [2, 0, 1]
NUM_LABELS = 3


def classifier_loss(k):
    h = hidden(torch.tensor(EXAMPLES[k]))  # (T, C)
    scores = h[-1] @ W["score.weight"].t()  # (num_labels,): nn.Linear(n_embd, num_labels, bias=False)
    return F.cross_entropy(scores.unsqueeze(0), torch.tensor([LABELS[k]]))


def flat(t):
    return [float(v) for v in t.detach().reshape(-1)]


def dp_case(config, names, losses, params=None):
    """Each example's gradient alone, clipped between the smallest norm and the rest, summed, one SGD step."""
    params = params or W
    grads = []
    for loss_fn in losses:
        for n in names:
            params[n].grad = None
        loss_fn().backward()
        grads.append({n: params[n].grad.detach().clone() for n in names})
    norms = [math.sqrt(sum(float(g[n].double().pow(2).sum()) for n in names)) for g in grads]
    ordered = sorted(norms)
    C = (ordered[0] + ordered[1]) / 2  # one example keeps its gradient, two are scaled down
    factors = [min(1.0, C / (n + 1e-6)) for n in norms]
    dp_grad = {n: sum(f * g[n] for f, g in zip(factors, grads)) / EXPECTED_BATCH for n in names}
    print("norms", norms, "C", C, "factors", factors)
    return {
        "config": config,
        "weights": {n: {"shape": list(W[n].shape), "data": flat(W[n])} for n in NAMES + [k for k in names if k in W and k not in NAMES]},
        "examples": EXAMPLES,
        "max_grad_norm": C,
        "expected_batch": EXPECTED_BATCH,
        "lr": LR,
        "norms": norms,
        "factors": factors,
        "dp_grad": {n: flat(dp_grad[n]) for n in names},
        "after_sgd": {n: flat(params[n].detach() - LR * dp_grad[n]) for n in names},
    }


lm = dp_case(CONFIG, NAMES, [lambda ex=ex: lm_loss(ex) for ex in EXAMPLES])
W["score.weight"] = param((NUM_LABELS, N_EMBD), 0.5)
classifier_config = {**CONFIG, "architectures": ["GPT2ForSequenceClassification"], "num_labels": NUM_LABELS}
classifier = dp_case(classifier_config, NAMES + ["score.weight"], [lambda k=k: classifier_loss(k) for k in range(3)])
classifier["labels"] = LABELS

# Documents cut into windows of BLOCK predictions: window k of a document of L tokens reads tokens kT .. kT+T-1 and
# predicts kT+1 .. kT+T (the last window shorter); each window is its own sequence. The document's loss is the mean
# over all its windows' targets; its gradient is clipped once.
DOCS = [[3, 7, 1, 19, 4, 4, 22, 8, 15, 2, 11, 9, 17, 6], [5, 2, 11, 9, 17], [13, 21, 0, 10, 1, 2, 3, 4, 5]]
BLOCK = 6


def doc_loss(doc):
    total, count = 0.0, 0
    for start in range(0, len(doc) - 1, BLOCK):
        window = torch.tensor(doc[start:start + BLOCK + 1])
        logits = hidden(window[:-1]) @ W["transformer.wte.weight"].t()
        total = total + F.cross_entropy(logits, window[1:], reduction="sum")
        count += len(window) - 1
    return total / count


documents = dp_case(CONFIG, NAMES, [lambda d=d: doc_loss(d) for d in DOCS])
documents["documents"] = DOCS
documents["block"] = BLOCK

# LoRA on each layer's c_attn; the base frozen, A and B (PEFT's names) trained.
lora_params = {}
for i in range(N_LAYER):
    p = f"transformer.h.{i}."
    A = param((LORA_R, N_EMBD), 0.3)
    B = param((3 * N_EMBD, LORA_R), 0.3)
    LORA[p] = (A, B)
    lora_params[f"base_model.model.{p}attn.c_attn.lora_A.weight"] = A
    lora_params[f"base_model.model.{p}attn.c_attn.lora_B.weight"] = B
lora = dp_case(CONFIG, list(lora_params), [lambda ex=ex: lm_loss(ex) for ex in EXAMPLES], lora_params)
lora["adapter"] = {n: {"shape": list(t.shape), "data": flat(t)} for n, t in lora_params.items()}
lora["lora"] = {"r": LORA_R, "lora_alpha": LORA_ALPHA, "target_modules": ["c_attn"]}
with open(os.path.join(HERE, "dp_step.json"), "w") as f:
    json.dump({"lm": lm, "classifier": classifier, "documents": documents, "lora": lora}, f)
