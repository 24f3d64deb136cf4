"""Write the open-release fixtures: char-tiny/ (an open release of a tiny character-level model trained by ajar)
and expected.json (PyTorch's loss on that release and on an open release of ../gpt2-tiny).

    npm run build && /usr/bin/python3 test/golden/release/make_release_golden.py

Steps, all through ajar's CLI (bin/ajar.js) in a temporary folder:
  1. `ajar train` a 1-layer, width-16 character model on train.txt (validation: eval.txt), 60 steps;
  2. `ajar eval --record` it on eval.txt, so its results file holds a training and an evaluation record;
  3. `ajar release open` it (MIT) into char-tiny/ here, which is committed;
  4. `ajar release open` a copy of ../gpt2-tiny (Apache-2.0, --no-eval) into the temporary folder.
Then reload_release.py computes each release's loss in plain PyTorch from config.json and model.safetensors alone,
tokenising without ajar, and the results go to expected.json. test/release/pytorch.test.ts checks `ajar eval`
against them within 1e-4 relative, and reruns this comparison live when torch is importable.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, HERE)

import torch  # noqa: E402

from reload_release import release_loss, tokenize  # noqa: E402

GPT2_FILES = ["config.json", "generation_config.json", "model.safetensors", "tokenizer_config.json", "vocab.json", "merges.txt"]


def ajar(*args):
    subprocess.run(["node", os.path.join(ROOT, "bin", "ajar.js"), *args], check=True, cwd=ROOT)


def read(path):
    with open(path, encoding="utf-8", newline="") as f:
        return f.read()


def main():
    torch.set_num_threads(1)
    tmp = tempfile.mkdtemp(prefix="ajar-release-golden-")
    try:
        # Copies of the data, so ajar's token cache files land in the temporary folder.
        train_txt = os.path.join(tmp, "train.txt")
        eval_txt = os.path.join(tmp, "eval.txt")
        shutil.copyfile(os.path.join(HERE, "train.txt"), train_txt)
        shutil.copyfile(os.path.join(HERE, "eval.txt"), eval_txt)
        char_model = os.path.join(tmp, "char-model")
        ajar("train", "--data", train_txt, "--val-data", eval_txt, "--tokenizer", "char", "--n-layer", "1", "--n-head", "2",
             "--n-embd", "16", "--block-size", "32", "--batch-size", "8", "--max-iters", "60", "--eval-interval", "20",
             "--eval-iters", "4", "--lr", "5e-3", "--warmup-iters", "5", "--sample-tokens", "0", "--seed", "7", "--out", char_model)
        ajar("eval", "--model", char_model, "--data", eval_txt, "--record")
        char_release = os.path.join(HERE, "char-tiny")
        shutil.rmtree(char_release, ignore_errors=True)
        ajar("release", "open", "--model", char_model, "--out", char_release, "--license", "mit", "--author", "ajar contributors",
             "--name", "char-tiny")

        gpt2_model = os.path.join(tmp, "gpt2-tiny")
        os.mkdir(gpt2_model)
        for name in GPT2_FILES:
            shutil.copyfile(os.path.join(ROOT, "test", "golden", "gpt2-tiny", name), os.path.join(gpt2_model, name))
        gpt2_release = os.path.join(tmp, "gpt2-tiny-release")
        ajar("release", "open", "--model", gpt2_model, "--out", gpt2_release, "--license", "apache-2.0", "--no-eval")

        gpt2_text = os.path.join(ROOT, "test", "golden", "gpt2-tiny", "eval.txt")
        char = release_loss(char_release, tokenize(char_release, read(os.path.join(HERE, "eval.txt"))))
        gpt2 = release_loss(gpt2_release, tokenize(gpt2_release, read(gpt2_text)))
        expected = {
            "about": "PyTorch (reload_release.py) losses of open releases written by `ajar release open`; "
                     "written by make_release_golden.py",
            "torch_version": torch.__version__,
            "char_tiny": {"release": "char-tiny", "data": "eval.txt", "block_size": 32, **char},
            "gpt2_tiny": {"release": "ajar release open of ../gpt2-tiny", "data": "../gpt2-tiny/eval.txt", "block_size": 128, **gpt2},
        }
        with open(os.path.join(HERE, "expected.json"), "w", encoding="utf-8") as f:
            json.dump(expected, f, indent=1)
            f.write("\n")
        print(json.dumps(expected, indent=1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
