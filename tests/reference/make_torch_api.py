"""Records torch 2.13's results for the torch-API cases (tests/torch_api/cases_*.py) into
tests/reference/torch_api/<module>.npz, so that CI checks optrs against them without torch.

    /path/to/torch-venv/bin/python tests/reference/make_torch_api.py [cases_tensor ...]

With module names, only those are recorded again.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from torch_api.harness import CASE_MODULES, RECORDED, record  # noqa: E402

if __name__ == "__main__":
    torch.set_num_threads(1)
    count = record(torch, tuple(sys.argv[1:]) or CASE_MODULES)
    print(f"recorded {count} cases with torch {torch.__version__} into {RECORDED}")
