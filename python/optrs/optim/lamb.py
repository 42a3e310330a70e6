"""LAMB (You et al., 2019, "Large Batch Optimization for Deep Learning: Training BERT in 76
minutes"); not in torch."""

from __future__ import annotations

from .. import _core
from .optimizer import Optimizer, ParamsT


class LAMB(Optimizer):
    """LAMB, the paper's Algorithm 2: Adam's bias-corrected moments, then a per-tensor trust
    ratio. Step ``t`` of each param ``x``::

        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        u = (m / (1 - beta1**t)) / (sqrt(v / (1 - beta2**t)) + eps) + weight_decay * x
        x = x - lr * (||x|| / ||u||) * u

    with the paper's scaling function ``phi`` the identity; the ratio is 1 when either norm is 0
    (as in the authors' implementation). Defaults: ``betas`` as the paper sets them in all its
    experiments; ``lr`` and ``eps`` as the authors' implementation the paper links
    (``tfa.optimizers.LAMB``); ``weight_decay=0.01`` as in the BERT pre-training the paper runs
    LAMB on (the authors' implementation defaults to 0).

    The norms are computed in float64 in a fixed blocked order, so results are the same on any
    thread count and SIMD level. State per param: ``step``, ``exp_avg``, ``exp_avg_sq``.
    """

    _engine_class = _core.LAMBEngine

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.01,
        *,
        maximize: bool = False,
    ) -> None:
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)
