"""Weight averaging (SWA and EMA) of a list of NumPy params: ``torch.optim.swa_utils.AveragedModel``
for models that are lists of arrays, with torch's averaging functions.

    swa = optrs.utils.AveragedParams([w, b])            # or mode="ema", decay=0.999
    for epoch in ...:
        train(...)
        swa.update_parameters([w, b])
    w_avg, b_avg = swa.params
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from .._plumbing.params import ParamLike, array_of
from ..errors import InvalidHyperparameterError, InvalidParamError, ParamDTypeError

AvgFn = Callable[[NDArray[Any], NDArray[Any], int], NDArray[Any]]


def _check_decay(decay: float) -> None:
    if not 0.0 <= decay <= 1.0:
        raise InvalidHyperparameterError(f"Invalid decay value {decay} provided. "
                                         "Please provide a value in [0,1] range.")


def get_swa_avg_fn() -> AvgFn:
    """torch's equal-weight running mean: ``averaged + (current - averaged) / (num_averaged + 1)``."""

    def swa_update(averaged_param: NDArray[Any], current_param: NDArray[Any], num_averaged: int) -> NDArray[Any]:
        averaged: NDArray[Any] = averaged_param + (current_param - averaged_param) / (num_averaged + 1)
        return averaged

    return swa_update


def get_ema_avg_fn(decay: float = 0.999) -> AvgFn:
    """torch's exponential moving average: ``decay * ema + (1 - decay) * current``."""
    _check_decay(decay)

    def ema_update(ema_param: NDArray[Any], current_param: NDArray[Any], num_averaged: int) -> NDArray[Any]:
        return decay * ema_param + (1 - decay) * current_param

    return ema_update


def _lerp_(start: NDArray[Any], end: NDArray[Any], weight: float) -> None:
    """``torch.lerp_`` with torch's two-sided formula, in ``start``'s dtype."""
    w = start.dtype.type(weight)
    if abs(w) < 0.5:
        start += w * (end - start)
    else:
        np.copyto(start, end - (end - start) * (start.dtype.type(1) - w))


class AveragedParams:
    """Running averages of a list of params (ndarrays or objects with an ndarray ``.data``).

    ``mode="swa"`` keeps the equal-weight mean of every ``update_parameters`` call (torch's default
    ``AveragedModel``); ``mode="ema"`` keeps ``ema = decay * ema + (1 - decay) * current``, computed
    as torch's ``get_ema_multi_avg_fn`` does (``ema.lerp_(current, 1 - decay)``). ``avg_fn``
    (``avg_fn(averaged, current, n_averaged) -> new averaged``, such as ``get_ema_avg_fn(0.99)``)
    replaces either. As in torch, the first update copies the params.

    ``params`` holds the averaged arrays (copies, made at construction, of the params' dtypes and
    shapes); ``n_averaged`` counts the updates. ``optrs.optim.swa_utils`` re-exports it.
    """

    def __init__(self, params: Iterable[ParamLike], mode: Literal["swa", "ema"] = "swa", decay: float = 0.999,
                 *, avg_fn: AvgFn | None = None) -> None:
        if mode not in ("swa", "ema"):
            raise InvalidHyperparameterError(f"mode must be 'swa' or 'ema', got {mode!r}")
        if mode == "ema":
            _check_decay(decay)
        self.params: list[NDArray[Any]] = [np.array(a, copy=True) for a in self._arrays(params, None)]
        self.mode = mode
        self.decay = float(decay)
        self.avg_fn = avg_fn
        self.n_averaged = 0

    def _arrays(self, params: Iterable[ParamLike], expected: list[NDArray[Any]] | None) -> list[NDArray[Any]]:
        if isinstance(params, np.ndarray):
            raise ParamDTypeError("params must be an iterable of arrays; wrap a single one in a list: [param]")
        arrays = [array_of(p, f"params[{i}]") for i, p in enumerate(params)]
        if expected is None:
            return arrays
        if len(arrays) != len(expected):
            raise InvalidParamError(f"got {len(arrays)} params, the average holds {len(expected)}")
        for i, (a, avg) in enumerate(zip(arrays, expected)):
            if a.shape != avg.shape:
                raise InvalidParamError(f"params[{i}] has shape {a.shape}, its average has shape {avg.shape}")
        return arrays

    def update_parameters(self, params: Iterable[ParamLike]) -> None:
        """Folds the current values of ``params`` (in construction order) into the averages."""
        current = [np.asarray(a, dtype=avg.dtype) for a, avg in zip(self._arrays(params, self.params), self.params)]
        for avg, p in zip(self.params, current):
            if self.n_averaged == 0:
                np.copyto(avg, p)
            elif self.avg_fn is not None:
                np.copyto(avg, self.avg_fn(avg, p, self.n_averaged), casting="same_kind")
            elif self.mode == "swa":
                # torch's CPU path: avg + (p - avg) / (n + 1), each op rounded in the param's dtype.
                avg += (p - avg) / avg.dtype.type(self.n_averaged + 1)
            else:
                _lerp_(avg, p, 1.0 - self.decay)
        self.n_averaged += 1

    def state_dict(self) -> dict[str, Any]:
        """``{"n_averaged": int, "params": [copies of the averages]}`` (the averaging function,
        like torch's ``avg_fn``, is not saved)."""
        return {"n_averaged": self.n_averaged, "params": [np.array(a, copy=True) for a in self.params]}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Loads a ``state_dict()`` of averages of the same count and shapes (cast to their dtypes);
        everything is checked before anything changes."""
        if not isinstance(state_dict, Mapping) or "n_averaged" not in state_dict or "params" not in state_dict:
            raise InvalidParamError("state_dict must be a dict with 'n_averaged' and 'params', "
                                    "as returned by AveragedParams.state_dict()")
        n_averaged = int(state_dict["n_averaged"])
        if n_averaged < 0:
            raise InvalidHyperparameterError(f"state_dict's n_averaged is {n_averaged}; it must be >= 0")
        saved = [np.asarray(a) for a in state_dict["params"]]
        self._arrays(saved, self.params)
        for avg, value in zip(self.params, saved):
            np.copyto(avg, value, casting="unsafe")
        self.n_averaged = n_averaged
