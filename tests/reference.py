"""Loading the torch reference trajectories under tests/reference/ (format: its README)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REFERENCE_DIR = Path(__file__).parent / "reference" / "torch-2.13"

# Tolerances PyTorch's own CPU kernels meet against these files (reference README).
TOLERANCE = {"float64": dict(rtol=1e-9, atol=1e-12), "float32": dict(rtol=2e-5, atol=1e-6)}


@dataclass
class Trajectory:
    name: str
    optimizer: str
    kwargs: dict[str, Any]
    dtype: str
    steps: int
    initial: list[np.ndarray]
    grads: list[list[np.ndarray]]  # grads[t][i]
    params: list[list[np.ndarray]]  # params[t][i], after step t + 1

    def replay_kwargs(self) -> dict[str, Any]:
        """kwargs with JSON lists turned back into the tuples torch took."""
        return {k: tuple(v) if isinstance(v, list) else v for k, v in self.kwargs.items()}


def optimizer_files() -> list[Path]:
    return sorted(REFERENCE_DIR.glob("optim_*.npz"))


def load_trajectory(path: Path) -> Trajectory:
    with np.load(path) as data:
        meta = json.loads(str(data["meta"]))
        n, steps = meta["n_params"], meta["steps"]
        initial = [data[f"p0_{i}"] for i in range(n)]
        grads = [[data[f"g_{t}_{i}"] for i in range(n)] for t in range(steps)] if "g_0_0" in data else []
        params = [[data[f"p_{t + 1}_{i}"] for i in range(n)] for t in range(steps)]
    return Trajectory(path.stem, meta["optimizer"], meta["kwargs"], meta["dtype"], steps, initial, grads, params)
