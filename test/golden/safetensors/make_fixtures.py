"""Writes the safetensors golden fixtures beside this file; the outside reference for test/io/*.test.ts.

Run from the repository root with PyTorch (tested with torch 1.13):  python3 test/golden/safetensors/make_fixtures.py
The writer below follows the safetensors format specification by hand (https://github.com/huggingface/safetensors,
"Format"), mimicking the reference library's layout: tensors sorted by descending dtype alignment then name,
compact JSON with "__metadata__" first, header padded with spaces to a multiple of 8 bytes, little-endian data.
expected.json holds, for every tensor, the float32 bit patterns PyTorch gets from `.float()` (bits, not decimals,
so -0.0, inf and NaN payloads compare exactly).
"""
import json
import os
import struct

import torch

HERE = os.path.dirname(os.path.abspath(__file__))

# The reference library's Dtype enum order (its sort key); names sort by UTF-8 bytes, as Rust's String::cmp does.
DTYPE_RANK = ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64", "I64", "U64"]
TORCH_DTYPE = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}
INT_VIEW = {torch.float32: torch.int32, torch.float16: torch.int16, torch.bfloat16: torch.int16}


def raw_bytes(t):
    """Little-endian bytes of a contiguous float tensor (viewed as an int of the same width for numpy)."""
    ints = t.contiguous().view(INT_VIEW[t.dtype]).numpy()
    return ints.astype(ints.dtype.newbyteorder("<")).tobytes()


def serialize(tensors, metadata=None):
    """The bytes of a safetensors file holding `tensors` (name -> torch tensor), per the specification."""
    order = sorted(tensors, key=lambda name: (-DTYPE_RANK.index(TORCH_DTYPE[tensors[name].dtype]), name.encode("utf-8")))
    header = {}
    if metadata is not None:
        header["__metadata__"] = {k: metadata[k] for k in sorted(metadata, key=lambda k: k.encode("utf-8"))}
    chunks = []
    offset = 0
    for name in order:
        t = tensors[name]
        data = raw_bytes(t)
        header[name] = {"dtype": TORCH_DTYPE[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        chunks.append(data)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def f32_bits(t):
    """The float32 bit patterns (as unsigned ints) PyTorch produces for `t.float()`."""
    return [x & 0xFFFFFFFF for x in t.float().contiguous().view(torch.int32).flatten().tolist()]


def from_bits(bits, dtype):
    """A tensor of `dtype` holding exactly the given unsigned bit patterns."""
    width = 32 if dtype == torch.float32 else 16
    signed = [b - (1 << width) if b >= 1 << (width - 1) else b for b in bits]
    return torch.tensor(signed, dtype=INT_VIEW[dtype]).view(dtype)


def expected_entry(t):
    return {"dtype": TORCH_DTYPE[t.dtype], "shape": list(t.shape), "bits": f32_bits(t)}


def write(path, data):
    with open(os.path.join(HERE, path), "wb") as f:
        f.write(data)


def main():
    torch.manual_seed(0)
    expected = {}

    # 1. One file with every widened dtype, special values included.
    f16_special = from_bits([
        0x0001,  # smallest subnormal, 2^-24
        0x03FF,  # largest subnormal
        0x8001,  # negative subnormal
        0x0400,  # smallest normal, 2^-14
        0x7BFF,  # 65504, largest finite
        0x7C00, 0xFC00,  # +inf, -inf
        0x7E00,  # quiet NaN
        0x7C01,  # signalling NaN: PyTorch's conversion quiets it (sets the quiet bit, keeps the payload)
        0xFE01,  # negative NaN with payload
        0x8000,  # -0.0
        0x3C00,  # 1.0
    ], torch.float16)
    bf16_special = from_bits([0x0001, 0x8001, 0x7F80, 0xFF80, 0x7FC0, 0x7F81, 0x8000, 0x3F80, 0x7F7F], torch.bfloat16)
    f32_special = from_bits([0x00000001, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0x7F800001, 0x3F800000],
                            torch.float32)
    dtypes = {
        "f32.randn": torch.randn(2, 3),
        "f32.special": f32_special,
        "f16.randn": torch.randn(3, 4).half(),
        "f16.special": f16_special.reshape(3, 4),
        "bf16.randn": torch.randn(5).bfloat16(),
        "bf16.special": bf16_special.reshape(3, 1, 3),
        "scalar": torch.tensor(2.5),  # shape []
        "empty": torch.zeros(0, 3),  # zero elements, zero bytes
        "empty.f16": torch.zeros(4, 0).half(),
    }
    dtypes_meta = {"format": "pt", "note": "ajar golden fixture"}
    write("dtypes.safetensors", serialize(dtypes, dtypes_meta))
    expected["dtypes"] = {
        "metadata": dtypes_meta,
        "tensors": {name: expected_entry(t) for name, t in dtypes.items()},
    }

    # 2. An F32 tensor set for the byte-for-byte serializer comparison (names chosen to exercise sorting).
    roundtrip = {
        "wte.weight": torch.randn(4, 3),
        "h.0.attn.bias": torch.randn(3),
        "h.10.mlp.weight": torch.randn(2, 2),
        "h.9.mlp.weight": torch.randn(2, 2),
        "10": torch.tensor([1.0, -0.0]),
        "Z": torch.tensor(7.0),
        "\u00e9t\u00e9": torch.randn(1, 1, 2),  # non-ASCII name, sorted by UTF-8 bytes
        "\u4e2d": torch.randn(1),
        # U+1F600 sorts after U+FF5E by UTF-8 bytes (and code points) but before it by UTF-16 code units.
        "\U0001F600": torch.randn(1),
        "\uff5e": torch.randn(1),
        "empty": torch.zeros(0),
    }
    roundtrip_meta = {"format": "pt", "b": "2", "a": "1 \"quoted\" \\ and\nnewline"}
    write("roundtrip.safetensors", serialize(roundtrip, roundtrip_meta))
    expected["roundtrip"] = {
        "metadata": roundtrip_meta,
        "tensors": {name: expected_entry(t) for name, t in roundtrip.items()},
    }
    # The same set with no metadata (the header then has no "__metadata__" key at all).
    write("roundtrip_nometa.safetensors", serialize(roundtrip))

    # 3. A sharded Hugging Face model folder: two shards plus model.safetensors.index.json.
    folder = os.path.join(HERE, "sharded")
    os.makedirs(folder, exist_ok=True)
    shard1 = {"wte.weight": torch.randn(5, 4), "h.0.ln_1.weight": torch.randn(4).half()}
    shard2 = {"h.0.ln_1.bias": torch.randn(4).bfloat16(), "ln_f.weight": torch.randn(4)}
    names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    weight_map = {}
    total = 0
    for name, shard in zip(names, [shard1, shard2]):
        data = serialize(shard, {"format": "pt"})
        write(os.path.join("sharded", name), data)
        for tname, t in shard.items():
            weight_map[tname] = name
            total += len(raw_bytes(t))
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")
    config = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_embd": 4, "n_layer": 1, "vocab_size": 5}
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    expected["sharded"] = {
        "config": config,
        "tensors": {name: expected_entry(t) for name, t in {**shard1, **shard2}.items()},
    }

    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
