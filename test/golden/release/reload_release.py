"""Reload an open release written by `ajar release open` in plain PyTorch and reproduce `ajar eval`'s loss.

    /usr/bin/python3 test/golden/release/reload_release.py RELEASE_DIR TEXT_FILE [BLOCK_SIZE]

Prints {"loss", "tokens"} for ajar eval's windowing (consecutive windows of BLOCK_SIZE tokens, default the model's
n_positions; every token after the first of a window predicted; mean cross-entropy in nats).

Nothing here comes from ajar: the text is tokenised with the release's own files by independent code (a
character-level release, tokenizer_class AjarCharTokenizer or a WordLevel tokenizer.json, by looking each character up in vocab.json; a GPT-2
BPE release by OpenAI's reference encoder, ../gpt2-vocab/gpt2_encoder_ref.py, over the release's vocab.json and
merges.txt), and the model is GPT2LMHeadModel as transformers computes it, from config.json and model.safetensors
(../train/reload_trained.py, plain torch and a hand-written safetensors reader). Debian's python3-torch 1.13,
python3-numpy and python3-regex are enough.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "train"))
sys.path.insert(0, os.path.join(HERE, "..", "gpt2-vocab"))
sys.path.insert(0, os.path.join(HERE, "..", "llama"))

import torch  # noqa: E402

from reload_trained import read_safetensors, windowed_loss  # noqa: E402

# The Llama family is computed by make_llama_tiny.forward, transformers' modeling_llama.py in plain torch.
LLAMA_FAMILY = {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"}


def is_char_tokenizer_json(release_dir):
    """A release's character-level tokenizer.json (a WordLevel model, as `ajar release open` writes it since issue 15)."""
    path = os.path.join(release_dir, "tokenizer.json")
    if not os.path.exists(path):
        return False
    with open(path, encoding="utf-8") as f:
        return json.load(f)["model"]["type"] == "WordLevel"


def tokenize(release_dir, text):
    """Token ids of text under the release's tokenizer, without ajar."""
    with open(os.path.join(release_dir, "tokenizer_config.json"), encoding="utf-8") as f:
        tok_config = json.load(f)
    with open(os.path.join(release_dir, "vocab.json"), encoding="utf-8") as f:
        vocab = json.load(f)
    if tok_config.get("tokenizer_class") == "AjarCharTokenizer" or is_char_tokenizer_json(release_dir):
        return [vocab[c] for c in text]
    from gpt2_encoder_ref import Encoder  # needs python3-regex

    with open(os.path.join(release_dir, "merges.txt"), encoding="utf-8") as f:
        lines = f.read().split("\n")
    merges = [tuple(line.split()) for line in lines[1:] if line.strip() != ""]
    ids = Encoder(vocab, merges).encode(text)
    if tok_config.get("add_bos_token"):
        bos = tok_config["bos_token"]
        ids = [vocab[bos if isinstance(bos, str) else bos["content"]]] + ids
    return ids


def llama_spec(cfg):
    """make_llama_tiny's model description from a Llama / Mistral / Qwen2 config.json, with transformers' defaults."""
    qwen2 = cfg["architectures"][0] == "Qwen2ForCausalLM"
    mistral = cfg["architectures"][0] == "MistralForCausalLM"
    return dict(
        hidden=cfg["hidden_size"], heads=cfg["num_attention_heads"],
        kv=cfg.get("num_key_value_heads") or cfg["num_attention_heads"], head_dim=cfg.get("head_dim"),
        inter=cfg["intermediate_size"], layers=cfg["num_hidden_layers"], vocab=cfg["vocab_size"],
        tie=cfg.get("tie_word_embeddings", False), theta=cfg.get("rope_theta", 10000.0),
        rope_scaling=cfg.get("rope_scaling"), eps=cfg.get("rms_norm_eps", 1e-6),
        qkv_bias=qwen2, window=cfg.get("sliding_window", 4096) if mistral else None,
    )


def llama_loss(w, cfg, ids, block):
    from make_llama_tiny import forward  # noqa: E402

    m = llama_spec(cfg)
    return windowed_loss(w, cfg, ids, block, lambda w, cfg, x: forward(m, w, x))


def release_loss(release_dir, ids, block=None):
    """Mean next-token loss of ids with ajar eval's windows, computed in float32 and summed in float64."""
    with open(os.path.join(release_dir, "config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    w = read_safetensors(os.path.join(release_dir, "model.safetensors"))
    if cfg["architectures"][0] in LLAMA_FAMILY:
        tied = cfg.get("tie_word_embeddings", False)
        assert ("lm_head.weight" in w) != tied, "lm_head stored exactly when untied, as transformers saves it"
        return llama_loss(w, cfg, ids, block or cfg["max_position_embeddings"])
    assert "lm_head.weight" not in w, "the tied lm_head is stored once, as transformers saves it"
    return windowed_loss(w, cfg, ids, block or cfg["n_positions"])


def main():
    release_dir, text_path = sys.argv[1], sys.argv[2]
    block = int(sys.argv[3]) if len(sys.argv) > 3 else None
    torch.set_num_threads(1)
    with open(text_path, encoding="utf-8", newline="") as f:
        text = f.read()
    print(json.dumps(release_loss(release_dir, tokenize(release_dir, text), block)))


if __name__ == "__main__":
    main()
