"""Gradient clipping as in ``torch.nn.utils``, in place on NumPy grads.

The norm functions are one call into Rust each (GIL released, on the thread pool): every grad is
checked before any is changed, then the norm is computed and the grads scaled. The norm's
summation order is fixed (blocks of 16384 elements, float64 partial sums added in order), so it
is bit-identical for any thread count and SIMD level.

The total norm is returned as a NumPy scalar of the dtype torch's 0-d tensor would have: float64
if any grad is float64, else float32. It is computed in float64 and rounded once, so it is at
least as accurate as torch's and may differ from it in the last bits (and float32 grads whose
norm exceeds about 1.8e19 get a finite norm here where torch's float32 sum overflows to inf).
"""

from __future__ import annotations

import types
import warnings
from collections.abc import Iterable
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from .. import _core
from ..errors import InvalidParamError, ParamDTypeError


class _HasGrad(Protocol):
    grad: NDArray[Any] | None


ParamsWithGrads = _HasGrad | Iterable[_HasGrad]
Tensors = NDArray[Any] | Iterable[NDArray[Any] | None]
GradsT = NDArray[Any] | Iterable[NDArray[Any] | None]

_PARAMS_ONLY = ("plain ndarrays carry no .grad: pass the grads themselves to optrs.utils.clip_grads_norm_, "
                "or use optrs.Parameter")


def _grads_of(parameters: ParamsWithGrads, warn_if_empty: bool = False) -> list[NDArray[Any] | None]:
    """Each param's ``.grad`` (None included, so that positions in errors are param indices)."""
    if isinstance(parameters, np.ndarray):
        raise ParamDTypeError(_PARAMS_ONLY)
    if hasattr(parameters, "grad"):
        params: list[Any] = [parameters]
    else:
        is_generator = isinstance(parameters, types.GeneratorType)
        params = list(parameters)
        if warn_if_empty and is_generator and not params:
            warnings.warn("`parameters` is an empty generator, no gradient clipping will occur.", stacklevel=3)
    grads = []
    for i, p in enumerate(params):
        if isinstance(p, np.ndarray) or not hasattr(p, "grad"):
            raise ParamDTypeError(f"parameters[{i}] is a {type(p).__name__}; {_PARAMS_ONLY}")
        grads.append(p.grad)
    return grads


def _listed(grads: GradsT) -> list[Any]:
    return [grads] if isinstance(grads, np.ndarray) else list(grads)


def _scalar(value: float, dtype: str) -> np.floating[Any]:
    scalar: np.floating[Any] = np.float32(value) if dtype == "float32" else np.float64(value)
    return scalar


def clip_grad_norm_(parameters: ParamsWithGrads, max_norm: float, norm_type: float | str = 2.0,
                    error_if_nonfinite: bool = False, foreach: bool | None = None) -> np.floating[Any]:
    """Scales the ``.grad`` of ``parameters`` in place so that their total norm is at most ``max_norm``.

    As ``torch.nn.utils.clip_grad_norm_``: the norm of all grads together (as one vector) is
    computed, and every grad is multiplied by ``min(max_norm / (total_norm + 1e-6), 1)``.
    ``norm_type`` is any p > 0 or ``inf``. Params whose ``.grad`` is None are skipped. With
    ``error_if_nonfinite=True`` a NaN or infinite norm raises RuntimeError and no grad changes.
    ``foreach`` is accepted and ignored. Returns the total norm before clipping (see the module
    docs for its dtype).
    """
    grads = _grads_of(parameters, warn_if_empty=True)
    total, dtype = _core.clip_grad_norm(grads, float(max_norm), float(norm_type), bool(error_if_nonfinite),
                                        "grad of parameters")
    return _scalar(total, dtype)


def clip_grads_norm_(grads: GradsT, max_norm: float, norm_type: float | str = 2.0,
                     error_if_nonfinite: bool = False) -> np.floating[Any]:
    """``clip_grad_norm_`` for grads held as plain ndarrays (a list; None entries are skipped)."""
    total, dtype = _core.clip_grad_norm(_listed(grads), float(max_norm), float(norm_type),
                                        bool(error_if_nonfinite), "grads")
    return _scalar(total, dtype)


def get_total_norm(tensors: Tensors, norm_type: float | str = 2.0, error_if_nonfinite: bool = False,
                   foreach: bool | None = None) -> np.floating[Any]:
    """The norm of all ``tensors`` together, as if concatenated into one vector
    (``torch.nn.utils.get_total_norm``). Read-only arrays are fine; nothing is changed."""
    total, dtype = _core.total_norm(_listed(tensors), float(norm_type), bool(error_if_nonfinite), "tensors")
    return _scalar(total, dtype)


def clip_grads_with_norm_(parameters: ParamsWithGrads, max_norm: float, total_norm: Any,
                          foreach: bool | None = None) -> None:
    """Scales the ``.grad`` of ``parameters`` by ``min(max_norm / (total_norm + 1e-6), 1)``, for a
    ``total_norm`` computed before (``torch.nn.utils.clip_grads_with_norm_``). The coefficient is
    computed in ``total_norm``'s dtype (float64 for a Python float), as torch does."""
    dtype = "float32" if np.asarray(total_norm).dtype == np.float32 else "float64"
    _core.clip_grads_with_norm(_grads_of(parameters), float(max_norm), float(total_norm), dtype,
                               "grad of parameters")


def clip_grad_value_(parameters: ParamsWithGrads, clip_value: float, foreach: bool | None = None) -> None:
    """Clamps every ``.grad`` of ``parameters`` to ``[-clip_value, clip_value]`` in place
    (``torch.nn.utils.clip_grad_value_``). NaN elements stay NaN; a NaN ``clip_value`` makes every
    element NaN, as in torch. Every grad is checked before any is changed."""
    clip_value = float(clip_value)
    grads = _grads_of(parameters)
    for i, g in enumerate(grads):
        if g is None:
            continue
        where = f"grad of parameters[{i}]"
        if not isinstance(g, np.ndarray) or g.dtype not in (np.float32, np.float64):
            kind = f"dtype {g.dtype}" if isinstance(g, np.ndarray) else f"type {type(g).__name__}"
            raise ParamDTypeError(f"{where} has {kind}; gradients must be float32 or float64 ndarrays")
        if not g.flags.writeable:
            raise InvalidParamError(f"{where} is read-only; it is clipped in place, so pass a writeable array")
    for g in grads:
        if g is not None:
            scalar = g.dtype.type
            np.clip(g, scalar(-clip_value), scalar(clip_value), out=g)
