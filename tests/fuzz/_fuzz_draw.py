"""Hypothesis strategies for the optimizer fuzzing: configurations, options (valid and bad),
param specs and the operations of ``_fuzz_optim.World``, all as plain data."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from _fuzz_optim import CLASSES
from hypothesis import strategies as st

unit = st.floats(0.0, 0.99)
small = st.floats(0.0, 0.2)
lr = st.one_of(st.floats(0.0, 1.0), st.sampled_from([0.0, 1e-3, 0.1]))
eps = st.sampled_from([1e-8, 1e-6, 1e-3, 0.0, 1e-30])
betas = st.tuples(unit, st.floats(0.0, 0.999))

# Valid options per optimizer (each optional: unset ones take the defaults).
OPTIONS: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "SGD": dict(lr=lr, momentum=unit, dampening=small, weight_decay=small, nesterov=st.booleans(),
                maximize=st.booleans()),
    "Adam": dict(lr=lr, betas=betas, eps=eps, weight_decay=small, amsgrad=st.booleans(), maximize=st.booleans(),
                 decoupled_weight_decay=st.booleans()),
    "AdamW": dict(lr=lr, betas=betas, eps=eps, weight_decay=small, amsgrad=st.booleans(), maximize=st.booleans()),
    "Adagrad": dict(lr=lr, lr_decay=small, weight_decay=small, initial_accumulator_value=small, eps=eps,
                    maximize=st.booleans()),
    "Adadelta": dict(lr=lr, rho=unit, eps=eps, weight_decay=small, maximize=st.booleans()),
    "RMSprop": dict(lr=lr, alpha=unit, eps=eps, weight_decay=small, momentum=unit, centered=st.booleans(),
                    maximize=st.booleans()),
    "Adamax": dict(lr=lr, betas=betas, eps=eps, weight_decay=small, maximize=st.booleans()),
    "NAdam": dict(lr=lr, betas=betas, eps=eps, weight_decay=small, momentum_decay=st.floats(0.0, 0.01),
                  decoupled_weight_decay=st.booleans(), maximize=st.booleans()),
    "RAdam": dict(lr=lr, betas=betas, eps=eps, weight_decay=small, decoupled_weight_decay=st.booleans(),
                  maximize=st.booleans()),
    "Rprop": dict(lr=lr, etas=st.tuples(st.floats(0.1, 0.9), st.floats(1.1, 2.0)),
                  step_sizes=st.tuples(st.floats(1e-6, 1e-3), st.floats(1.0, 50.0)), maximize=st.booleans()),
    "ASGD": dict(lr=lr, lambd=st.floats(0.0, 1e-2), alpha=st.floats(0.0, 1.0), t0=st.floats(0.0, 10.0),
                 weight_decay=small, maximize=st.booleans()),
    "Lion": dict(lr=lr, betas=betas, weight_decay=small, maximize=st.booleans()),
    "ADOPT": dict(lr=lr, betas=betas, eps=eps, weight_decay=small, decouple=st.booleans(), maximize=st.booleans()),
    "LAMB": dict(lr=lr, betas=betas, eps=eps, weight_decay=small, maximize=st.booleans()),
    "ScheduleFreeAdamW": dict(lr=lr, betas=betas, eps=eps, weight_decay=small, warmup_steps=st.integers(0, 4),
                              r=st.floats(0.0, 1.0), weight_lr_power=st.floats(0.0, 3.0), maximize=st.booleans()),
    "Muon": dict(lr=lr, weight_decay=small, momentum=unit, nesterov=st.booleans(), ns_steps=st.integers(1, 6),
                 eps=st.sampled_from([1e-7, 1e-3]),
                 adjust_lr_fn=st.sampled_from([None, "original", "match_rms_adamw"])),
    "Adafactor": dict(lr=lr, beta2_decay=st.floats(-1.0, -0.1), eps=st.tuples(st.sampled_from([None, 1e-30]),
                      st.sampled_from([1e-3, 0.0])), d=st.floats(0.5, 2.0), weight_decay=small,
                      maximize=st.booleans()),
}
assert set(OPTIONS) == set(CLASSES)

# Values no option accepts (or only some do), of every kind.
BAD_VALUES = st.sampled_from([
    math.nan, math.inf, -math.inf, -1.0, -1e-3, 1e308, -1e308, 2**70, -(2**63), 0.0, 1.0, 1.5, "0.1", None, True,
    1 + 1j, np.float32(math.nan), np.float64(1e308), [0.1], (), (0.9,), (0.9, 0.999, 0.5), (math.nan, 0.9),
    (1.0, 0.5), (-0.1, 0.9), (0.5, 1e308), ("a", "b"), {"lr": 1}, np.array([0.1, 0.2]), np.array(0.5), object(),
])

FLOAT_DTYPES = ["float32", "float64"]
BAD_DTYPES = ["float16", ">f4", ">f8", "int32", "int64", "uint8", "bool", "complex64", "complex128", "object"]
SHAPES = [(), (0,), (1,), (5,), (17,), (33,), (3, 4), (4, 3), (1, 1), (0, 3), (2, 3, 2), (8, 8), (1, 7)]


@st.composite
def options(draw: st.DrawFn, name: str, bad: bool = True) -> dict[str, Any]:
    choices = OPTIONS[name]
    chosen = draw(st.fixed_dictionaries({}, optional=choices))
    if bad and draw(st.integers(0, 9)) == 0:
        chosen[draw(st.sampled_from(sorted(choices)))] = draw(BAD_VALUES)
    return chosen


@st.composite
def param_spec(draw: st.DrawFn, name: str, resizable: bool, bad: bool = True) -> tuple[Any, ...]:
    shapes = [s for s in SHAPES if len(s) == 2] if name == "Muon" and draw(st.integers(0, 9)) else SHAPES
    shape = draw(st.sampled_from(shapes))
    dtype = draw(st.sampled_from(FLOAT_DTYPES))
    if bad and draw(st.integers(0, 19)) == 0:
        dtype = draw(st.sampled_from(BAD_DTYPES))
    kinds = ["guarded"] * 6 + (["owned"] * 3 if resizable else [])
    kind = draw(st.sampled_from(kinds))
    if bad and draw(st.integers(0, 19)) == 0:
        kind = draw(st.sampled_from(["F", "neg", "strided", "unaligned", "readonly"]))
    return (shape, dtype, draw(st.integers(0, 2**32 - 1)), kind)


@st.composite
def configs(draw: st.DrawFn, resizable: bool = False) -> dict[str, Any]:
    name = draw(st.sampled_from(sorted(CLASSES)))
    groups = draw(st.lists(st.tuples(options(name), st.lists(param_spec(name, resizable), min_size=1, max_size=3)),
                           min_size=1, max_size=2))
    return {"optimizer": name, "parameters": draw(st.integers(0, 4)) == 0, "groups": groups}


@st.composite
def grad_spec(draw: st.DrawFn) -> tuple[Any, ...] | None:
    if draw(st.integers(0, 4)) == 0:
        return None
    kind = "good"
    if draw(st.integers(0, 4)) == 0:
        kind = draw(st.sampled_from(["alias_param", "param_view", "alias_state", "alias_other", "list", "scalar",
                                     "huge_broadcast", "wrong_shape", "flat"]))
    dtype = "same" if draw(st.integers(0, 7)) else draw(st.sampled_from(FLOAT_DTYPES + BAD_DTYPES))
    layout = "C" if draw(st.integers(0, 5)) else draw(st.sampled_from(["F", "neg", "strided", "unaligned",
                                                                        "readonly"]))
    special = "normal" if draw(st.integers(0, 4)) else draw(st.sampled_from(
        ["nan", "inf", "huge", "zero", "subnormal", "max", "neg"]))
    return (kind, dtype, layout, draw(st.integers(0, 2**32 - 1)), special)


def step_ops() -> st.SearchStrategy[tuple[Any, ...]]:
    extra = st.sampled_from([0] * 12 + [-1, 1])
    return st.tuples(st.just("step"), st.lists(grad_spec(), max_size=8), extra)


def set_option_ops(name: str) -> st.SearchStrategy[tuple[Any, ...]]:
    keys = sorted(OPTIONS[name])

    @st.composite
    def op(draw: st.DrawFn) -> tuple[Any, ...]:
        key = draw(st.sampled_from(keys + ["lr"] * 3))
        value = draw(OPTIONS[name][key] if draw(st.booleans()) else BAD_VALUES)
        return ("set_option", draw(st.integers(0, 3)), key, value)
    return op()


def _index() -> st.SearchStrategy[int]:
    return st.integers(0, 7)


def list_edit_ops(name: str) -> st.SearchStrategy[tuple[Any, ...]]:
    """Edits of a group's ``params`` list between steps (torch steps what the list holds)."""
    spec = param_spec(name, False, bad=False)
    group = st.integers(0, 3)
    return st.one_of(
        st.tuples(st.just("edit_params"), group, st.just("pop"), _index()),
        st.tuples(st.just("edit_params"), group, st.sampled_from(["append", "replace"]), spec),
        st.tuples(st.just("edit_params"), group, st.sampled_from(["append_existing", "append_junk", "clear"]),
                  _index()),
    )


def add_group_ops(name: str) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.tuples(st.just("add_group"), options(name), st.lists(param_spec(name, False), max_size=2))


def param_ops(hows: list[str]) -> st.SearchStrategy[tuple[Any, ...]]:
    @st.composite
    def op(draw: st.DrawFn) -> tuple[Any, ...]:
        how = draw(st.sampled_from(hows))
        arg: Any = draw(st.integers(0, 2**32 - 1))
        if how == "dtype":
            arg = draw(st.sampled_from(FLOAT_DTYPES + ["int32", "float16", "int64", "complex64"]))
        elif how == "resize":
            arg = draw(st.sampled_from([(0,), (1,), (16,), (3, 5), (4096,)]))
        return ("mutate_param", draw(_index()), how, arg)
    return op()


STEP_COUNTS = st.sampled_from([math.nan, -1.0, 1.5, math.inf, -math.inf, 2.0**60, 0.0, 3.0])
STATE_VALUES = st.sampled_from([math.nan, -1.0, math.inf, 1e30, -0.0, 0.0, 5e-324])
ASSIGNED = st.tuples(st.sampled_from(["same", "same", "other"]),
                     st.sampled_from(["same", "same"] + FLOAT_DTYPES + ["int32", "object"]), st.integers(0, 2**32 - 1))

# Families of operations. The machine draws from the families it enables (resize, which can
# make a broken optimizer use freed memory, only in the worker process).
FAMILIES: dict[str, Any] = {
    "step": lambda name: step_ops(),
    "options": set_option_ops,
    "list_edits": list_edit_ops,
    "add_group": add_group_ops,
    "param_values": lambda name: param_ops(["values"]),
    "param_layout": lambda name: param_ops(["dtype", "shape", "readonly", "writeable", "data"]),
    "resize": lambda name: param_ops(["resize"]),
    "state_write": lambda name: st.tuples(st.just("mutate_state"), _index(), _index(), st.just("write"),
                                          STATE_VALUES),
    "step_counter": lambda name: st.tuples(st.just("mutate_state"), _index(), st.just("step"), st.just("write"),
                                           STEP_COUNTS),
    "state_assign": lambda name: st.tuples(st.just("mutate_state"), _index(), _index(), st.just("assign"), ASSIGNED),
    "state_layout": lambda name: st.tuples(st.just("mutate_state"), _index(), _index(),
                                           st.sampled_from(["readonly", "relayout"]), st.none()),
    "roundtrip": lambda name: st.tuples(st.just("roundtrip"), st.sampled_from(["plain", "plain", "nan_step",
                                                                               "shape"])),
    "zero_grad": lambda name: st.just(("zero_grad",)),
    "mode": lambda name: st.tuples(st.just("mode"), st.booleans()),
}
# Relative weights: steps are where optrs's code runs, the rest sets them up.
WEIGHTS = {"step": 4}


def operations(name: str, families: frozenset[str]) -> st.SearchStrategy[tuple[Any, ...]]:
    chosen = [FAMILIES[f](name) for f in sorted(families) for _ in range(WEIGHTS.get(f, 1))]
    return st.one_of(chosen)
