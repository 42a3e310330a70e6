"""The package's random generator, used by ``optrs.nn.init`` and dropout: ``optrs.manual_seed(0)``
makes initialisation and dropout masks reproducible (torch's ``manual_seed``). The streams are
NumPy's, so the numbers differ from torch's for the same seed."""

from __future__ import annotations

import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reseeds the package generator (a fresh ``numpy.random.Generator``) and returns it."""
    global _generator
    _generator = np.random.default_rng(seed)
    return _generator


def get_generator() -> np.random.Generator:
    """The generator that init functions and dropout draw from when given none."""
    return _generator


__all__ = ["manual_seed", "get_generator"]
