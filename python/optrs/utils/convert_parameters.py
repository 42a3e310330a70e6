"""``torch.nn.utils``' ``parameters_to_vector`` and ``vector_to_parameters`` for NumPy params."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._plumbing.params import ParamLike, array_of
from ..errors import InvalidParamError, ParamDTypeError


def _arrays(parameters: Iterable[ParamLike]) -> list[NDArray[Any]]:
    if isinstance(parameters, np.ndarray):
        raise ParamDTypeError("parameters must be an iterable of arrays; wrap a single one in a list: [param]")
    return [array_of(p, f"parameters[{i}]") for i, p in enumerate(parameters)]


def parameters_to_vector(parameters: Iterable[ParamLike]) -> NDArray[Any]:
    """All params flattened and concatenated into one new 1-D array (params may be ndarrays or
    objects with an ndarray ``.data``; mixed dtypes promote, as ``torch.cat`` does)."""
    arrays = _arrays(parameters)
    if not arrays:
        raise InvalidParamError("parameters_to_vector got no parameters; pass a non-empty list")
    return np.concatenate([a.reshape(-1) for a in arrays])


def vector_to_parameters(vec: NDArray[Any], parameters: Iterable[ParamLike]) -> None:
    """Copies consecutive slices of the 1-D ``vec`` into the params, in place.

    Unlike torch, which points each param's ``.data`` at a view of ``vec``, the existing arrays
    are written (so optimizers holding them see the new values), cast to each param's dtype.
    Everything is checked first: ``vec`` must have exactly as many elements as the params in all,
    and every param must be writeable.
    """
    if not isinstance(vec, np.ndarray):
        raise ParamDTypeError(f"expected numpy.ndarray, but got: {type(vec).__name__}")
    if vec.ndim != 1:
        raise InvalidParamError(f"vec must be 1-D, got shape {vec.shape}; pass vec.reshape(-1)")
    arrays = _arrays(parameters)
    total = sum(a.size for a in arrays)
    if total != vec.size:
        raise InvalidParamError(f"vec has {vec.size} elements but the parameters have {total} in all")
    for i, a in enumerate(arrays):
        if not a.flags.writeable:
            raise InvalidParamError(f"parameters[{i}] is read-only; it is written in place, so make it writeable")
        if not np.can_cast(vec.dtype, a.dtype, "same_kind"):
            raise ParamDTypeError(f"vec has dtype {vec.dtype}, which cannot be cast to parameters[{i}]'s {a.dtype}")
    offset = 0
    for a in arrays:
        np.copyto(a, vec[offset:offset + a.size].reshape(a.shape), casting="same_kind")
        offset += a.size
