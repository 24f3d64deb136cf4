"""The first steps of nanoGPT's CPU Shakespeare recipe in PyTorch, as the reference curve for
`ajar train --preset shakespeare-char` (test/train/nanogpt-curve.test.ts).

Run from the repository root with Debian's python3-torch 1.13:

    /usr/bin/python3 test/golden/train/make_nanogpt_curve.py

Runs bench/nanogpt_shakespeare.py (nanoGPT's model.py and train.py, drawing from torch's generator in nanoGPT's
order) with seed 1337 on one thread, twice: the preset as it is (dropout 0) for 30 iterations evaluating every 15
over 2 batches, and with dropout 0.2 for 10 iterations evaluating every 10 over 1 batch. Writes every training
step's loss and every evaluation of each run to nanogpt_curve.json beside this script.
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..", "..")
RUNS = {
    "dropout0": ["--seed", "1337", "--iters", "30", "--eval-interval", "15", "--eval-iters", "2", "--log-steps"],
    "dropout02": ["--seed", "1337", "--iters", "10", "--eval-interval", "10", "--eval-iters", "1", "--dropout", "0.2",
                  "--log-steps"],
}


def run(args):
    out = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "nanogpt_shakespeare.py"), *args],
                         check=True, capture_output=True, text=True, env={**os.environ, "AJAR_THREADS": "1"}).stdout
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return {
        "args": args,
        "steps": [l for l in lines if "iter" in l],
        "evals": [{k: l[k] for k in ("step", "train_loss", "val_loss")} for l in lines if "step" in l],
    }


result = {name: run(args) for name, args in RUNS.items()}
with open(os.path.join(HERE, "nanogpt_curve.json"), "w") as f:
    json.dump(result, f, indent=1)
print("wrote", os.path.join(HERE, "nanogpt_curve.json"))
