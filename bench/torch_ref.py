"""PyTorch reference for ajar's benchmark workloads (same shapes as src/bench/workloads.ts), run beside
`ajar bench` by bench/run.ts. Debian's python3-torch 1.13 with its default threads (AJAR_THREADS=N pins N).

    /usr/bin/python3 bench/torch_ref.py WORKLOAD [--steps N]

Prints {"workload", "step_ms_median", "tokens_per_s", "peak_rss_mib", "steps", "backend"} as one JSON line.
The GPT-2 model is as nanoGPT's model.py writes it (biases on, tied head, gelu tanh); the Llama model is
transformers' LlamaForCausalLM written in plain torch (RMSNorm pre-norm, rotate-half RoPE, grouped-query attention,
SwiGLU, no biases, tied head) at SmolLM2-135M's shape. Both train with torch.optim.AdamW and clip_grad_norm_
exactly like ajar's step, and decode greedily with a KV cache like ajar's generate. train-gpt2-lora is plain torch
LoRA (no PEFT): the GPT-2 model frozen, each c_attn, c_proj, c_fc and MLP projection wrapped as PEFT's lora.Linear
computes it (base(x) + scaling * B(A(x)), r 8, lora_alpha 16), and only A and B train.
"""
import json
import math
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, C, nh):
        super().__init__()
        self.nh = nh
        self.ln_1 = nn.LayerNorm(C)
        self.c_attn = nn.Linear(C, 3 * C)
        self.c_proj = nn.Linear(C, C)
        self.ln_2 = nn.LayerNorm(C)
        self.c_fc = nn.Linear(C, 4 * C)
        self.mlp_proj = nn.Linear(4 * C, C)

    def attn(self, x, cache):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.nh, C // self.nh).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        if cache is not None:
            if cache.get("k") is not None:
                k = torch.cat([cache["k"], k], dim=2)
                v = torch.cat([cache["v"], v], dim=2)
            cache["k"], cache["v"] = k, v
        Tk = k.shape[2]
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        if T > 1:
            mask = torch.ones(T, Tk, dtype=torch.bool).tril(diagonal=Tk - T)
            att = att.masked_fill(~mask, float("-inf"))
        y = F.softmax(att, dim=-1) @ v
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))

    def forward(self, x, cache=None):
        x = x + self.attn(self.ln_1(x), cache)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, vocab, ctx, C, L, nh):
        super().__init__()
        self.wte = nn.Embedding(vocab, C)
        self.wpe = nn.Embedding(ctx, C)
        self.h = nn.ModuleList([Block(C, nh) for _ in range(L)])
        self.ln_f = nn.LayerNorm(C)

    def forward(self, idx, caches=None, past=0):
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(past, past + T))
        for i, b in enumerate(self.h):
            x = b(x, caches[i] if caches is not None else None)
        return F.linear(self.ln_f(x), self.wte.weight)


class LoraLinear(nn.Module):
    """PEFT's lora.Linear without dropout: the frozen base plus scaling * B(A(x)); A kaiming-uniform, B zeros."""

    def __init__(self, base, r, alpha):
        super().__init__()
        self.base = base
        self.lora_A = nn.Linear(base.in_features, r, bias=False)  # (r, in)
        self.lora_B = nn.Linear(r, base.out_features, bias=False)  # (out, r)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)
        self.scaling = alpha / r

    def forward(self, x):
        return self.base(x) + self.lora_B(self.lora_A(x)) * self.scaling


def add_lora(model, r):
    """Freeze every parameter, then wrap the attention and MLP projections of each block (ajar's GPT-2 targets)."""
    for p in model.parameters():
        p.requires_grad_(False)
    for b in model.h:
        for name in ("c_attn", "c_proj", "c_fc", "mlp_proj"):
            setattr(b, name, LoraLinear(getattr(b, name), r, 2 * r))
    return model


class RMSNorm(nn.Module):
    def __init__(self, C, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(C))

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class LlamaBlock(nn.Module):
    def __init__(self, C, nh, nkv, hs, inter, eps):
        super().__init__()
        self.nh, self.nkv, self.hs = nh, nkv, hs
        self.input_layernorm = RMSNorm(C, eps)
        self.q_proj = nn.Linear(C, nh * hs, bias=False)
        self.k_proj = nn.Linear(C, nkv * hs, bias=False)
        self.v_proj = nn.Linear(C, nkv * hs, bias=False)
        self.o_proj = nn.Linear(nh * hs, C, bias=False)
        self.post_attention_layernorm = RMSNorm(C, eps)
        self.gate_proj = nn.Linear(C, inter, bias=False)
        self.up_proj = nn.Linear(C, inter, bias=False)
        self.down_proj = nn.Linear(inter, C, bias=False)

    def attn(self, x, cos, sin, cache):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.nh, self.hs).transpose(1, 2)  # (B, nh, T, hs)
        k = self.k_proj(x).view(B, T, self.nkv, self.hs).transpose(1, 2)  # (B, nkv, T, hs)
        v = self.v_proj(x).view(B, T, self.nkv, self.hs).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if cache is not None:
            if cache.get("k") is not None:
                k = torch.cat([cache["k"], k], dim=2)
                v = torch.cat([cache["v"], v], dim=2)
            cache["k"], cache["v"] = k, v
        rep = self.nh // self.nkv
        k = k.repeat_interleave(rep, dim=1)  # (B, nh, Tk, hs)
        v = v.repeat_interleave(rep, dim=1)
        Tk = k.shape[2]
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.hs))
        if T > 1:
            mask = torch.ones(T, Tk, dtype=torch.bool).tril(diagonal=Tk - T)
            att = att.masked_fill(~mask, float("-inf"))
        y = F.softmax(att, dim=-1) @ v
        return self.o_proj(y.transpose(1, 2).contiguous().view(B, T, self.nh * self.hs))

    def forward(self, x, cos, sin, cache=None):
        x = x + self.attn(self.input_layernorm(x), cos, sin, cache)
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class Llama(nn.Module):
    """SmolLM2-135M's shape by default; N(0, 0.02) weights, norms 1, as ajar's initWeights."""

    def __init__(self, vocab=49152, C=576, L=30, nh=9, nkv=3, hs=64, inter=1536, eps=1e-5, theta=100000.0):
        super().__init__()
        self.wte = nn.Embedding(vocab, C)  # model.embed_tokens, tied to the head
        self.h = nn.ModuleList([LlamaBlock(C, nh, nkv, hs, inter, eps) for _ in range(L)])
        self.norm = RMSNorm(C, eps)
        self.register_buffer("inv_freq", 1.0 / (theta ** (torch.arange(0, hs, 2).float() / hs)), persistent=False)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)

    def forward(self, idx, caches=None, past=0):
        T = idx.shape[1]
        freqs = torch.outer(torch.arange(past, past + T).float(), self.inv_freq)  # (T, hs/2)
        emb = torch.cat((freqs, freqs), dim=-1)  # (T, hs)
        cos, sin = emb.cos(), emb.sin()
        x = self.wte(idx)
        for i, b in enumerate(self.h):
            x = b(x, cos, sin, caches[i] if caches is not None else None)
        return F.linear(self.norm(x), self.wte.weight)


def train_bench(model, batch, block, steps, warmup):
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    other = [p for p in params if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.99))
    V = model.wte.weight.shape[0]
    times = []
    for i in range(warmup + steps):
        x = torch.randint(V, (batch, block))
        y = torch.randint(V, (batch, block))
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x).view(-1, V), y.view(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1000)
    return times


def decode_bench(model, steps):
    V = model.wte.weight.shape[0]
    prompt = torch.tensor([[(i * 977) % min(50000, V) for i in range(16)]])
    times = []
    with torch.no_grad():
        for run in range(2):
            n = 4 if run == 0 else steps
            caches = [dict() for _ in model.h]
            t_last = time.perf_counter()
            logits = model(prompt, caches, 0)
            past = prompt.shape[1]
            for _ in range(n):
                nxt = logits[0, -1].argmax().view(1, 1)
                now = time.perf_counter()
                if run == 1:
                    times.append((now - t_last) * 1000)
                t_last = now
                logits = model(nxt, caches, past)
                past += 1
    return times


def main():
    workload = sys.argv[1]
    steps = int(sys.argv[sys.argv.index("--steps") + 1]) if "--steps" in sys.argv else None
    # NOTE: PyTorch at its fastest: its default thread count, unless AJAR_THREADS pins one. On this 2-core machine
    # (shared with other work) set_num_threads(2) ran decode-llama 10x and train-llama 2.7x slower than the default
    # (1 thread here): the OpenMP pool spins waiting for a core.
    if os.environ.get("AJAR_THREADS"):
        torch.set_num_threads(int(os.environ["AJAR_THREADS"]))
    torch.manual_seed(1)
    if workload == "train-baby":
        model = GPT(65, 64, 128, 4, 4)
        times = train_bench(model, 12, 64, steps or 30, 3)
        tokens = 12 * 64
    elif workload == "train-gpt2":
        model = GPT(50257, 1024, 768, 12, 12)
        times = train_bench(model, 4, 64, steps or 5, 1)
        tokens = 4 * 64
    elif workload == "train-gpt2-lora":
        model = add_lora(GPT(50257, 1024, 768, 12, 12), 8)
        times = train_bench(model, 4, 64, steps or 5, 1)
        tokens = 4 * 64
    elif workload in ("decode-gpt2", "decode-gpt2-int8"):
        # NOTE: decode-gpt2-int8 is ajar's int8 decoding; the peer it is compared with is PyTorch's float32 decoding.
        model = GPT(50257, 1024, 768, 12, 12).eval()
        times = decode_bench(model, steps or 64)
        tokens = 1
    elif workload == "train-llama":
        model = Llama()
        times = train_bench(model, 4, 64, steps or 3, 1)
        tokens = 4 * 64
    elif workload == "decode-llama":
        model = Llama().eval()
        times = decode_bench(model, steps or 32)
        tokens = 1
    else:
        sys.exit(f"unknown workload {workload}")
    ms = statistics.median(times)
    print(json.dumps({
        "workload": workload, "step_ms_median": ms, "tokens_per_s": tokens * 1000 / ms,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "steps": len(times),
        "backend": f"pytorch {torch.__version__} ({torch.get_num_threads()} threads)",
    }))


if __name__ == "__main__":
    main()
