"""Writes a random BF16 checkpoint of Llama 3.2 1B's exact shape, for bench/load-memory.ts to load and measure.

Usage (PyTorch 1.13 at /usr/bin/python3):  /usr/bin/python3 bench/make_llama_1b.py [OUT_DIR]   (default /tmp/ajar-llama-1b)
The folder holds config.json (meta-llama/Llama-3.2-1B's published values), model.safetensors (about 2.5 GB, every
tensor BF16 as the published checkpoint stores them; tied embeddings, so no lm_head.weight) and a byte-level
tokenizer.json (256 byte tokens, no merges). It is large: keep it out of the repository.
Weights are N(0, 0.02) (transformers' initializer_range), RMSNorm weights 1. The safetensors file is written
tensor by tensor (header first, then each tensor's bytes), so writing needs one tensor's memory, not the file's.
"""
import json
import os
import struct
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(HERE, "..", "test", "golden", "gpt2-vocab"))
from gpt2_encoder_ref import bytes_to_unicode  # noqa: E402  GPT-2's byte -> printable character table

HIDDEN = 2048
LAYERS = 16
HEADS = 32
KV_HEADS = 8
HEAD_DIM = 64
INTERMEDIATE = 8192
VOCAB = 128256

CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "attention_bias": False,
    "attention_dropout": 0.0,
    "bos_token_id": 128000,
    "eos_token_id": 128001,
    "head_dim": HEAD_DIM,
    "hidden_act": "silu",
    "hidden_size": HIDDEN,
    "initializer_range": 0.02,
    "intermediate_size": INTERMEDIATE,
    "max_position_embeddings": 131072,
    "mlp_bias": False,
    "num_attention_heads": HEADS,
    "num_hidden_layers": LAYERS,
    "num_key_value_heads": KV_HEADS,
    "rms_norm_eps": 1e-05,
    "rope_scaling": {
        "factor": 32.0,
        "high_freq_factor": 4.0,
        "low_freq_factor": 1.0,
        "original_max_position_embeddings": 8192,
        "rope_type": "llama3",
    },
    "rope_theta": 500000.0,
    "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
    "vocab_size": VOCAB,
}


def shapes():
    """Every tensor of LlamaForCausalLM with tied embeddings, named as transformers saves them."""
    out = {"model.embed_tokens.weight": [VOCAB, HIDDEN], "model.norm.weight": [HIDDEN]}
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        out[p + "self_attn.q_proj.weight"] = [HEADS * HEAD_DIM, HIDDEN]
        out[p + "self_attn.k_proj.weight"] = [KV_HEADS * HEAD_DIM, HIDDEN]
        out[p + "self_attn.v_proj.weight"] = [KV_HEADS * HEAD_DIM, HIDDEN]
        out[p + "self_attn.o_proj.weight"] = [HIDDEN, HEADS * HEAD_DIM]
        out[p + "mlp.gate_proj.weight"] = [INTERMEDIATE, HIDDEN]
        out[p + "mlp.up_proj.weight"] = [INTERMEDIATE, HIDDEN]
        out[p + "mlp.down_proj.weight"] = [HIDDEN, INTERMEDIATE]
        out[p + "input_layernorm.weight"] = [HIDDEN]
        out[p + "post_attention_layernorm.weight"] = [HIDDEN]
    return out


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def tensor(name, shape, gen):
    if name.endswith("norm.weight"):
        return torch.ones(shape, dtype=torch.bfloat16)
    return (torch.randn(shape, generator=gen) * 0.02).to(torch.bfloat16)


def write_safetensors(path, tensor_shapes, gen):
    names = sorted(tensor_shapes, key=lambda n: n.encode("utf-8"))
    header = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name in names:
        nbytes = 2 * numel(tensor_shapes[name])
        header[name] = {"dtype": "BF16", "shape": tensor_shapes[name], "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for i, name in enumerate(names):
            t = tensor(name, tensor_shapes[name], gen)
            ints = t.contiguous().view(torch.int16).numpy()
            f.write(ints.astype(ints.dtype.newbyteorder("<")).tobytes())
            print(f"\r{i + 1}/{len(names)} tensors", end="", file=sys.stderr, flush=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    print(file=sys.stderr)
    return offset


def tokenizer_json():
    """A byte-level BPE with one token per byte and no merges (ids 0..255 in byte order)."""
    table = bytes_to_unicode()
    vocab = {table[b]: b for b in range(256)}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "vocab": vocab, "merges": []},
    }


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/ajar-llama-1b"
    os.makedirs(out, exist_ok=True)
    gen = torch.Generator().manual_seed(0)
    tensor_shapes = shapes()
    params = sum(numel(s) for s in tensor_shapes.values())
    data_bytes = write_safetensors(os.path.join(out, "model.safetensors"), tensor_shapes, gen)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2)
        f.write("\n")
    with open(os.path.join(out, "tokenizer.json"), "w") as f:
        json.dump(tokenizer_json(), f, ensure_ascii=False)
        f.write("\n")
    print(f"{out}: {params} parameters, {data_bytes} bytes of BF16 weights, float32 size {4 * params} bytes")


if __name__ == "__main__":
    main()
