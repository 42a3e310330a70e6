"""The package's random generator, used by ``optrs.nn.init`` and dropout: ``optrs.manual_seed(0)``
makes initialisation and dropout masks reproducible (torch's ``manual_seed``). The streams are
NumPy's, so the numbers differ from torch's for the same seed. ``get_rng_state`` /
``set_rng_state`` save and restore it together with NumPy's global generator (``np.random.*``),
so a resumed run draws the same masks and batches as an uninterrupted one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import InvalidParamError

_generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reseeds the package generator (a fresh ``numpy.random.Generator``) and returns it."""
    global _generator
    _generator = np.random.default_rng(seed)
    return _generator


def get_generator() -> np.random.Generator:
    """The generator that init functions and dropout draw from when given none."""
    return _generator


def get_rng_state() -> dict[str, Any]:
    """``{"optrs": the package generator's bit-generator state, "numpy": np.random.get_state()}``
    (both as dicts of ints and arrays: a copy that ``optrs.save`` stores and ``set_rng_state``
    restores)."""
    return {"optrs": _generator.bit_generator.state, "numpy": np.random.get_state(legacy=False)}


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restores what ``get_rng_state`` returned: the package generator (in place, so holders of
    ``get_generator()`` see it) and NumPy's global one."""
    global _generator
    if not isinstance(state, Mapping) or set(state) != {"optrs", "numpy"}:
        raise InvalidParamError("set_rng_state takes the dict get_rng_state() returned, with keys 'optrs' and 'numpy'")
    generator_state = dict(state["optrs"])
    name = generator_state.get("bit_generator")
    bit_generator_class = getattr(np.random, str(name), None)
    if not (isinstance(bit_generator_class, type) and issubclass(bit_generator_class, np.random.BitGenerator)):
        raise InvalidParamError(f"the 'optrs' state names the bit generator {name!r}, which NumPy does not have")
    if type(_generator.bit_generator) is not bit_generator_class:
        _generator = np.random.Generator(bit_generator_class())
    _generator.bit_generator.state = generator_state
    np.random.set_state(dict(state["numpy"]))


__all__ = ["manual_seed", "get_generator", "get_rng_state", "set_rng_state"]
