"""``check_finite``: which params (or their grads) hold a NaN or an infinity."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._finite import nonfinite_kind
from ..errors import AnomalyError, ParamDTypeError


def _named(parameters: Any) -> list[tuple[str | int, Any]]:
    if callable(getattr(parameters, "named_parameters", None)):
        return list(parameters.named_parameters())
    if isinstance(parameters, Mapping):
        return list(parameters.items())
    if isinstance(parameters, np.ndarray) or hasattr(parameters, "data"):
        return [(0, parameters)]
    if isinstance(parameters, Iterable):
        return list(enumerate(parameters))
    raise ParamDTypeError(f"check_finite takes a Module, a dict of arrays or an iterable of Parameters, Tensors or "
                          f"ndarrays, not a {type(parameters).__name__}")


def _arrays(key: str | int, value: Any) -> list[tuple[str, NDArray[Any] | None]]:
    if isinstance(value, np.ndarray):
        return [("data", value)]
    if isinstance(getattr(value, "data", None), np.ndarray):
        return [("data", value.data), ("grad", getattr(value, "grad", None))]
    raise ParamDTypeError(f"parameters[{key!r}] is a {type(value).__name__}; check_finite takes Parameters, "
                          "Tensors and ndarrays")


def check_finite(parameters: Any, raise_error: bool = True) -> dict[str | int, list[str]]:
    """Checks every value and every ``.grad`` of ``parameters`` for NaN and infinity.

    ``parameters`` is a Module (its named parameters), a dict of arrays or tensors (a
    ``state_dict()``), or an iterable of Parameters, Tensors or ndarrays (None entries skipped).
    Returns ``{name or index: ["data"] / ["grad"] / ["data", "grad"]}`` for the ones that are not
    finite (empty when all are; names for a Module or dict, positions otherwise). With
    ``raise_error`` a non-empty result raises ``optrs.AnomalyError`` listing them instead.
    Integer and bool arrays are always finite; float arrays cost one BLAS dot each."""
    found: dict[str | int, list[str]] = {}
    details: list[str] = []
    named = _named(parameters)
    for key, value in named:
        if value is None:
            continue
        for part, array in _arrays(key, value):
            kind = None if array is None else nonfinite_kind(array)
            if kind is not None:
                found.setdefault(key, []).append(part)
                details.append(f"{key!r} ({part}: {kind})")
    if found and raise_error:
        raise AnomalyError(f"non-finite values in {len(found)} of {len(named)} parameters: {', '.join(details)}. "
                           "optrs.autograd.detect_anomaly() finds the op that made the first one; lower the learning "
                           "rate or clip gradients (optrs.utils.clip_grad_norm_) if values grow until they overflow")
    return found


__all__ = ["check_finite"]
