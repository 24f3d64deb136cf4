"""The first steps of nanoGPT's CPU Shakespeare recipe in PyTorch, as the reference curve for
`ajar train --preset shakespeare-char` (test/train/nanogpt-curve.test.ts).

Run from the repository root with Debian's python3-torch 1.13:

    /usr/bin/python3 test/golden/train/make_nanogpt_curve.py

Runs bench/nanogpt_shakespeare.py (nanoGPT's model.py and train.py, drawing from torch's generator in nanoGPT's
order) with seed 1337 for 30 iterations, evaluating every 15 over 2 batches, one thread, and writes every
training step's loss and every evaluation to nanogpt_curve.json beside this script.
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..", "..")
ARGS = ["--seed", "1337", "--iters", "30", "--eval-interval", "15", "--eval-iters", "2", "--log-steps"]
out = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "nanogpt_shakespeare.py"), *ARGS],
                     check=True, capture_output=True, text=True, env={**os.environ, "AJAR_THREADS": "1"}).stdout
lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
result = {
    "args": ARGS,
    "steps": [l for l in lines if "iter" in l],
    "evals": [{k: l[k] for k in ("step", "train_loss", "val_loss")} for l in lines if "step" in l],
}
with open(os.path.join(HERE, "nanogpt_curve.json"), "w") as f:
    json.dump(result, f, indent=1)
print("wrote", os.path.join(HERE, "nanogpt_curve.json"))
