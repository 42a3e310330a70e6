"""Rprop (Riedmiller & Braun, 1993), as ``torch.optim.Rprop``."""

from __future__ import annotations

from .. import _core
from .optimizer import Optimizer, ParamsT, check_implementation_flags


class Rprop(Optimizer):
    """Resilient backpropagation: per-element step sizes (starting at ``lr``) multiplied by
    ``etas[1]`` while the gradient keeps its sign and by ``etas[0]`` when it flips, clamped to
    ``step_sizes``. Computes exactly what ``torch.optim.Rprop`` computes (same arguments and
    defaults). State per param: ``step``, ``prev``, ``step_size``.
    """

    _engine_class = _core.RpropEngine

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-2,
        etas: tuple[float, float] = (0.5, 1.2),
        step_sizes: tuple[float, float] = (1e-6, 50),
        *,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        check_implementation_flags(capturable=capturable, differentiable=differentiable)
        defaults = dict(lr=lr, etas=tuple(etas), step_sizes=tuple(step_sizes), maximize=maximize)
        super().__init__(params, defaults)
