"""Writes tiny Llama checkpoints in F32, F16 and BF16 (sharded), the outside reference for test/models/llama-load.test.ts.

Run from the repository root with PyTorch (tested with torch 1.13):  python3 test/golden/llama-load/make_llama_load.py
One random state dict of a tiny LlamaForCausalLM (tied embeddings, llama3 rope_scaling) is saved three ways:
  f32/          model.safetensors, F32, no lm_head.weight (tied, as transformers saves it)
  f16/          model.safetensors, F16, no lm_head.weight
  bf16-sharded/ two BF16 shards and model.safetensors.index.json, with lm_head.weight stored (a tied head some
                tools save anyway; loaders ignore it)
Every value is k / 256 with |k| <= 127, exact in float16 and bfloat16, so all three load to the same float32
values. expected.json holds PyTorch's float32 bit patterns (`.float()`) of each stored tensor, per folder.
Each folder also gets a byte-level tokenizer.json (256 byte tokens, no merges), so it loads as a whole model.
The safetensors writer is test/golden/safetensors/make_fixtures.py's (the specification followed by hand).
"""
import json
import os
import sys

import torch

sys.dont_write_bytecode = True  # no __pycache__ beside the imported make_fixtures.py

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "safetensors"))
sys.path.insert(0, os.path.join(HERE, "..", "gpt2-vocab"))
from gpt2_encoder_ref import bytes_to_unicode  # noqa: E402  GPT-2's byte -> printable character table
from make_fixtures import f32_bits, raw_bytes, serialize  # noqa: E402

CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 8,
    "intermediate_size": 16,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 2,
    "vocab_size": 256,  # the byte-level tokenizer's 256 ids, so every generated id decodes
    "max_position_embeddings": 64,
    "rms_norm_eps": 1e-5,
    "rope_theta": 500000.0,
    "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 8192},
    "tie_word_embeddings": True,
    "bos_token_id": None,
    "eos_token_id": None,
}


def state_dict(gen):
    c = CONFIG
    C, I, H, Hkv, hs, V = (c["hidden_size"], c["intermediate_size"], c["num_attention_heads"],
                           c["num_key_value_heads"], c["head_dim"], c["vocab_size"])
    shapes = {"model.embed_tokens.weight": [V, C], "model.norm.weight": [C]}
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        shapes[p + "self_attn.q_proj.weight"] = [H * hs, C]
        shapes[p + "self_attn.k_proj.weight"] = [Hkv * hs, C]
        shapes[p + "self_attn.v_proj.weight"] = [Hkv * hs, C]
        shapes[p + "self_attn.o_proj.weight"] = [C, H * hs]
        shapes[p + "mlp.gate_proj.weight"] = [I, C]
        shapes[p + "mlp.up_proj.weight"] = [I, C]
        shapes[p + "mlp.down_proj.weight"] = [C, I]
        shapes[p + "input_layernorm.weight"] = [C]
        shapes[p + "post_attention_layernorm.weight"] = [C]
    # k / 256, |k| <= 127: 7 significant bits, exact in float16 (11) and bfloat16 (8).
    return {name: torch.randint(-127, 128, shape, generator=gen).float() / 256 for name, shape in shapes.items()}


def tokenizer_json():
    table = bytes_to_unicode()
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": [], "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                  "vocab": {table[b]: b for b in range(256)}, "merges": []},
    }


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, ensure_ascii=False)
        f.write("\n")


def write_folder(name, shards):
    """shards: list of (file name, {tensor name: tensor}); one shard is written as model.safetensors."""
    folder = os.path.join(HERE, name)
    os.makedirs(folder, exist_ok=True)
    for path in os.listdir(folder):
        os.remove(os.path.join(folder, path))
    write_json(os.path.join(folder, "config.json"), CONFIG)
    write_json(os.path.join(folder, "tokenizer.json"), tokenizer_json())
    weight_map = {}
    total = 0
    for file_name, tensors in shards:
        with open(os.path.join(folder, file_name), "wb") as f:
            f.write(serialize(tensors, {"format": "pt"}))
        for tname, t in tensors.items():
            weight_map[tname] = file_name
            total += len(raw_bytes(t))
    if len(shards) > 1:
        write_json(os.path.join(folder, "model.safetensors.index.json"),
                   {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))})
    return {tname: f32_bits(t) for _, tensors in shards for tname, t in tensors.items()}


def main():
    gen = torch.Generator().manual_seed(1212)
    sd = state_dict(gen)
    expected = {"config": CONFIG, "folders": {}}
    expected["folders"]["f32"] = write_folder("f32", [("model.safetensors", sd)])
    expected["folders"]["f16"] = write_folder("f16", [("model.safetensors", {k: v.half() for k, v in sd.items()})])
    bf16 = {k: v.bfloat16() for k, v in sd.items()}
    bf16["lm_head.weight"] = bf16["model.embed_tokens.weight"].clone()
    names = sorted(bf16)
    half = len(names) // 2
    expected["folders"]["bf16-sharded"] = write_folder("bf16-sharded", [
        ("model-00001-of-00002.safetensors", {k: bf16[k] for k in names[:half]}),
        ("model-00002-of-00002.safetensors", {k: bf16[k] for k in names[half:]}),
    ])
    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump(expected, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
