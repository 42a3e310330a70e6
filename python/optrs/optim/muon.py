"""Muon (Jordan et al. 2024), as ``torch.optim.Muon``."""

from __future__ import annotations

from .. import _core
from .optimizer import Optimizer, ParamsT

# torch's defaults (Keller Jordan's Newton-Schulz coefficients).
DEFAULT_A, DEFAULT_B, DEFAULT_C = 3.4445, -4.7750, 2.0315
DEFAULT_NS_STEPS = 5
EPS = 1e-7


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

    _engine_class = _core.MuonEngine
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
