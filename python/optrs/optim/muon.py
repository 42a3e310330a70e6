"""Muon (Jordan et al. 2024), as ``torch.optim.Muon``."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .. import _core
from ..errors import InvalidParamError
from .optimizer import Optimizer, ParamsT

# torch's defaults (Keller Jordan's Newton-Schulz coefficients).
DEFAULT_A, DEFAULT_B, DEFAULT_C = 3.4445, -4.7750, 2.0315
DEFAULT_NS_STEPS = 5
EPS = 1e-7


class _MuonEngine:
    """Muon's side of the optimizer contract. Muon needs each matrix whole, so it has no
    element-wise engine: this one keeps the arrays in lists and makes each step one
    ``_core.muon_step`` call over every group, which checks every array and option first."""

    def __init__(self) -> None:
        self._groups: list[dict[str, Any]] = []
        self._params: list[NDArray[Any]] = []
        self._buffers: list[NDArray[Any]] = []
        self._steps: list[NDArray[np.float64]] = []
        self._labels: list[str] = []
        self._lock = threading.Lock()

    @staticmethod
    def state_spec(group: dict[str, Any],
                   label: str = "param group") -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
        return [("momentum_buffer", 0.0)], []

    def add_group(self, group: dict[str, Any], params: Sequence[NDArray[Any]],
                  states: Sequence[Sequence[NDArray[Any]]], steps: Sequence[NDArray[np.float64]],
                  prefix: str) -> None:
        groups, params_ = self._groups + [group], self._params + list(params)
        buffers = self._buffers + [buffer for (buffer,) in states]
        # A step without grads writes nothing: it checks the options and every array (dtype,
        # 2-D shape, layout, no shared memory), the new group's and the registered ones.
        _core.muon_step(groups, params_, [None] * len(params_), buffers)
        self._groups, self._params, self._buffers = groups, params_, buffers
        self._steps.extend(steps)
        self._labels.extend(f"{prefix}[{i}]" for i in range(len(params)))

    def refresh(self, params: Sequence[NDArray[Any]]) -> None:
        params = list(params)
        if len(params) != len(self._params):
            raise InvalidParamError(f"got {len(params)} params, the optimizer has {len(self._params)}; "
                                    "add params with add_param_group")
        for new, buffer, label in zip(params, self._buffers, self._labels):
            if isinstance(new, np.ndarray) and (new.shape, new.dtype) != (buffer.shape, buffer.dtype):
                raise InvalidParamError(
                    f"{label} was replaced by an array of shape {new.shape} and dtype {new.dtype}, but its "
                    f"momentum buffer has shape {buffer.shape} and dtype {buffer.dtype}; create a new "
                    "optimizer for params that change shape or dtype")
        self._params = params

    def step(self, grads: Sequence[NDArray[Any] | None], groups: list[dict[str, Any]]) -> None:
        grads = list(grads)
        if not self._lock.acquire(blocking=False):
            raise RuntimeError("this optimizer is already stepping in another thread; "
                               "step an optimizer from one thread at a time")
        try:
            _core.muon_step(groups, self._params, grads, self._buffers)
            for count, grad in zip(self._steps, grads):
                if grad is not None:
                    count[0] += 1
        finally:
            self._lock.release()


class Muon(Optimizer):
    """Muon, computing what ``torch.optim.Muon`` computes (same arguments and defaults), for 2-D
    params only (optimize biases, embeddings and other params with another optimizer, such as
    AdamW).

    Per step and matrix: the momentum buffer ``B = lerp(B, g, 1 - momentum)``; the update ``B``, or
    ``lerp(g, B, momentum)`` with ``nesterov``; orthogonalized by ``ns_steps`` Newton-Schulz
    iterations with ``ns_coefficients`` (after dividing by its Frobenius norm, at least ``eps``);
    the param decays by ``lr * weight_decay`` (decoupled) and moves by ``-adjusted_lr`` times the
    orthogonalized update, where ``adjust_lr_fn`` None or ``"original"`` scales ``lr`` by
    ``sqrt(max(1, rows / cols))`` and ``"match_rms_adamw"`` by ``0.2 * sqrt(max(rows, cols))``.

    torch runs Newton-Schulz in bfloat16; optrs runs it in float32 (so it matches torch with its
    Newton-Schulz in float32 to float32 rounding, and differs from stock torch by bfloat16's
    ~1e-3 relative rounding). The results do not depend on the thread count.

    State per param: ``momentum_buffer``.
    """

    _engine_class = _MuonEngine
    _step_in_state = False

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        weight_decay: float = 0.1,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_coefficients: tuple[float, float, float] = (DEFAULT_A, DEFAULT_B, DEFAULT_C),
        eps: float = EPS,
        ns_steps: int = DEFAULT_NS_STEPS,
        adjust_lr_fn: str | None = None,
    ) -> None:
        defaults = dict(lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov,
                        ns_coefficients=tuple(ns_coefficients), eps=eps, ns_steps=ns_steps,
                        adjust_lr_fn=adjust_lr_fn)
        super().__init__(params, defaults)
