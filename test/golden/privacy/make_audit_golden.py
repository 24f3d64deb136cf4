"""Write the privacy audit's reference values (expected.json) for test/eval/audit.test.ts, in plain PyTorch and numpy.

    /usr/bin/python3 test/golden/privacy/make_audit_golden.py

The script writes the inputs:
  members.txt / non_members.txt: the lines of 6 to 32 characters of ../release/train.txt, and 60 such lines from
    further on in examples/data/tinyshakespeare.txt that are not among them;
  memorised/: a 1-layer character model that `ajar train` (bin/ajar.js, so run `npm run build` first) overfits on
    members.txt for 150 steps with one canary of the format "the key is {letters:2}" planted 20 times (|R| = 26^2 =
    676, so every secret is ranked);
  canaries.json: that run's canary file, plus a second secret that was not planted ("the key is lp"), to rank too.
Then, with nothing from ajar, it computes the references on memorised/ as transformers' GPT2LMHeadModel does, by
../train/reload_trained.py (plain torch, a hand-written safetensors reader), tokenising by looking each character up
in its vocab.json, and writes expected.json with
  member_losses / non_member_losses: each line's mean next-token cross-entropy (nats; the first character is not
    predicted), in float32 and summed in float64;
  auc: sklearn's roc_auc_score(y, -loss) with members y = 1, written out in numpy as the Mann-Whitney statistic with
    average ranks for ties; advantage: max |TPR - FPR| over sklearn's roc_curve thresholds (every distinct score);
  canaries: each canary's negative log-likelihood (sum over its predicted characters) and its rank among the secrets
    of the format that are not canaries, itself included (675 candidates: 1 + those whose negative log-likelihood is
    at most the canary's); exposure = log2 675 - log2 rank (Carlini et al. 2019, definition 4, over that set);
  extraction: of the member lines with at least 12 characters, how many greedy (argmax) continuations of the first 6
    characters reproduce the next 6 exactly.
"""
import itertools
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "train"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from reload_trained import gpt2_logits, read_safetensors  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
MODEL = os.path.join(HERE, "memorised")
FORMAT = "the key is {letters:2}"
UNPLANTED = "the key is lp"
PREFIX, CONTINUATION = 6, 6
MODEL_FILES = ["config.json", "generation_config.json", "model.safetensors", "tokenizer_config.json", "vocab.json"]


def lines_of(path):
    with open(path, encoding="utf-8") as f:
        return [l for l in f.read().split("\n") if 6 <= len(l) <= 32 and l.strip() != ""]


def nll(w, cfg, ids):
    """Per predicted token negative log-likelihoods of ids (the first is not predicted)."""
    x = torch.tensor([ids])
    with torch.no_grad():
        logits = gpt2_logits(w, cfg, x)[0]  # (T, V)
        return F.cross_entropy(logits[:-1], x[0, 1:], reduction="none").double().numpy()


def greedy(w, cfg, prefix, k):
    seq = list(prefix)
    with torch.no_grad():
        for _ in range(k):
            seq.append(int(gpt2_logits(w, cfg, torch.tensor([seq]))[0, -1].argmax()))
    return seq[len(prefix):]


def roc_auc(y, score):
    """sklearn.metrics.roc_auc_score for binary y: (sum of the positives' average ranks - P(P+1)/2) / (P N)."""
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score))
    s = score[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    P, N = int(y.sum()), int((1 - y).sum())
    return float((ranks[y == 1].sum() - P * (P + 1) / 2) / (P * N))


def max_advantage(y, score):
    """max |TPR - FPR| over sklearn.metrics.roc_curve's thresholds: predict member when score >= t, t every distinct score."""
    best = 0.0
    for t in np.unique(score):
        tpr = float((score[y == 1] >= t).mean())
        fpr = float((score[y == 0] >= t).mean())
        best = max(best, abs(tpr - fpr))
    return best


def train_memorised():
    """`ajar train` the overfitted model with its canary in a temporary folder; copy the model and the canary file here."""
    tmp = tempfile.mkdtemp(prefix="ajar-audit-golden-")
    try:
        for name in ("members.txt", "non_members.txt"):
            shutil.copyfile(os.path.join(HERE, name), os.path.join(tmp, name))
        subprocess.run(["node", os.path.join(ROOT, "bin", "ajar.js"), "train", "--data", os.path.join(tmp, "members.txt"),
                        "--val-data", os.path.join(tmp, "non_members.txt"), "--n-layer", "1", "--n-head", "2", "--n-embd", "32",
                        "--block-size", "32", "--batch-size", "16", "--max-iters", "150", "--eval-interval", "400", "--eval-iters", "2",
                        "--warmup-iters", "10", "--lr", "1e-2", "--canaries", "1", "--canary-format", FORMAT, "--canary-repeats", "20",
                        "--keep-best", "false", "--sample-tokens", "0", "--out", os.path.join(tmp, "m")], check=True, cwd=ROOT)
        shutil.rmtree(MODEL, ignore_errors=True)
        os.makedirs(MODEL)
        for name in MODEL_FILES:
            shutil.copyfile(os.path.join(tmp, "m", name), os.path.join(MODEL, name))
        with open(os.path.join(tmp, "m.canaries.json"), encoding="utf-8") as f:
            canaries = json.load(f)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    canaries["data"] = "members.txt"
    canaries["model"] = "memorised"
    canaries["canaries"].append({"text": UNPLANTED, "secret": UNPLANTED[-2:]})
    with open(os.path.join(HERE, "canaries.json"), "w", encoding="utf-8") as f:
        json.dump(canaries, f, indent=2)
        f.write("\n")
    return [c["text"] for c in canaries["canaries"]]


def main():
    torch.set_num_threads(1)
    members = lines_of(os.path.join(HERE, "..", "release", "train.txt"))
    shakespeare = os.path.join(ROOT, "examples", "data", "tinyshakespeare.txt")
    non_members = [l for l in lines_of(shakespeare)[2000:] if l not in set(members)][:60]
    for name, lines in (("members.txt", members), ("non_members.txt", non_members)):
        with open(os.path.join(HERE, name), "w", encoding="utf-8") as f:
            f.write("".join(l + "\n" for l in lines))
    canaries = train_memorised()

    with open(os.path.join(MODEL, "config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    with open(os.path.join(MODEL, "vocab.json"), encoding="utf-8") as f:
        vocab = json.load(f)
    w = read_safetensors(os.path.join(MODEL, "model.safetensors"))
    tok = lambda text: [vocab[c] for c in text]  # noqa: E731

    m_loss = [float(nll(w, cfg, tok(l)).mean()) for l in members]
    n_loss = [float(nll(w, cfg, tok(l)).mean()) for l in non_members]
    y = np.array([1] * len(m_loss) + [0] * len(n_loss))
    score = -np.array(m_loss + n_loss)

    others = ["the key is " + a + b for a, b in itertools.product("abcdefghijklmnopqrstuvwxyz", repeat=2)]
    others = [s for s in others if s not in canaries]
    other_nll = [float(nll(w, cfg, tok(s)).sum()) for s in others]
    canary_out = []
    for c in canaries:
        c_nll = float(nll(w, cfg, tok(c)).sum())
        rank = 1 + sum(1 for v in other_nll if v <= c_nll)
        canary_out.append({"nll": c_nll, "rank": rank, "exposure": math.log2(len(others) + 1) - math.log2(rank)})

    long_enough = [tok(l) for l in members if len(l) >= PREFIX + CONTINUATION]
    extracted = sum(1 for ids in long_enough if greedy(w, cfg, ids[:PREFIX], CONTINUATION) == ids[PREFIX:PREFIX + CONTINUATION])

    out = {
        "member_losses": m_loss, "non_member_losses": n_loss,
        "auc": roc_auc(y, score), "advantage": max_advantage(y, score),
        "canaries": canary_out,
        "extraction": {"prefix_tokens": PREFIX, "continuation_tokens": CONTINUATION, "examples": len(long_enough), "extracted": extracted},
    }
    with open(os.path.join(HERE, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, indent=2)
        f.write("\n")
    print(json.dumps({k: out[k] for k in ("auc", "advantage", "canaries", "extraction")}))


if __name__ == "__main__":
    main()
