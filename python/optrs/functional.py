"""One in-place function per update rule, for users who keep the state themselves.

Each function updates ``params`` and the state arrays in place with exactly the arithmetic of the
matching optimizer class (the same Rust rule), in one call. ``state_steps`` are float64 arrays of
one element (``np.zeros(1)``), incremented in place. A None grad skips its param. Arrays are
checked as in the optimizers: nothing is changed if any is unusable.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import _core
from .errors import InvalidParamError

Arrays = Sequence[NDArray[Any]]
OptionalArrays = Sequence[NDArray[Any] | None]


def _columns(count: int, **columns: Sequence[Any] | None) -> list[list[Any]]:
    """Per-param state lists from per-state columns (None columns are unused), checking that every
    column has ``count`` entries."""
    used = {name: list(c) for name, c in columns.items() if c is not None}
    for name, column in used.items():
        if len(column) != count:
            raise InvalidParamError(f"{name} has {len(column)} entries for {count} params")
    return [list(row) for row in zip(*used.values())] if used else [[] for _ in range(count)]


def sgd(params: Arrays, grads: OptionalArrays, momentum_buffer_list: list[NDArray[Any] | None], *,
        lr: float, momentum: float = 0.0, dampening: float = 0.0, weight_decay: float = 0.0,
        nesterov: bool = False, maximize: bool = False) -> None:
    """``torch.optim.SGD``'s step. With momentum, a None entry of ``momentum_buffer_list`` is
    replaced by a new buffer holding the first gradient, as torch does."""
    group = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                 nesterov=nesterov, maximize=maximize)
    if momentum == 0:
        states: list[list[Any]] = [[] for _ in params]
        steps = [np.zeros(1) for _ in params]
    else:
        if len(grads) != len(params):
            raise InvalidParamError(f"got {len(grads)} grads for {len(params)} params; "
                                    "pass one grad (or None) per param")
        if len(momentum_buffer_list) != len(params):
            raise InvalidParamError(f"momentum_buffer_list has {len(momentum_buffer_list)} entries "
                                    f"for {len(params)} params")
        fresh = [buf is None and g is not None for buf, g in zip(momentum_buffer_list, grads)]
        buffers = [np.empty_like(p) if buf is None else buf for p, buf in zip(params, momentum_buffer_list)]
        states = [[b] for b in buffers]
        # A step count of 1 tells the rule to start the buffer from the gradient.
        steps = [np.zeros(1) if new else np.ones(1) for new in fresh]
    _core.SGDEngine.apply(group, list(params), list(grads), states, steps)
    if momentum != 0:
        for i, new in enumerate(fresh):
            if new:
                momentum_buffer_list[i] = states[i][0]


def adam(params: Arrays, grads: OptionalArrays, exp_avgs: Arrays, exp_avg_sqs: Arrays,
         max_exp_avg_sqs: Arrays | None, state_steps: Arrays, *, amsgrad: bool = False, beta1: float,
         beta2: float, lr: float, weight_decay: float, eps: float, maximize: bool = False,
         decoupled_weight_decay: bool = False) -> None:
    """``torch.optim.Adam``'s step (AdamW's with ``decoupled_weight_decay=True``)."""
    group = dict(lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                 maximize=maximize, decoupled_weight_decay=decoupled_weight_decay)
    states = _columns(len(params), exp_avgs=exp_avgs, exp_avg_sqs=exp_avg_sqs,
                      max_exp_avg_sqs=max_exp_avg_sqs if amsgrad else None)
    _core.AdamEngine.apply(group, list(params), list(grads), states, list(state_steps))


def adamw(params: Arrays, grads: OptionalArrays, exp_avgs: Arrays, exp_avg_sqs: Arrays,
          max_exp_avg_sqs: Arrays | None, state_steps: Arrays, *, amsgrad: bool = False, beta1: float,
          beta2: float, lr: float, weight_decay: float, eps: float, maximize: bool = False) -> None:
    """``torch.optim.AdamW``'s step."""
    adam(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps, amsgrad=amsgrad, beta1=beta1,
         beta2=beta2, lr=lr, weight_decay=weight_decay, eps=eps, maximize=maximize, decoupled_weight_decay=True)


def adagrad(params: Arrays, grads: OptionalArrays, state_sums: Arrays, state_steps: Arrays, *, lr: float,
            weight_decay: float = 0.0, lr_decay: float = 0.0, eps: float = 1e-10,
            maximize: bool = False) -> None:
    """``torch.optim.Adagrad``'s step (``state_sums`` start at ``initial_accumulator_value``)."""
    group = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, initial_accumulator_value=0.0,
                 eps=eps, maximize=maximize)
    states = _columns(len(params), state_sums=state_sums)
    _core.AdagradEngine.apply(group, list(params), list(grads), states, list(state_steps))


def adadelta(params: Arrays, grads: OptionalArrays, square_avgs: Arrays, acc_deltas: Arrays,
             state_steps: Arrays, *, lr: float, rho: float, eps: float, weight_decay: float = 0.0,
             maximize: bool = False) -> None:
    """``torch.optim.Adadelta``'s step."""
    group = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize)
    states = _columns(len(params), square_avgs=square_avgs, acc_deltas=acc_deltas)
    _core.AdadeltaEngine.apply(group, list(params), list(grads), states, list(state_steps))


def rmsprop(params: Arrays, grads: OptionalArrays, square_avgs: Arrays, grad_avgs: Arrays | None,
            momentum_buffer_list: Arrays | None, state_steps: Arrays, *, lr: float, alpha: float,
            eps: float, weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False,
            maximize: bool = False) -> None:
    """``torch.optim.RMSprop``'s step (``grad_avgs`` used when centered, ``momentum_buffer_list``
    when momentum > 0)."""
    group = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                 centered=centered, maximize=maximize)
    states = _columns(len(params), square_avgs=square_avgs,
                      momentum_buffer_list=momentum_buffer_list if momentum > 0 else None,
                      grad_avgs=grad_avgs if centered else None)
    _core.RMSpropEngine.apply(group, list(params), list(grads), states, list(state_steps))


def _with_scalars(state_steps: Arrays, *scalars: Arrays) -> list[NDArray[Any]]:
    """The engine's per-param counters: the step, then the rule's scalar state (one-element arrays
    in torch's functional signatures), checked for count and shape."""
    for column in scalars:
        if len(column) != len(state_steps):
            raise InvalidParamError(f"got {len(column)} scalar-state entries for {len(state_steps)} state_steps")
    counters = []
    for i, row in enumerate(zip(state_steps, *scalars)):
        if any(np.size(a) != 1 for a in row):
            raise InvalidParamError(f"state_steps[{i}] and its scalar state must be one-element arrays")
        counters.append(np.array([float(np.asarray(a).reshape(-1)[0]) for a in row]))
    return counters


def _write_back(counters: list[NDArray[Any]], state_steps: Arrays, *scalars: Arrays) -> None:
    for counter, *row in zip(counters, state_steps, *scalars):
        for value, target in zip(counter, row):
            np.asarray(target).reshape(-1)[0] = value


def adamax(params: Arrays, grads: OptionalArrays, exp_avgs: Arrays, exp_infs: Arrays, state_steps: Arrays, *,
           eps: float, beta1: float, beta2: float, lr: float, weight_decay: float, maximize: bool = False) -> None:
    """``torch.optim.Adamax``'s step."""
    group = dict(lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay, maximize=maximize)
    states = _columns(len(params), exp_avgs=exp_avgs, exp_infs=exp_infs)
    _core.AdamaxEngine.apply(group, list(params), list(grads), states, list(state_steps))


def radam(params: Arrays, grads: OptionalArrays, exp_avgs: Arrays, exp_avg_sqs: Arrays, state_steps: Arrays, *,
          beta1: float, beta2: float, lr: float, weight_decay: float, eps: float,
          decoupled_weight_decay: bool = False, maximize: bool = False) -> None:
    """``torch.optim.RAdam``'s step."""
    group = dict(lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay,
                 decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
    states = _columns(len(params), exp_avgs=exp_avgs, exp_avg_sqs=exp_avg_sqs)
    _core.RAdamEngine.apply(group, list(params), list(grads), states, list(state_steps))


def nadam(params: Arrays, grads: OptionalArrays, exp_avgs: Arrays, exp_avg_sqs: Arrays, mu_products: Arrays,
          state_steps: Arrays, *, beta1: float, beta2: float, lr: float, weight_decay: float,
          momentum_decay: float, eps: float, decoupled_weight_decay: bool = False, maximize: bool = False) -> None:
    """``torch.optim.NAdam``'s step (``mu_products`` one-element arrays starting at 1)."""
    group = dict(lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay,
                 decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
    states = _columns(len(params), exp_avgs=exp_avgs, exp_avg_sqs=exp_avg_sqs)
    counters = _with_scalars(state_steps, mu_products)
    _core.NAdamEngine.apply(group, list(params), list(grads), states, counters)
    _write_back(counters, state_steps, mu_products)


def rprop(params: Arrays, grads: OptionalArrays, prevs: Arrays, step_sizes: Arrays, state_steps: Arrays, *,
          step_size_min: float, step_size_max: float, etaminus: float, etaplus: float,
          maximize: bool = False) -> None:
    """``torch.optim.Rprop``'s step (``prevs`` start at 0, ``step_sizes`` at the learning rate)."""
    group = dict(lr=0.0, etas=(etaminus, etaplus), step_sizes=(step_size_min, step_size_max), maximize=maximize)
    states = _columns(len(params), prevs=prevs, step_sizes=step_sizes)
    _core.RpropEngine.apply(group, list(params), list(grads), states, list(state_steps))


def asgd(params: Arrays, grads: OptionalArrays, axs: Arrays, mus: Arrays, etas: Arrays, state_steps: Arrays, *,
         lambd: float, lr: float, t0: float, alpha: float, weight_decay: float, maximize: bool = False) -> None:
    """``torch.optim.ASGD``'s step (``etas`` one-element arrays starting at ``lr`` rounded to float32,
    as torch keeps it, ``mus`` at 1)."""
    group = dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay, maximize=maximize)
    states = _columns(len(params), axs=axs)
    counters = _with_scalars(state_steps, etas, mus)
    _core.ASGDEngine.apply(group, list(params), list(grads), states, counters)
    _write_back(counters, state_steps, etas, mus)


__all__ = ["sgd", "adam", "adamw", "adagrad", "adadelta", "rmsprop", "adamax", "radam", "nadam", "rprop", "asgd"]
