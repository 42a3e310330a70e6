"""Records torch 2.13's results for the torch-API cases (tests/torch_api/cases_*.py) into
tests/reference/torch_api.npz, so that CI checks optrs against them without torch.

    /path/to/torch-venv/bin/python tests/reference/make_torch_api.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from torch_api.harness import RECORDED, record  # noqa: E402

if __name__ == "__main__":
    torch.set_num_threads(1)
    count = record(torch)
    print(f"recorded {count} cases with torch {torch.__version__} into {RECORDED}")
