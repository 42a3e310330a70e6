"""The engine side of optimizers whose step needs each tensor whole (Muon, Adafactor).

Their updates are not element-wise, so they have no Rust engine holding pointers between steps:
this one keeps the arrays in lists and makes each step one call into ``_core``, which checks every
option and array (the new group's and the registered ones) as they are at that call (dtype, shape,
layout, memory still held by their bases), before it writes anything. Nothing is trusted from an
earlier call: a step also checks that each group's 'params' still lists the params registered,
and returns False otherwise, as the Rust engines do.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import InvalidParamError


class WholeTensorEngine:
    """Subclasses name their state (``state_spec``) and make the ``_core`` call (``_call``)."""

    def __init__(self) -> None:
        self._groups: list[dict[str, Any]] = []
        self._params: list[NDArray[Any]] = []
        self._states: list[list[NDArray[Any]]] = []
        self._steps: list[NDArray[np.float64]] = []
        self._labels: list[str] = []
        self._listed: list[list[Any] | None] = []
        self._lock = threading.Lock()

    @staticmethod
    def state_spec(group: dict[str, Any],
                   label: str = "param group") -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
        raise NotImplementedError

    def _call(self, groups: list[dict[str, Any]], params: list[NDArray[Any]], grads: list[NDArray[Any] | None],
              states: list[list[NDArray[Any]]], steps: list[NDArray[np.float64]]) -> None:
        """One step over every group, or with every grad None only the checks."""
        raise NotImplementedError

    def add_group(self, group: dict[str, Any], params: Sequence[NDArray[Any]],
                  states: Sequence[Sequence[NDArray[Any]]], steps: Sequence[NDArray[np.float64]],
                  prefix: str) -> None:
        groups, params_ = self._groups + [group], self._params + list(params)
        states_, steps_ = self._states + [list(s) for s in states], self._steps + list(steps)
        self._call(groups, params_, [None] * len(params_), states_, steps_)
        self._groups, self._params, self._states, self._steps = groups, params_, states_, steps_
        self._labels.extend(f"{prefix}[{i}]" for i in range(len(params)))
        listed = group.get("params")
        self._listed.append(list(listed) if isinstance(listed, list) and len(listed) == len(params) else None)

    def refresh(self, params: Sequence[NDArray[Any]]) -> None:
        params = list(params)
        if len(params) != len(self._params):
            raise InvalidParamError(f"got {len(params)} params, the optimizer has {len(self._params)}; "
                                    "add params with add_param_group")
        for new, old, label in zip(params, self._params, self._labels):
            if isinstance(new, np.ndarray) and (new.shape, new.dtype) != (old.shape, old.dtype):
                raise InvalidParamError(
                    f"{label} was replaced by an array of shape {new.shape} and dtype {new.dtype}, but its "
                    f"state was made for shape {old.shape} and dtype {old.dtype}; create a new optimizer "
                    "for params that change shape or dtype")
        self._params = params

    def step(self, grads: Sequence[NDArray[Any] | None], groups: list[dict[str, Any]]) -> bool:
        """One step; False, having done nothing, when a group's 'params' list was edited."""
        if not self._lock.acquire(blocking=False):
            raise RuntimeError("this optimizer is already stepping in another thread; "
                               "step an optimizer from one thread at a time")
        try:
            if not self._still_listed(groups):
                return False
            self._call(groups, self._params, list(grads), self._states, self._steps)
            return True
        finally:
            self._lock.release()

    def _still_listed(self, groups: list[dict[str, Any]]) -> bool:
        for group, listed in zip(groups, self._listed):
            params = group.get("params") if isinstance(group, dict) else None
            if listed is not None and not (isinstance(params, list) and len(params) == len(listed)
                                           and all(a is b for a, b in zip(params, listed))):
                return False
        return True
