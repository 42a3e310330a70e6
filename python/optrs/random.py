"""The package's random generators, used by ``optrs.nn.init``, dropout and ``optrs.utils.data``'s
samplers: ``optrs.manual_seed(0)`` makes initialisation, dropout masks and shuffled batches
reproducible (torch's ``manual_seed``). ``Generator`` is torch's ``torch.Generator`` API
(``manual_seed``, ``seed``, ``initial_seed``, ``get_state``/``set_state``) on NumPy's PCG64, and a
``numpy.random.Generator`` too, so it draws with NumPy's methods. The streams are NumPy's, so the
numbers differ from torch's for the same seed. ``get_rng_state`` / ``set_rng_state`` save and
restore the package generator together with NumPy's global one (``np.random.*``), so a resumed
run draws the same masks and batches as an uninterrupted one."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import InvalidParamError

# A fresh torch.Generator() starts from this seed; so does ours.
_DEFAULT_SEED = 67280421310721
_SEED_BOUND = 1 << 64


class Generator(np.random.Generator):
    """``torch.Generator(device="cpu")``: a PCG64 stream that ``manual_seed`` reseeds in place
    (holders of the object see the new stream). Being a ``numpy.random.Generator``, it has
    NumPy's methods (``integers``, ``permutation``, ``random``, ...), and NumPy's functions that
    take a generator take it. ``get_state`` returns the PCG64 state as a dict (torch returns a
    ByteTensor); ``set_state`` takes what ``get_state`` returned."""

    def __init__(self, device: str = "cpu") -> None:
        if str(device) != "cpu":
            raise InvalidParamError(f"optrs.Generator runs on the CPU only; got device={device!r}: pass 'cpu'")
        self._initial_seed = _DEFAULT_SEED
        super().__init__(np.random.PCG64(_DEFAULT_SEED))

    @property
    def device(self) -> str:
        return "cpu"

    def manual_seed(self, seed: int) -> Generator:
        """Reseeds in place and returns self. Seeds are integers in [-2**63, 2**64), negative
        ones taken modulo 2**64, as torch does."""
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise InvalidParamError(f"manual_seed expects an int seed, got {type(seed).__name__}")
        seed = int(seed)
        if not -(1 << 63) <= seed < _SEED_BOUND:
            raise InvalidParamError(f"Overflow when unpacking long long: the seed {seed} is outside [-2**63, 2**64)")
        seed %= _SEED_BOUND
        self.bit_generator.state = np.random.PCG64(seed).state
        self._initial_seed = seed
        return self

    def seed(self) -> int:
        """Reseeds from the operating system's entropy and returns the new seed."""
        seed = secrets.randbits(64)
        self.manual_seed(seed)
        return seed

    def initial_seed(self) -> int:
        """The seed of the last ``manual_seed`` or ``seed``."""
        return self._initial_seed

    def get_state(self) -> dict[str, Any]:
        """The PCG64 state (a dict of ints, a copy)."""
        return dict(self.bit_generator.state)

    def set_state(self, new_state: Mapping[str, Any]) -> Generator:
        """Restores what ``get_state`` returned; returns self."""
        state: Any = dict(new_state) if isinstance(new_state, Mapping) else {}
        if state.get("bit_generator") != "PCG64":
            raise InvalidParamError(f"the state names the bit generator {state.get('bit_generator')!r}; "
                                    "optrs.Generator is PCG64: pass what its get_state() returned")
        try:
            np.random.PCG64().state = state  # checked on a scratch generator: nothing half-set
        except (TypeError, ValueError, KeyError) as e:
            raise InvalidParamError(f"not a PCG64 state ({e}): pass what get_state() returned") from None
        self.bit_generator.state = state
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_generator, (self._initial_seed, self.get_state()))


def _rebuild_generator(initial_seed: int, state: dict[str, Any]) -> Generator:
    generator = Generator().set_state(state)
    generator._initial_seed = initial_seed
    return generator


# The package generator starts from the operating system's entropy (torch's from a fixed seed).
default_generator = Generator()
default_generator.seed()


def manual_seed(seed: int) -> Generator:
    """Reseeds the package generator in place and returns it (torch's ``manual_seed``)."""
    return default_generator.manual_seed(seed)


def initial_seed() -> int:
    """The package generator's seed (torch's ``initial_seed``)."""
    return default_generator.initial_seed()


def get_generator() -> Generator:
    """The generator that init functions, dropout and samplers draw from when given none."""
    return default_generator


def get_rng_state() -> dict[str, Any]:
    """``{"optrs": the package generator's bit-generator state, "numpy": np.random.get_state()}``
    (both as dicts of ints and arrays: a copy that ``optrs.save`` stores and ``set_rng_state``
    restores)."""
    return {"optrs": default_generator.get_state(), "numpy": np.random.get_state(legacy=False)}


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restores what ``get_rng_state`` returned: the package generator (in place, so holders of
    ``get_generator()`` see it) and NumPy's global one."""
    if not isinstance(state, Mapping) or set(state) != {"optrs", "numpy"}:
        raise InvalidParamError("set_rng_state takes the dict get_rng_state() returned, with keys 'optrs' and 'numpy'")
    generator_state = dict(state["optrs"])
    name = generator_state.get("bit_generator")
    if name != "PCG64":
        raise InvalidParamError(f"the 'optrs' state names the bit generator {name!r}; optrs's generator is PCG64: "
                                "pass the dict get_rng_state() returned")
    previous = default_generator.get_state()
    default_generator.set_state(generator_state)
    try:
        np.random.set_state(dict(state["numpy"]))
    except Exception:
        default_generator.set_state(previous)
        raise


__all__ = ["Generator", "default_generator", "manual_seed", "initial_seed", "get_generator", "get_rng_state",
           "set_rng_state"]
