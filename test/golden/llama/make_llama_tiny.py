#!/usr/bin/env python3
"""Writes tiny random Llama-family checkpoints in Hugging Face layout and the outputs ajar's tests compare against.

Run from the repository root with Debian's python3 (python3-torch 1.13, python3-regex, python3-numpy):

    /usr/bin/python3 test/golden/llama/make_llama_tiny.py

Four folders, each exercising what the others do not:
- llama-tiny:   LlamaForCausalLM, grouped-query attention (6 heads, 2 KV heads), untied lm_head, rope_theta 50000,
                odd sizes, BF16 weights, a tokenizer that adds a BOS token.
- qwen2-tiny:   Qwen2ForCausalLM, q/k/v biases (none on o_proj), multi-query attention (1 KV head), tied
                embeddings, rope_theta 1e6, F16 weights.
- llama3-tiny:  LlamaForCausalLM with rope_scaling {"rope_type": "llama3"} (all three wavelength bands in use),
                head_dim given and different from hidden_size / heads, tied, F32 weights in two shards.
- mistral-tiny: MistralForCausalLM with sliding_window 12 (smaller than the evaluation windows), F32.

The network is transformers' modeling_llama.py (LlamaRMSNorm, LlamaRotaryEmbedding incl. the llama3 rope
parameters, apply_rotary_pos_emb, repeat_kv, eager attention with its causal / sliding-window mask, LlamaMLP),
written here in plain torch; modeling_qwen2.py and modeling_mistral.py differ only in the biases and the window.
The tokenizer is a byte-level BPE (GPT-2's byte alphabet and its first 1000 merges, a ByteLevel pre-tokenizer as
SmolLM2's tokenizer.json has), and token ids come from OpenAI's reference encoder over that truncated vocabulary.
"""
import json
import math
import os
import shutil
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
VOCAB_DIR = os.path.join(HERE, "..", "gpt2-vocab")
sys.dont_write_bytecode = True
sys.path.insert(0, VOCAB_DIR)
import gpt2_encoder_ref  # noqa: E402

N_MERGES = 1000
EOS = "<|endoftext|>"
EVAL_TEXT_FILE = os.path.join(HERE, "eval.txt")
GENERATE_PROMPTS = ["The meaning of life is", "Dear Zoë,\nThe café on the corner"]
GENERATE_NEW_TOKENS = 20
GRAD_TEXTS = ["The quick brown fox jumps over the lazy dog", "Once upon a time, there was a little girl"]
GRAD_LEN = 9

MODELS = {
    "llama-tiny": dict(
        arch="LlamaForCausalLM", model_type="llama", dtype="BF16", seed=11, hidden=48, heads=6, kv=2, head_dim=None,
        inter=100, layers=3, vocab=1261, tie=False, theta=50000.0, rope_scaling=None, eps=1e-5, max_pos=256,
        qkv_bias=False, window=None, add_bos=True, shards=1,
    ),
    "qwen2-tiny": dict(
        arch="Qwen2ForCausalLM", model_type="qwen2", dtype="F16", seed=12, hidden=40, heads=5, kv=1, head_dim=None,
        inter=72, layers=2, vocab=1259, tie=True, theta=1000000.0, rope_scaling=None, eps=1e-6, max_pos=256,
        qkv_bias=True, window=None, add_bos=False, shards=1,
    ),
    "llama3-tiny": dict(
        arch="LlamaForCausalLM", model_type="llama", dtype="F32", seed=13, hidden=48, heads=4, kv=2, head_dim=16,
        inter=96, layers=2, vocab=1257, tie=True, theta=500000.0,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                      "original_max_position_embeddings": 64},
        eps=1e-5, max_pos=256, qkv_bias=False, window=None, add_bos=False, shards=2,
    ),
    "mistral-tiny": dict(
        arch="MistralForCausalLM", model_type="mistral", dtype="F32", seed=14, hidden=32, heads=4, kv=2, head_dim=None,
        inter=64, layers=2, vocab=1257, tie=False, theta=10000.0, rope_scaling=None, eps=1e-5, max_pos=256,
        qkv_bias=False, window=12, add_bos=False, shards=1,
    ),
}


# ---------------------------------------------------------------- tokenizer


def truncated_vocab():
    """GPT-2's 256 byte tokens, its first N_MERGES merges (ids 256..) and <|endoftext|>: a valid byte-level BPE."""
    with open(os.path.join(VOCAB_DIR, "vocab.json"), encoding="utf-8") as f:
        full = json.load(f)
    with open(os.path.join(VOCAB_DIR, "merges.txt"), encoding="utf-8") as f:
        lines = [l for l in f.read().split("\n")[1:] if l.strip()]
    merges = [tuple(l.split()) for l in lines[:N_MERGES]]
    vocab = {tok: i for tok, i in full.items() if i < 256 + N_MERGES}
    assert len(vocab) == 256 + N_MERGES
    for a, b in merges:  # every merge result must be in the truncated vocabulary
        assert a + b in vocab, (a, b)
    vocab[EOS] = 256 + N_MERGES
    return vocab, merges


def tokenizer_json(vocab, merges):
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [{"id": vocab[EOS], "content": EOS, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True}],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "vocab": vocab, "merges": [f"{a} {b}" for a, b in merges]},
    }


# ---------------------------------------------------------------- safetensors (written from the spec)

DTYPES = {"F32": (torch.float32, "<f4"), "F16": (torch.float16, "<f2")}


def tensor_bytes(t, dtype):
    if dtype == "BF16":
        # bfloat16 is the top half of a float32; the values were already rounded to bfloat16.
        bits = t.to(torch.float32).contiguous().numpy().view("<u4")
        return (bits >> 16).astype("<u2").tobytes()
    return t.to(DTYPES[dtype][0]).contiguous().numpy().astype(DTYPES[dtype][1]).tobytes()


def write_safetensors(path, tensors, dtype):
    header = {"__metadata__": {"format": "pt"}}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        data = tensor_bytes(tensors[name], dtype)
        header[name] = {"dtype": dtype, "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header_bytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    header_bytes += b" " * (-len(header_bytes) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)))
        f.write(header_bytes)
        for data in blobs:
            f.write(data)


def write_weights(out, tensors, dtype, shards):
    if shards == 1:
        write_safetensors(os.path.join(out, "model.safetensors"), tensors, dtype)
        return
    names = sorted(tensors)
    per = math.ceil(len(names) / shards)
    weight_map = {}
    total = 0
    for s in range(shards):
        fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        part = {n: tensors[n] for n in names[s * per:(s + 1) * per]}
        write_safetensors(os.path.join(out, fname), part, dtype)
        for n in part:
            weight_map[n] = fname
            total += part[n].numel() * 4
    with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)


# ---------------------------------------------------------------- weights


def round_to(t, dtype):
    if dtype == "BF16":
        return t.to(torch.bfloat16).to(torch.float32)
    return t.to(DTYPES[dtype][0]).to(torch.float32)


def make_weights(m):
    """Seeded normal weights, rounded to the checkpoint's dtype; names as save_pretrained writes them."""
    torch.manual_seed(m["seed"])
    C, I = m["hidden"], m["inter"]
    hs = m["head_dim"] or C // m["heads"]
    H, K = m["heads"], m["kv"]
    specs = [("model.embed_tokens.weight", (m["vocab"], C), 0.0, 0.5)]
    for i in range(m["layers"]):
        p = f"model.layers.{i}."
        specs += [
            (p + "input_layernorm.weight", (C,), 1.0, 0.1),
            (p + "self_attn.q_proj.weight", (H * hs, C), 0.0, 0.3),
            (p + "self_attn.k_proj.weight", (K * hs, C), 0.0, 0.3),
            (p + "self_attn.v_proj.weight", (K * hs, C), 0.0, 0.3),
            (p + "self_attn.o_proj.weight", (C, H * hs), 0.0, 0.3),
            (p + "post_attention_layernorm.weight", (C,), 1.0, 0.1),
            (p + "mlp.gate_proj.weight", (I, C), 0.0, 0.3),
            (p + "mlp.up_proj.weight", (I, C), 0.0, 0.3),
            (p + "mlp.down_proj.weight", (C, I), 0.0, 0.3),
        ]
        if m["qkv_bias"]:
            specs += [(p + f"self_attn.{x}_proj.bias", (n * hs,), 0.0, 0.1) for x, n in (("q", H), ("k", K), ("v", K))]
    specs.append(("model.norm.weight", (C,), 1.0, 0.1))
    if not m["tie"]:
        specs.append(("lm_head.weight", (m["vocab"], C), 0.0, 0.2))
    return {name: round_to(torch.randn(shape) * std + mean, m["dtype"]) for name, shape, mean, std in specs}


# ---------------------------------------------------------------- the model (modeling_llama.py's math)


def inv_freq_of(m):
    hs = m["head_dim"] or m["hidden"] // m["heads"]
    inv_freq = 1.0 / (m["theta"] ** (torch.arange(0, hs, 2, dtype=torch.int64).float() / hs))
    rs = m["rope_scaling"]
    if rs is not None and rs["rope_type"] == "llama3":  # _compute_llama3_parameters
        factor, low, high, old = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"], rs["original_max_position_embeddings"]
        low_wavelen = old / low
        high_wavelen = old / high
        wavelen = 2 * math.pi / inv_freq
        inv_freq_llama = torch.where(wavelen > low_wavelen, inv_freq / factor, inv_freq)
        smooth = (old / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * inv_freq_llama / factor + smooth * inv_freq_llama
        is_medium = ~(wavelen < high_wavelen) * ~(wavelen > low_wavelen)
        inv_freq = torch.where(is_medium, smoothed, inv_freq_llama)
        bands = (int((wavelen > low_wavelen).sum()), int(is_medium.sum()), int((wavelen < high_wavelen).sum()))
        assert all(b > 0 for b in bands), f"every llama3 band should be exercised, got {bands}"
    return inv_freq


def rms_norm(x, w, eps):
    variance = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(variance + eps))


def rotate_half(x):
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def repeat_kv(x, n_rep):
    b, k, t, d = x.shape
    if n_rep == 1:
        return x
    return x[:, :, None, :, :].expand(b, k, n_rep, t, d).reshape(b, k * n_rep, t, d)


def forward(m, W, ids):
    """ids (B, T) -> logits (B, T, V); the eager path of LlamaForCausalLM with no cache."""
    B, T = ids.shape
    C, H, K = m["hidden"], m["heads"], m["kv"]
    hs = m["head_dim"] or C // H
    inv_freq = inv_freq_of(m)
    pos = torch.arange(T)[None, :].float()  # (1, T)
    freqs = (inv_freq[None, :, None] @ pos[:, None, :]).transpose(1, 2)  # (1, T, hs/2)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[:, None], emb.sin()[:, None]  # (1, 1, T, hs)
    q_pos = torch.arange(T)[:, None]
    k_pos = torch.arange(T)[None, :]
    masked = k_pos > q_pos
    if m["window"] is not None:
        masked = masked | (k_pos <= q_pos - m["window"])
    mask = torch.zeros(T, T).masked_fill(masked, torch.finfo(torch.float32).min)
    x = W["model.embed_tokens.weight"][ids]  # (B, T, C)
    for i in range(m["layers"]):
        p = f"model.layers.{i}."
        h = rms_norm(x, W[p + "input_layernorm.weight"], m["eps"])

        def proj(name, n):
            y = F.linear(h, W[p + f"self_attn.{name}_proj.weight"], W.get(p + f"self_attn.{name}_proj.bias"))
            return y.view(B, T, n, hs).transpose(1, 2)  # (B, n, T, hs)

        q, k, v = proj("q", H), proj("k", K), proj("v", K)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k, v = repeat_kv(k, H // K), repeat_kv(v, H // K)
        att = torch.matmul(q, k.transpose(2, 3)) * hs ** -0.5 + mask  # (B, H, T, T)
        att = F.softmax(att, dim=-1, dtype=torch.float32)
        y = torch.matmul(att, v).transpose(1, 2).reshape(B, T, H * hs)
        x = x + F.linear(y, W[p + "self_attn.o_proj.weight"])
        h = rms_norm(x, W[p + "post_attention_layernorm.weight"], m["eps"])
        g = F.linear(h, W[p + "mlp.gate_proj.weight"])
        u = F.linear(h, W[p + "mlp.up_proj.weight"])
        x = x + F.linear(F.silu(g) * u, W[p + "mlp.down_proj.weight"])
    x = rms_norm(x, W["model.norm.weight"], m["eps"])
    head = W["model.embed_tokens.weight"] if m["tie"] else W["lm_head.weight"]
    return F.linear(x, head)


# ---------------------------------------------------------------- expected outputs


def encode(enc, text, m, bos_id):
    ids = enc.encode(text)
    return [bos_id] + ids if m["add_bos"] else ids


def compute_eval(m, W, ids, block):
    total, count = 0.0, 0
    for s in range(0, len(ids), block):
        win = ids[s:s + block]
        if len(win) < 2:
            continue
        x = torch.tensor([win])
        with torch.no_grad():
            logits = forward(m, W, x)[0]
        total += float(F.cross_entropy(logits[:-1], x[0, 1:], reduction="sum"))
        count += len(win) - 1
    return {"loss": total / count, "perplexity": math.exp(total / count), "tokens": count}


def compute_generation(m, W, enc, prompt, bos_id, eos_id):
    prompt_ids = encode(enc, prompt, m, bos_id)
    ids = list(prompt_ids)
    margins = []
    for _ in range(GENERATE_NEW_TOKENS):
        with torch.no_grad():
            logits = forward(m, W, torch.tensor([ids]))[0, -1]
        top = torch.topk(logits, 2).values
        margins.append(float(top[0] - top[1]))
        nxt = int(torch.argmax(logits))
        ids.append(nxt)
        if nxt == eos_id:
            break
    gen = ids[len(prompt_ids):]
    assert min(margins) > 1e-3, f"greedy step too close to a tie: {min(margins)}"
    text_ids = [i for i in gen if i != eos_id]
    return {"prompt": prompt, "prompt_ids": prompt_ids, "max_new_tokens": GENERATE_NEW_TOKENS, "generated_ids": gen,
            "generated_text": enc.decode(text_ids), "min_margin": min(margins)}


def compute_gradients(m, W, enc):
    rows = [enc.encode(t)[:GRAD_LEN] for t in GRAD_TEXTS]
    params = {n: w.clone().requires_grad_(True) for n, w in W.items()}
    x = torch.tensor(rows)
    logits = forward(m, params, x)
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
    loss.backward()
    out = {"inputs": rows, "loss": float(loss)}
    for name in ["model.norm.weight", "model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.k_proj.weight",
                 "model.layers.1.mlp.gate_proj.weight", "model.layers.0.input_layernorm.weight",
                 "model.embed_tokens.weight"] + (["model.layers.0.self_attn.v_proj.bias"] if m["qkv_bias"] else []):
        g = params[name].grad.double()
        out[name] = {"first_64": g.flatten()[:64].tolist(), "sum": float(g.sum()), "sum_of_squares": float((g * g).sum())}
    return out


def config_json(m, bos_id, eos_id):
    cfg = {
        "architectures": [m["arch"]], "model_type": m["model_type"], "hidden_size": m["hidden"],
        "intermediate_size": m["inter"], "num_hidden_layers": m["layers"], "num_attention_heads": m["heads"],
        "num_key_value_heads": m["kv"], "hidden_act": "silu", "max_position_embeddings": m["max_pos"],
        "initializer_range": 0.02, "rms_norm_eps": m["eps"], "tie_word_embeddings": m["tie"],
        "rope_theta": m["theta"], "rope_scaling": m["rope_scaling"], "attention_dropout": 0.0,
        "vocab_size": m["vocab"], "bos_token_id": bos_id, "eos_token_id": eos_id, "use_cache": True,
        "torch_dtype": {"BF16": "bfloat16", "F16": "float16", "F32": "float32"}[m["dtype"]],
    }
    if m["model_type"] == "llama":
        cfg.update({"attention_bias": False, "mlp_bias": False, "pretraining_tp": 1})
    if m["head_dim"] is not None:
        cfg["head_dim"] = m["head_dim"]
    if m["model_type"] == "mistral":
        cfg["sliding_window"] = m["window"]
    if m["model_type"] == "qwen2":
        cfg.update({"use_sliding_window": False, "sliding_window": 4096, "max_window_layers": m["layers"]})
    return cfg


def main():
    vocab, merges = truncated_vocab()
    enc = gpt2_encoder_ref.Encoder(vocab, merges)
    eos_id = bos_id = vocab[EOS]
    with open(EVAL_TEXT_FILE, encoding="utf-8") as f:
        eval_text = f.read()
    for name, m in MODELS.items():
        out = os.path.join(HERE, name)
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        W = make_weights(m)
        write_weights(out, W, m["dtype"], m["shards"])
        with open(os.path.join(out, "config.json"), "w") as f:
            json.dump(config_json(m, bos_id, eos_id), f, indent=2)
        with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(tokenizer_json(vocab, merges), f, ensure_ascii=False)
        with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
            json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": EOS, "eos_token": EOS,
                       "unk_token": None, "add_bos_token": m["add_bos"], "model_max_length": m["max_pos"]}, f, indent=2)
        ids = encode(enc, eval_text, m, bos_id)
        expected = {
            "about": f"Expected outputs of the random {m['arch']} in this folder, written by ../make_llama_tiny.py (float32).",
            "eval_ids": ids,
            "eval": {str(b): compute_eval(m, W, ids, b) for b in (m["max_pos"], 32)},
            "generate": [compute_generation(m, W, enc, p, bos_id, eos_id) for p in GENERATE_PROMPTS],
            "gradients": compute_gradients(m, W, enc),
        }
        with open(os.path.join(out, "expected.json"), "w") as f:
            json.dump(expected, f, indent=1)
        print(name, {k: v["loss"] for k, v in expected["eval"].items()}, "min margin",
              min(g["min_margin"] for g in expected["generate"]))


if __name__ == "__main__":
    main()
