#!/usr/bin/env python3
"""Writes a tiny random GPT-2 checkpoint in Hugging Face layout and the outputs ajar's golden tests compare against.

Run from the repository root with Debian's python3 (python3-torch 1.13, python3-regex, python3-numpy):

    /usr/bin/python3 test/golden/gpt2-tiny/make_gpt2_tiny.py

The model is GPT2LMHeadModel as transformers' modeling_gpt2.py defines it, written here in plain torch.nn;
model.safetensors is written by hand from the safetensors spec. Neither transformers nor safetensors is needed.
"""
import json
import math
import os
import shutil
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
VOCAB_DIR = os.path.join(HERE, "..", "gpt2-vocab")
sys.dont_write_bytecode = True  # leave no __pycache__ in the vocabulary folder
sys.path.insert(0, VOCAB_DIR)
import gpt2_encoder_ref  # noqa: E402  OpenAI's reference BPE encoder, beside the vocabulary

SEED = 1234
N_EMBD = 96
N_HEAD = 6
N_LAYER = 3
N_POSITIONS = 128
VOCAB_SIZE = 50257  # GPT-2's BPE
N_INNER = 4 * N_EMBD  # n_inner null in config.json means 4 * n_embd
LN_EPS = 1e-5
EOS_ID = 50256  # <|endoftext|>

CONFIG = {
    "activation_function": "gelu_new",
    "architectures": ["GPT2LMHeadModel"],
    "attn_pdrop": 0.1,
    "bos_token_id": EOS_ID,
    "embd_pdrop": 0.1,
    "eos_token_id": EOS_ID,
    "initializer_range": 0.02,
    "layer_norm_epsilon": LN_EPS,
    "model_type": "gpt2",
    "n_ctx": N_POSITIONS,
    "n_embd": N_EMBD,
    "n_head": N_HEAD,
    "n_inner": None,
    "n_layer": N_LAYER,
    "n_positions": N_POSITIONS,
    "reorder_and_upcast_attn": False,
    "resid_pdrop": 0.1,
    "scale_attn_by_inverse_layer_idx": False,
    "scale_attn_weights": True,
    "summary_activation": None,
    "summary_first_dropout": 0.1,
    "summary_proj_to_labels": True,
    "summary_type": "cls_index",
    "summary_use_proj": True,
    "task_specific_params": {"text-generation": {"do_sample": True, "max_length": 50}},
    "torch_dtype": "float16",
    "use_cache": True,
    "vocab_size": VOCAB_SIZE,
}
TOKENIZER_CONFIG = {
    "tokenizer_class": "GPT2Tokenizer",
    "model_max_length": N_POSITIONS,
    "bos_token": "<|endoftext|>",
    "eos_token": "<|endoftext|>",
    "unk_token": "<|endoftext|>",
    "add_bos_token": False,
}
GENERATION_CONFIG = {"bos_token_id": EOS_ID, "eos_token_id": EOS_ID}

EVAL_BLOCK_SIZES = [128, 32]
GENERATE_PROMPTS = ["The meaning of life is", "Dear Zoë,\nThe café on the corner"]
GENERATE_NEW_TOKENS = 24
MIN_GREEDY_MARGIN = 1e-3
LOGITS_TEXT = "Hello, world! How are you today?"  # first 7 ids are used
LOGITS_LEN = 7
LOGITS_NUM_INDICES = 64
GRAD_TEXTS = ["The quick brown fox jumps over the lazy dog", "Once upon a time, there was a little girl"]
GRAD_LEN = 9


# ---------------------------------------------------------------- weights


def weight_specs():
    """(name, shape, mean, std) in generation order; names are the checkpoint's, as save_pretrained writes them."""
    # NOTE: wpe and the output projections are large on purpose: with small ones the residual stream is
    # dominated by the (tied) token embedding and greedy decoding just repeats the last token, which would
    # hide position and KV-cache bugs. wte's std 0.1 gives logits a spread of about 1.
    C = N_EMBD
    specs = [
        ("transformer.wte.weight", (VOCAB_SIZE, C), 0.0, 0.1),
        ("transformer.wpe.weight", (N_POSITIONS, C), 0.0, 0.2),
    ]
    for i in range(N_LAYER):
        p = f"transformer.h.{i}."
        specs += [
            (p + "ln_1.weight", (C,), 1.0, 0.1),
            (p + "ln_1.bias", (C,), 0.0, 0.05),
            (p + "attn.c_attn.weight", (C, 3 * C), 0.0, 0.1),  # Conv1D: (in, out)
            (p + "attn.c_attn.bias", (3 * C,), 0.0, 0.02),
            (p + "attn.c_proj.weight", (C, C), 0.0, 0.2),
            (p + "attn.c_proj.bias", (C,), 0.0, 0.02),
            (p + "ln_2.weight", (C,), 1.0, 0.1),
            (p + "ln_2.bias", (C,), 0.0, 0.05),
            (p + "mlp.c_fc.weight", (C, N_INNER), 0.0, 0.1),
            (p + "mlp.c_fc.bias", (N_INNER,), 0.0, 0.02),
            (p + "mlp.c_proj.weight", (N_INNER, C), 0.0, 0.2),
            (p + "mlp.c_proj.bias", (C,), 0.0, 0.02),
        ]
    specs += [
        ("transformer.ln_f.weight", (C,), 1.0, 0.1),
        ("transformer.ln_f.bias", (C,), 0.0, 0.05),
    ]
    return specs


def make_weights():
    """Seeded normal weights rounded to float16: the checkpoint's values, and the model's once widened."""
    torch.manual_seed(SEED)
    weights = {}
    for name, shape, mean, std in weight_specs():
        weights[name] = (torch.randn(shape, dtype=torch.float32) * std + mean).to(torch.float16)
    return weights


def legacy_mask():
    # NOTE: older transformers saved this causal-mask buffer with the weights; loaders must ignore it.
    return torch.tril(torch.ones(N_POSITIONS, N_POSITIONS)).view(1, 1, N_POSITIONS, N_POSITIONS).to(torch.float16)


# ---------------------------------------------------------------- safetensors (written from the spec)


def write_safetensors(path, tensors):
    """8-byte LE header length, compact JSON header padded with spaces to 8 bytes, data in sorted name order."""
    header = {"__metadata__": {"format": "pt"}}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        assert t.dtype == torch.float16
        data = t.numpy().astype("<f2").tobytes()
        header[name] = {"dtype": "F16", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    header_bytes += b" " * (-len(header_bytes) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)))
        f.write(header_bytes)
        for data in blobs:
            f.write(data)
    os.replace(tmp, path)


def read_safetensors(path):
    """Independent read-back of the file above, used to check the writer."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    assert header.pop("__metadata__") == {"format": "pt"}
    base = 8 + n
    out = {}
    end_prev = 0
    for name in sorted(header, key=lambda k: header[k]["data_offsets"][0]):
        info = header[name]
        begin, end = info["data_offsets"]
        assert begin == end_prev, "tensors must be contiguous and in order"
        end_prev = end
        assert info["dtype"] == "F16"
        arr = np.frombuffer(raw[base + begin : base + end], dtype="<f2").reshape(info["shape"])
        out[name] = torch.from_numpy(arr.copy())
    assert base + end_prev == len(raw), "no trailing bytes"
    return out


# ---------------------------------------------------------------- the model (modeling_gpt2.py's math)


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class Conv1D(nn.Module):
    """transformers' Conv1D: weight stored (in, out), y = x @ W + b."""

    def __init__(self, nx, nf):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(nx, nf))
        self.bias = nn.Parameter(torch.empty(nf))

    def forward(self, x):
        return torch.addmm(self.bias, x.reshape(-1, x.size(-1)), self.weight).view(x.shape[:-1] + (self.weight.size(1),))


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.c_attn = Conv1D(N_EMBD, 3 * N_EMBD)
        self.c_proj = Conv1D(N_EMBD, N_EMBD)
        mask = torch.tril(torch.ones(N_POSITIONS, N_POSITIONS, dtype=torch.bool)).view(1, 1, N_POSITIONS, N_POSITIONS)
        self.register_buffer("bias", mask, persistent=False)

    def forward(self, x):  # x: (B, T, C)
        B, T, C = x.shape
        hs = C // N_HEAD
        q, k, v = self.c_attn(x).split(C, dim=2)
        q = q.view(B, T, N_HEAD, hs).permute(0, 2, 1, 3)  # (B, nh, T, hs)
        k = k.view(B, T, N_HEAD, hs).permute(0, 2, 1, 3)  # (B, nh, T, hs)
        v = v.view(B, T, N_HEAD, hs).permute(0, 2, 1, 3)  # (B, nh, T, hs)
        att = torch.matmul(q, k.transpose(-1, -2))  # (B, nh, T, T)
        att = att / torch.full([], v.size(-1) ** 0.5, dtype=att.dtype)
        causal = self.bias[:, :, :T, :T]
        att = torch.where(causal, att, torch.tensor(torch.finfo(att.dtype).min, dtype=att.dtype))
        att = F.softmax(att, dim=-1)
        y = torch.matmul(att, v)  # (B, nh, T, hs)
        y = y.permute(0, 2, 1, 3).contiguous().view(B, T, C)  # (B, T, C)
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.c_fc = Conv1D(N_EMBD, N_INNER)
        self.c_proj = Conv1D(N_INNER, N_EMBD)

    def forward(self, x):
        return self.c_proj(gelu_new(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1 = nn.LayerNorm(N_EMBD, eps=LN_EPS)
        self.attn = Attention()
        self.ln_2 = nn.LayerNorm(N_EMBD, eps=LN_EPS)
        self.mlp = MLP()

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(VOCAB_SIZE, N_EMBD)
        self.wpe = nn.Embedding(N_POSITIONS, N_EMBD)
        self.h = nn.ModuleList([Block() for _ in range(N_LAYER)])
        self.ln_f = nn.LayerNorm(N_EMBD, eps=LN_EPS)

    def forward(self, ids):  # ids: (B, T)
        T = ids.size(1)
        pos = torch.arange(T, dtype=torch.long).unsqueeze(0)  # (1, T)
        x = self.wte(ids) + self.wpe(pos)  # (B, T, C)
        for block in self.h:
            x = block(x)
        return self.ln_f(x)


class GPT2LMHeadModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.transformer = Transformer()

    def forward(self, ids):
        h = self.transformer(ids)  # (B, T, C)
        return F.linear(h, self.transformer.wte.weight)  # (B, T, V); lm_head tied to wte


def build_model(weights, dtype):
    model = GPT2LMHeadModel()
    state = {}
    for name, w in weights.items():
        if name.endswith(".attn.bias"):  # the legacy mask buffer: checked, then ignored
            assert torch.equal(w.bool(), model.transformer.h[0].attn.bias), name
            continue
        state[name] = w.to(dtype)
    model.load_state_dict(state, strict=True)
    return model.to(dtype).eval()  # eval(): no dropout anywhere (this model has none)


# ---------------------------------------------------------------- second formulation: one token at a time, KV cache


def incremental_logits(weights, ids):
    """Logits for every position, fed one token at a time with a key/value cache; written without nn modules."""
    W = {name: w.to(torch.float32) for name, w in weights.items()}
    hs = N_EMBD // N_HEAD

    def layer_norm(x, g, b):
        mu = x.mean()
        var = ((x - mu) ** 2).mean()
        return (x - mu) / torch.sqrt(var + LN_EPS) * g + b

    cache = [([], []) for _ in range(N_LAYER)]  # per layer: lists of (nh, hs) keys and values
    rows = []
    for t, tok in enumerate(ids):
        x = W["transformer.wte.weight"][tok] + W["transformer.wpe.weight"][t]  # (C,)
        for i in range(N_LAYER):
            p = f"transformer.h.{i}."
            h = layer_norm(x, W[p + "ln_1.weight"], W[p + "ln_1.bias"])
            qkv = h @ W[p + "attn.c_attn.weight"] + W[p + "attn.c_attn.bias"]  # (3C,)
            q, k, v = (qkv[j * N_EMBD : (j + 1) * N_EMBD].view(N_HEAD, hs) for j in range(3))  # (nh, hs)
            cache[i][0].append(k)
            cache[i][1].append(v)
            K = torch.stack(cache[i][0], dim=1)  # (nh, t+1, hs)
            V = torch.stack(cache[i][1], dim=1)  # (nh, t+1, hs)
            s = torch.einsum("nd,ntd->nt", q, K) / math.sqrt(hs)  # (nh, t+1)
            e = torch.exp(s - s.max(dim=1, keepdim=True).values)
            a = e / e.sum(dim=1, keepdim=True)
            y = torch.einsum("nt,ntd->nd", a, V).reshape(N_EMBD)  # (C,)
            x = x + y @ W[p + "attn.c_proj.weight"] + W[p + "attn.c_proj.bias"]
            h = layer_norm(x, W[p + "ln_2.weight"], W[p + "ln_2.bias"])
            f = F.gelu(h @ W[p + "mlp.c_fc.weight"] + W[p + "mlp.c_fc.bias"], approximate="tanh")
            x = x + f @ W[p + "mlp.c_proj.weight"] + W[p + "mlp.c_proj.bias"]
        h = layer_norm(x, W["transformer.ln_f.weight"], W["transformer.ln_f.bias"])
        rows.append(W["transformer.wte.weight"] @ h)  # (V,)
    return torch.stack(rows)  # (T, V)


# ---------------------------------------------------------------- expected outputs


def compute_eval(model, ids, block_size):
    total = 0.0  # float64 accumulator over windows
    count = 0
    for start in range(0, len(ids), block_size):
        window = ids[start : start + block_size]
        if len(window) < 2:
            continue  # a window of one token predicts nothing
        x = torch.tensor([window])
        with torch.no_grad():
            logits = model(x)[0]  # (L, V)
        loss = F.cross_entropy(logits[:-1], x[0, 1:], reduction="sum")
        total += float(loss.item())
        count += len(window) - 1
    loss = total / count
    return {"loss": loss, "perplexity": math.exp(loss), "tokens": count}


def compute_generation(model, enc, prompt):
    prompt_ids = enc.encode(prompt)
    ids = list(prompt_ids)
    margins = []
    stopped_on_eos = False
    for _ in range(GENERATE_NEW_TOKENS):
        with torch.no_grad():
            logits = model(torch.tensor([ids]))[0, -1]  # (V,)
        top = torch.topk(logits, 2).values
        margins.append(float(top[0] - top[1]))
        nxt = int(torch.argmax(logits))
        ids.append(nxt)
        if nxt == EOS_ID:
            stopped_on_eos = True
            break
    generated = ids[len(prompt_ids) :]
    smallest = min(margins)
    return {
        "prompt": prompt,
        "prompt_ids": prompt_ids,
        "max_new_tokens": GENERATE_NEW_TOKENS,
        "generated_ids": generated,
        "generated_text": enc.decode(generated),
        "stopped_on_eos": stopped_on_eos,
        "min_margin": smallest,
        "min_margin_step": margins.index(smallest),
    }


def logits_indices(seq_ids):
    spaced = [round(i * (VOCAB_SIZE - 1) / 56) for i in range(57)]  # includes 0 and 50256
    chosen = sorted(set(spaced) | set(seq_ids))
    extra = 1
    while len(chosen) < LOGITS_NUM_INDICES:  # fill from odd offsets if the sequence's ids hit the spaced ones
        if extra not in chosen:
            chosen.append(extra)
        extra += 2
    return sorted(chosen)[:LOGITS_NUM_INDICES]


def compute_logits(model, seq_ids):
    indices = logits_indices(seq_ids)
    x = torch.tensor([seq_ids])
    with torch.no_grad():
        logits = model(x)[0]  # (T, V)
    loss = F.cross_entropy(logits[:-1], x[0, 1:])  # mean over T-1 predictions
    return {
        "ids": seq_ids,
        "vocab_indices": indices,
        "values": logits[:, indices].tolist(),  # (T, 64)
        "argmax": logits.argmax(dim=-1).tolist(),
        "logsumexp": torch.logsumexp(logits, dim=-1).tolist(),
        "loss": float(loss),
    }, logits


def compute_gradients(model, batch, wte_ids, wte_other_id):
    model.zero_grad()
    x = torch.tensor(batch)  # (2, 9)
    logits = model(x)  # (2, 9, V)
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, VOCAB_SIZE), x[:, 1:].reshape(-1))  # mean over 16
    loss.backward()
    grads = dict(model.named_parameters())
    g_attn = grads["transformer.h.1.attn.c_attn.weight"].grad
    g_wpe = grads["transformer.wpe.weight"].grad
    g_wte = grads["transformer.wte.weight"].grad
    return {
        "inputs": batch,
        "loss": float(loss),
        "transformer.h.1.attn.c_attn.weight": {
            "shape": list(g_attn.shape),
            "first_200": g_attn.reshape(-1)[:200].tolist(),
            "sum": float(g_attn.double().sum()),
            "sum_of_squares": float((g_attn.double() ** 2).sum()),
        },
        "transformer.ln_f.weight": grads["transformer.ln_f.weight"].grad.tolist(),
        # NOTE: every path from the embeddings goes through a LayerNorm, which ignores a shift shared by all
        # channels, so each wpe row's gradient sums to zero (up to rounding); the full rows carry the signal.
        # Row 8 is exactly zero: the last position's prediction has no target.
        "transformer.wpe.weight": {
            "row_sums_first_9": g_wpe[:GRAD_LEN].double().sum(dim=1).tolist(),
            "rows_first_9": g_wpe[:GRAD_LEN].tolist(),
        },
        "transformer.wte.weight": {
            "ids": wte_ids,
            "rows": g_wte[wte_ids].tolist(),
            "id_not_in_batch": wte_other_id,
            "row_not_in_batch": g_wte[wte_other_id].tolist(),
        },
        "transformer.h.0.mlp.c_fc.bias": grads["transformer.h.0.mlp.c_fc.bias"].grad.tolist(),
    }


def compute_all(model, enc, eval_ids):
    out = {"eval": {}, "eval_ids_count": len(eval_ids), "eval_ids": eval_ids}
    for b in EVAL_BLOCK_SIZES:
        out["eval"][str(b)] = compute_eval(model, eval_ids, b)
    out["generate"] = [compute_generation(model, enc, p) for p in GENERATE_PROMPTS]
    seq = enc.encode(LOGITS_TEXT)[:LOGITS_LEN]
    assert len(seq) == LOGITS_LEN
    out["logits"], full_logits = compute_logits(model, seq)

    batch = [enc.encode(t)[:GRAD_LEN] for t in GRAD_TEXTS]
    assert all(len(s) == GRAD_LEN for s in batch)
    s0, s1 = batch
    # The chosen wte rows: an input at position 0, an input that is also a target, a token seen only as a
    # target (the last of sequence 0), a token repeated in sequence 1, and one more from sequence 1.
    wte_ids = [s0[0], s0[3], s0[8], s1[2], s1[5]]
    assert s0[8] not in s0[:8] + s1 and s1.count(s1[2]) == 2 and len(set(wte_ids)) == 5
    assert EOS_ID not in s0 + s1
    out["gradients"] = compute_gradients(model, batch, wte_ids, EOS_ID)
    return out, full_logits


def max_deviation(a, b, path="", acc=None):
    """Largest |a - b| over the numeric leaves of two result trees (integers must match exactly)."""
    if acc is None:
        acc = {}
    if isinstance(a, dict):
        for k in a:
            max_deviation(a[k], b[k], f"{path}.{k}" if path else k, acc)
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for x, y in zip(a, b):
            max_deviation(x, y, path, acc)
    elif isinstance(a, bool) or isinstance(a, int) or isinstance(a, str):
        assert a == b, f"{path}: {a!r} != {b!r} between float32 and float64"
    else:
        acc[path] = max(acc.get(path, 0.0), abs(a - b))
    return acc


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, path)


def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    enc = gpt2_encoder_ref.load()

    weights = make_weights()
    tensors = dict(weights)
    for i in range(N_LAYER):
        tensors[f"transformer.h.{i}.attn.bias"] = legacy_mask()
    st_path = os.path.join(HERE, "model.safetensors")
    write_safetensors(st_path, tensors)
    back = read_safetensors(st_path)
    assert sorted(back) == sorted(tensors) and "lm_head.weight" not in back
    for name, t in tensors.items():
        assert back[name].shape == t.shape and torch.equal(back[name].view(torch.int16), t.view(torch.int16)), name

    write_json(os.path.join(HERE, "config.json"), CONFIG)
    write_json(os.path.join(HERE, "tokenizer_config.json"), TOKENIZER_CONFIG)
    write_json(os.path.join(HERE, "generation_config.json"), GENERATION_CONFIG)
    for f in ["vocab.json", "merges.txt"]:
        shutil.copyfile(os.path.join(VOCAB_DIR, f), os.path.join(HERE, f))

    # The reference computes with the checkpoint's f16 values widened exactly to float32.
    model = build_model(back, torch.float32)

    x = torch.randn(1000, dtype=torch.float32) * 4
    assert torch.allclose(gelu_new(x), F.gelu(x, approximate="tanh"), atol=1e-6, rtol=0)

    with open(os.path.join(HERE, "eval.txt"), encoding="utf-8") as f:
        eval_text = f.read()
    eval_ids = enc.encode(eval_text)
    assert enc.decode(eval_ids) == eval_text

    expected, full_logits = compute_all(model, enc, eval_ids)

    # Second formulation: one token at a time with a KV cache, no nn modules, torch's own tanh GELU.
    inc = incremental_logits(back, expected["logits"]["ids"])
    diff = float((inc - full_logits).abs().max())
    assert diff < 1e-5, f"full-sequence and KV-cache logits differ by {diff}"
    gen = expected["generate"][0]
    inc = incremental_logits(back, gen["prompt_ids"] + gen["generated_ids"][:-1])
    full = model(torch.tensor([gen["prompt_ids"] + gen["generated_ids"][:-1]]))[0].detach()
    diff2 = float((inc - full).abs().max())
    assert diff2 < 1e-5, f"full-sequence and KV-cache logits differ by {diff2}"

    for g in expected["generate"]:
        assert g["min_margin"] > MIN_GREEDY_MARGIN, f"greedy margin {g['min_margin']} too small for {g['prompt']!r}"

    # The same computations in float64 (same f16 weights): greedy ids must match, and the deviations show
    # how much float32 rounding alone moves each number, a floor for test tolerances.
    expected64, _ = compute_all(build_model(back, torch.float64), enc, eval_ids)
    dev = max_deviation(expected, expected64)
    expected["float32_vs_float64_max_abs_diff"] = dev
    expected["checks"] = {"kv_cache_vs_full_logits_max_abs_diff": max(diff, diff2)}
    expected = {
        "about": "Expected outputs of the random GPT-2 in this folder, written by make_gpt2_tiny.py (float32).",
        **expected,
    }
    write_json(os.path.join(HERE, "expected.json"), expected)

    print(f"eval ids: {len(eval_ids)}")
    for b, r in expected["eval"].items():
        print(f"eval block {b}: loss {r['loss']:.6f} ppl {r['perplexity']:.3f} tokens {r['tokens']}")
    for g in expected["generate"]:
        print(f"generate {g['prompt']!r} -> {g['generated_text']!r} (min margin {g['min_margin']:.4g})")
    print(f"logits loss {expected['logits']['loss']:.6f}; gradients loss {expected['gradients']['loss']:.6f}")
    print(f"kv-cache vs full: {max(diff, diff2):.3g}")
    for k, v in dev.items():
        print(f"f32 vs f64 {k}: {v:.3g}")


if __name__ == "__main__":
    main()
