"""Bad input: every optimizer rejects it with the right exception and a message that names the
param (group and index) and says what is wrong, and leaves every param and state array exactly as
it was. The bad entry is always the last one, so an implementation that checked as it went would
already have updated the ones before it.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import optrs
from optrs import InvalidHyperparameterError, InvalidParamError, ParamDTypeError
from optrs.optim import (
    ASGD,
    LAMB,
    SGD,
    Adadelta,
    Adafactor,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    NAdam,
    Optimizer,
    RAdam,
    RMSprop,
    Rprop,
    ScheduleFreeAdamW,
)

NAN, INF = math.nan, math.inf

CLASSES: dict[str, type[Optimizer]] = {
    "SGD": SGD, "Adam": Adam, "AdamW": AdamW, "Adagrad": Adagrad, "Adadelta": Adadelta, "RMSprop": RMSprop,
    "Adamax": Adamax, "NAdam": NAdam, "RAdam": RAdam, "Rprop": Rprop, "ASGD": ASGD, "LAMB": LAMB,
    "ScheduleFreeAdamW": ScheduleFreeAdamW, "Adafactor": Adafactor,
}


class TrainingScheduleFreeAdamW(ScheduleFreeAdamW):
    """ScheduleFreeAdamW put in train mode at construction, as a user does before its first step
    (it starts in eval mode, like its reference)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.train()


# Every optimizer, with options that make it keep as much state as it can (so there is state to
# protect), plus plain SGD, which keeps none.
CONFIGS: dict[str, tuple[type[Optimizer], dict[str, Any]]] = {
    "SGD": (SGD, dict(lr=0.1)),
    "SGD-momentum": (SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
    "Adam": (Adam, dict(lr=0.1, amsgrad=True, weight_decay=0.01)),
    "AdamW": (AdamW, dict(lr=0.1)),
    "Adagrad": (Adagrad, dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1)),
    "Adadelta": (Adadelta, dict(lr=0.5)),
    "RMSprop": (RMSprop, dict(lr=0.01, momentum=0.5, centered=True)),
    "Adamax": (Adamax, dict(lr=0.1, weight_decay=0.01)),
    "NAdam": (NAdam, dict(lr=0.1, weight_decay=0.01, decoupled_weight_decay=True)),
    "RAdam": (RAdam, dict(lr=0.1, weight_decay=0.01)),
    "Rprop": (Rprop, dict(lr=0.1)),
    "ASGD": (ASGD, dict(lr=0.1, t0=1)),
    "LAMB": (LAMB, dict(lr=0.1)),
    "ScheduleFreeAdamW": (TrainingScheduleFreeAdamW, dict(lr=0.1, weight_decay=0.01, warmup_steps=2)),
    "Adafactor": (Adafactor, dict(lr=0.1, weight_decay=0.01)),
}

# Its learning-rate schedule is per param group, as in its reference: a param's steps depend on
# the group's step count, which advances also when that param has no grad.
GROUP_SCHEDULED = {"ScheduleFreeAdamW"}

# The last param has the first one's shape, so one's array can stand in for the other's grad.
SHAPES = [(2, 3), (4,), (2, 3)]

# How the three params are split into groups.
LAYOUTS = {"one group": [3], "two groups": [2, 1]}


def labels(layout: str) -> list[str]:
    """The name errors give each param, in order."""
    return [f"param_groups[{g}]['params'][{i}]" for g, size in enumerate(LAYOUTS[layout]) for i in range(size)]


def grouped(params: Sequence[Any], layout: str) -> list[dict[str, Any]]:
    groups, start = [], 0
    for size in LAYOUTS[layout]:
        groups.append({"params": list(params[start:start + size])})
        start += size
    return groups


# -- snapshots ----------------------------------------------------------------------------------


def assert_bits_equal(got: Any, want: Any, what: str) -> None:
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert got.tobytes() == want.tobytes(), f"{what} changed"


@dataclass
class Snapshot:
    arrays: list[np.ndarray]
    state: dict[Any, dict[str, np.ndarray]]


def snapshot(opt: Optimizer | None, arrays: Sequence[np.ndarray]) -> Snapshot:
    return Snapshot([np.array(a, copy=True) for a in arrays], opt.state_dict()["state"] if opt else {})


def assert_untouched(opt: Optimizer | None, arrays: Sequence[np.ndarray], before: Snapshot) -> None:
    for i, (array, old) in enumerate(zip(arrays, before.arrays, strict=True)):
        assert_bits_equal(array, old, f"array {i}")
    if opt is None:
        return
    state = opt.state_dict()["state"]
    assert state.keys() == before.state.keys()
    for index, entry in state.items():
        assert entry.keys() == before.state[index].keys()
        for name, value in entry.items():
            assert_bits_equal(value, before.state[index][name], f"state[{index}][{name!r}]")


Fragment = str | tuple[str, ...]  # a tuple: any one of them


def assert_message(error: BaseException, fragments: Sequence[Fragment]) -> None:
    message = str(error)
    for fragment in fragments:
        options = (fragment,) if isinstance(fragment, str) else fragment
        assert any(o in message for o in options), f"{options} not in message: {message!r}"


def expect_rejected(opt: Optimizer | None, arrays: Sequence[np.ndarray], action: Callable[[], Any],
                    error: type[Exception] | tuple[type[Exception], ...], *fragments: Fragment) -> None:
    """``action`` raises ``error`` with every fragment in its message and changes no array."""
    before = snapshot(opt, arrays)
    with pytest.raises(error) as info:
        action()
    assert_message(info.value, fragments)
    assert_untouched(opt, arrays, before)


# -- an optimizer that has taken a good step ----------------------------------------------------


@dataclass
class Stepped:
    opt: Optimizer
    params: list[np.ndarray]
    labels: list[str]
    rng: np.random.Generator

    @property
    def last(self) -> str:
        return self.labels[-1]

    def grads(self) -> list[np.ndarray]:
        return [self.rng.standard_normal(p.shape).astype(p.dtype) for p in self.params]

    def grads_with_last(self, grad: Any) -> list[Any]:
        grads: list[Any] = self.grads()
        grads[-1] = grad
        return grads


def make_stepped(config: str, layout: str, dtype: Any = np.float64, seed: int = 0) -> Stepped:
    cls, options = CONFIGS[config]
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    params[0] = rng.standard_normal(12).astype(dtype)[:6].reshape(SHAPES[0])  # a view, for partial overlaps
    opt = cls(grouped(params, layout), **options)
    stepped = Stepped(opt, params, labels(layout), rng)
    opt.step(stepped.grads())
    return stepped


@pytest.fixture(params=list(CONFIGS))
def config(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(params=list(LAYOUTS))
def layout(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def stepped(config: str, layout: str) -> Stepped:
    return make_stepped(config, layout)


def assert_steps_like_a_fresh_twin(s: Stepped, config: str, layout: str) -> None:
    """After a rejected step the optimizer goes on exactly as one that never saw it."""
    twin = make_stepped(config, layout)
    grads = [np.random.default_rng(7).standard_normal(p.shape) for p in s.params]
    s.opt.step(grads)
    twin.opt.step([g.copy() for g in grads])
    for i, (p, q) in enumerate(zip(s.params, twin.params)):
        assert_bits_equal(p, q, f"param {i} after the next good step")


# -- bad grads at step() ------------------------------------------------------------------------

# name -> (the bad last grad, made from the Stepped; the error; fragments besides the grad's name)
BAD_GRADS: dict[str, tuple[Callable[[Stepped], Any], type[Exception], tuple[Fragment, ...]]] = {
    "int grad": (lambda s: np.ones(SHAPES[-1], np.int64), ParamDTypeError, ("int64", "float32 or float64")),
    "float16 grad": (lambda s: np.ones(SHAPES[-1], np.float16), ParamDTypeError, ("float16",)),
    "float32 grad": (lambda s: np.ones(SHAPES[-1], np.float32), ParamDTypeError, ("float32", "float64")),
    "bool grad": (lambda s: np.ones(SHAPES[-1], bool), ParamDTypeError, ("bool",)),
    "transposed shape": (lambda s: np.ones(SHAPES[-1][::-1]), InvalidParamError, ("shape (3, 2)", "(2, 3)")),
    "flat shape": (lambda s: np.ones(6), InvalidParamError, ("shape (6,)", "(2, 3)")),
    "0-d grad": (lambda s: np.array(1.0), InvalidParamError, ("shape ()", "(2, 3)")),
    "transposed view": (lambda s: np.ones((3, 2)).T, InvalidParamError, ("not C-contiguous",)),
    "strided view": (lambda s: np.ones((2, 6))[:, ::2], InvalidParamError, ("not C-contiguous",)),
    "reversed view": (lambda s: np.ones((2, 3))[:, ::-1], InvalidParamError, ("not C-contiguous",)),
    "list": (lambda s: np.ones(SHAPES[-1]).tolist(), ParamDTypeError, ("numpy.ndarray", "list")),
    "Python float": (lambda s: 1.0, ParamDTypeError, ("numpy.ndarray", "float")),
    "its own param": (lambda s: s.params[-1], InvalidParamError, ("shares memory",)),
    "a view of its own param": (lambda s: s.params[-1][:], InvalidParamError, ("shares memory",)),
    "another param": (lambda s: s.params[0], InvalidParamError, ("shares memory with param_groups[0]['params'][0]",)),
    "partly overlapping another param": (lambda s: _overlapping_view(s.params[0]), InvalidParamError,
                                         ("shares memory with param_groups[0]['params'][0]",)),
    "unaligned grad": (lambda s: _unaligned(SHAPES[-1]), InvalidParamError, ("not aligned",)),
}


@pytest.mark.parametrize("case", list(BAD_GRADS))
def test_bad_grad_is_rejected_and_nothing_changes(stepped: Stepped, config: str, layout: str, case: str) -> None:
    make_grad, error, fragments = BAD_GRADS[case]
    grads = stepped.grads_with_last(make_grad(stepped))
    expect_rejected(stepped.opt, stepped.params, lambda: stepped.opt.step(grads),
                    error, f"grad of {stepped.last}", *fragments)
    assert_steps_like_a_fresh_twin(stepped, config, layout)


@pytest.mark.parametrize("param_dtype, grad_dtype", [(np.float32, np.float64), (np.float64, np.float32)])
def test_grad_of_the_other_float_dtype_is_rejected(config: str, layout: str, param_dtype: Any,
                                                   grad_dtype: Any) -> None:
    s = make_stepped(config, layout, param_dtype)
    grads = s.grads_with_last(np.ones(SHAPES[-1], grad_dtype))
    expect_rejected(s.opt, s.params, lambda: s.opt.step(grads), ParamDTypeError,
                    f"grad of {s.last}", f"dtype {np.dtype(grad_dtype).name}", np.dtype(param_dtype).name)


def test_grad_aliasing_a_state_buffer_is_rejected(stepped: Stepped) -> None:
    state = stepped.opt.state[stepped.params[0]]
    buffers = [name for name, value in state.items() if name != "step" and value.shape == SHAPES[-1]]
    if not buffers:
        pytest.skip("this optimizer keeps no state buffer")
    grads = stepped.grads_with_last(state[buffers[0]])
    expect_rejected(stepped.opt, stepped.params, lambda: stepped.opt.step(grads), InvalidParamError,
                    f"grad of {stepped.last}", f"shares memory with {stepped.labels[0]}'s state '{buffers[0]}'")


@pytest.mark.parametrize("count", [0, 2, 4])
def test_wrong_number_of_grads_is_rejected(stepped: Stepped, count: int) -> None:
    grads = (stepped.grads() * 2)[:count]
    expect_rejected(stepped.opt, stepped.params, lambda: stepped.opt.step(grads), InvalidParamError,
                    f"got {count} grads for 3 params")


def test_grads_must_be_iterable(stepped: Stepped) -> None:
    expect_rejected(stepped.opt, stepped.params, lambda: stepped.opt.step(5), TypeError)  # type: ignore[arg-type]


def test_param_made_read_only_after_construction_is_rejected(stepped: Stepped, config: str,
                                                             layout: str) -> None:
    stepped.params[-1].setflags(write=False)
    grads = stepped.grads()
    expect_rejected(stepped.opt, stepped.params, lambda: stepped.opt.step(grads), InvalidParamError,
                    stepped.last, "read-only")
    stepped.params[-1].setflags(write=True)
    assert_steps_like_a_fresh_twin(stepped, config, layout)


def test_read_only_grads_are_fine(stepped: Stepped, config: str, layout: str) -> None:
    twin = make_stepped(config, layout)
    grads = stepped.grads()
    for g in grads:
        g.setflags(write=False)
    stepped.opt.step(grads)
    twin.opt.step([g.copy() for g in grads])
    for i, (p, q) in enumerate(zip(stepped.params, twin.params)):
        assert_bits_equal(p, q, f"param {i}")


def test_one_grad_array_for_two_params_is_fine(stepped: Stepped, config: str, layout: str) -> None:
    """Grads are only read, so two params may share one (params 0 and 2 have the same shape)."""
    twin = make_stepped(config, layout)
    grads = stepped.grads()
    grads[2] = grads[0]
    stepped.opt.step(grads)
    twin.opt.step([g.copy() for g in grads])
    for i, (p, q) in enumerate(zip(stepped.params, twin.params)):
        assert_bits_equal(p, q, f"param {i}")


# -- hyperparameters changed after construction -------------------------------------------------

COMMON_BAD_OPTIONS = [("lr", NAN), ("lr", INF), ("lr", -1e-3), ("lr", "fast"), ("weight_decay", -0.1),
                      ("weight_decay", NAN)]


@pytest.mark.parametrize("key, value", COMMON_BAD_OPTIONS, ids=lambda v: repr(v))
def test_bad_option_set_in_param_groups_is_rejected_at_step(stepped: Stepped, key: str, value: Any) -> None:
    if key not in stepped.opt.param_groups[0]:
        pytest.skip(f"{type(stepped.opt).__name__} has no {key!r} option")
    last_group = len(stepped.opt.param_groups) - 1
    stepped.opt.param_groups[last_group][key] = value
    grads = stepped.grads()
    expect_rejected(stepped.opt, stepped.params, lambda: stepped.opt.step(grads), InvalidHyperparameterError,
                    f"param_groups[{last_group}]", key)


# (class, options, key, new value): options that would change which state buffers are kept
STATE_CHANGING = [
    ("Adam", {}, "amsgrad", True),
    ("Adam", {"amsgrad": True}, "amsgrad", False),
    ("AdamW", {}, "amsgrad", True),
    ("SGD", {}, "momentum", 0.9),
    ("SGD", {"momentum": 0.9}, "momentum", 0.0),
    ("RMSprop", {}, "centered", True),
    ("RMSprop", {}, "momentum", 0.5),
]


@pytest.mark.parametrize("name, options, key, value", STATE_CHANGING)
def test_changing_an_option_that_shapes_the_state_is_rejected_at_step(name: str, options: dict[str, Any],
                                                                      key: str, value: Any) -> None:
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(s) for s in SHAPES]
    opt = CLASSES[name](params, **options)
    opt.step([rng.standard_normal(s) for s in SHAPES])
    opt.param_groups[0][key] = value
    grads = [rng.standard_normal(s) for s in SHAPES]
    expect_rejected(opt, params, lambda: opt.step(grads), InvalidHyperparameterError,
                    "param_groups[0]", key, "create a new optimizer")


# -- bad params at construction and in add_param_group ------------------------------------------

# name -> (the bad last param, made from the params before it; the error; fragments)
BAD_PARAMS: dict[str, tuple[Callable[[list[np.ndarray]], Any], type[Exception], tuple[Fragment, ...]]] = {
    "int param": (lambda before: np.ones((2, 3), np.int64), ParamDTypeError, ("int64", "float32 or float64")),
    "float16 param": (lambda before: np.ones((2, 3), np.float16), ParamDTypeError, ("float16",)),
    "complex param": (lambda before: np.ones((2, 3), np.complex128), ParamDTypeError, ("complex128",)),
    "big-endian param": (lambda before: np.ones((2, 3), ">f8"), ParamDTypeError, ("byte order",)),
    "transposed param": (lambda before: np.ones((3, 2)).T, InvalidParamError, ("not C-contiguous",)),
    "strided param": (lambda before: np.ones((2, 6))[:, ::2], InvalidParamError, ("not C-contiguous",)),
    "read-only param": (lambda before: _read_only(np.ones((2, 3))), InvalidParamError, ("read-only",)),
    "unaligned param": (lambda before: _unaligned((2, 3)), InvalidParamError, ("not aligned",)),
    "list": (lambda before: [1.0, 2.0], ParamDTypeError, ("numpy.ndarray", "list")),
    "None": (lambda before: None, ParamDTypeError, ("numpy.ndarray", "NoneType")),
    "same param twice": (lambda before: before[0], InvalidParamError,
                         (("shares memory", "more than one param group"),)),
    "view of another param": (lambda before: before[0][:], InvalidParamError, ("shares memory",)),
    "overlapping view": (lambda before: _overlapping_view(before[0]), InvalidParamError, ("shares memory",)),
}


def _read_only(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def _unaligned(shape: tuple[int, ...]) -> np.ndarray:
    """A writeable float64 array whose data starts one byte into its buffer."""
    count = int(np.prod(shape))
    array = np.frombuffer(bytearray(count * 8 + 1), dtype=np.float64, count=count, offset=1).reshape(shape)
    assert not array.flags.aligned and array.flags.writeable
    return array


def _overlapping_view(first: np.ndarray) -> np.ndarray:
    """A (2, 3) view that starts inside ``first`` (itself a view of a bigger array) and runs past it."""
    base = first.base if first.base is not None else first
    flat = base.reshape(-1)
    return flat[3:9].reshape(2, 3)


def fresh_params(rng: np.random.Generator) -> list[np.ndarray]:
    """Three params; the first is a view into a bigger array, so a view can overlap it partly."""
    base = rng.standard_normal(12)
    return [base[:6].reshape(2, 3), rng.standard_normal((4,)), rng.standard_normal((2, 3))]


@pytest.mark.parametrize("case", list(BAD_PARAMS))
@pytest.mark.parametrize("name", list(CLASSES))
def test_bad_param_at_construction_is_rejected(name: str, layout: str, case: str) -> None:
    make_param, error, fragments = BAD_PARAMS[case]
    good = fresh_params(np.random.default_rng(0))
    params = good[:2] + [make_param(good)]
    expect_rejected(None, good, lambda: CLASSES[name](grouped(params, layout)), error, labels(layout)[-1],
                    *fragments)


@pytest.mark.parametrize("case", list(BAD_PARAMS))
def test_bad_param_in_add_param_group_is_rejected(config: str, case: str) -> None:
    """A rejected group is not added, the optimizer's arrays are untouched and it steps on as before."""
    make_param, error, fragments = BAD_PARAMS[case]
    cls, options = CONFIGS[config]
    rng = np.random.default_rng(0)
    params = fresh_params(rng)
    opt = cls(params, **options)
    opt.step([rng.standard_normal(p.shape) for p in params])
    bad = {"params": [np.zeros(5), make_param(params)]}
    expect_rejected(opt, params, lambda: opt.add_param_group(bad), error, "param_groups[1]['params'][1]",
                    *fragments)
    assert len(opt.param_groups) == 1
    opt.step([rng.standard_normal(p.shape) for p in params])  # still three params, one group


def test_same_param_twice_is_named_by_both_indices() -> None:
    p, q = np.zeros(3), np.zeros(2)
    with pytest.raises(InvalidParamError) as info:
        Adam([q, p, p])
    assert_message(info.value, ["param_groups[0]['params'][1]", "param_groups[0]['params'][2]", "shares memory"])


def test_same_parameter_object_in_two_groups_is_rejected() -> None:
    p, q = optrs.Parameter(np.zeros(3)), optrs.Parameter(np.zeros(2))
    with pytest.raises(InvalidParamError) as info:
        Adam([{"params": [p]}, {"params": [q, p]}])
    assert_message(info.value, ["param_groups[1]['params'][1]", "more than one param group"])


# (class, options, the hyperparameter's name in the message)
BAD_OPTIONS: list[tuple[str, dict[str, Any], str]] = [
    *[(name, {"lr": v}, "lr") for name in CLASSES for v in (NAN, INF, -INF, -1e-3)],
    *[(name, {"lr": "0.1"}, "lr") for name in CLASSES],
    *[(name, {"weight_decay": v}, "weight_decay") for name in CLASSES if name != "Rprop" for v in (NAN, INF, -0.1)],
    *[(name, {"eps": v}, "eps") for name in CLASSES if name not in ("SGD", "Rprop", "ASGD", "Adafactor")
      for v in (NAN, INF, -1e-8)],
    *[(name, {"betas": b}, f"betas[{i}]")
      for name in ("Adam", "AdamW", "Adamax", "NAdam", "RAdam", "LAMB", "ScheduleFreeAdamW")
      for i, b in [(0, (1.0, 0.999)), (0, (-0.1, 0.999)), (0, (NAN, 0.999)), (0, (INF, 0.999)),
                   (1, (0.9, 1.0)), (1, (0.9, -0.1)), (1, (0.9, NAN)), (1, (0.9, 1.5))]],
    *[("Adam", {"betas": b}, "betas") for b in [(0.9,), (0.9, 0.99, 0.999), ("a", "b")]],
    ("SGD", {"nesterov": True}, "nesterov"),
    ("SGD", {"nesterov": True, "momentum": 0.9, "dampening": 0.1}, "nesterov"),
    ("SGD", {"momentum": -0.1}, "momentum"),
    ("SGD", {"momentum": NAN}, "momentum"),
    ("SGD", {"momentum": INF}, "momentum"),
    ("SGD", {"dampening": NAN}, "dampening"),
    *[("Adadelta", {"rho": v}, "rho") for v in (-0.1, 1.1, NAN, INF)],
    *[("Adagrad", {"lr_decay": v}, "lr_decay") for v in (-0.1, NAN, INF)],
    *[("Adagrad", {"initial_accumulator_value": v}, "initial_accumulator_value") for v in (-0.1, NAN, INF)],
    *[("RMSprop", {"alpha": v}, "alpha") for v in (-0.1, NAN, INF)],
    *[("RMSprop", {"momentum": v}, "momentum") for v in (-0.1, NAN)],
    *[("NAdam", {"momentum_decay": v}, "momentum_decay") for v in (-0.1, NAN, INF)],
    *[("Rprop", {"etas": e}, f"etas[{i}]") for i, e in [(0, (0.0, 1.2)), (0, (1.0, 1.2)), (0, (NAN, 1.2)),
                                                        (1, (0.5, 1.0)), (1, (0.5, INF))]],
    *[("Rprop", {"step_sizes": s}, f"step_sizes[{i}]") for i, s in [(0, (-1.0, 50)), (1, (1e-6, NAN)),
                                                                    (1, (1.0, 0.5))]],
    *[("ASGD", {k: NAN}, k) for k in ("lambd", "alpha", "t0")],
    ("ScheduleFreeAdamW", {"betas": (0.0, 0.999)}, "betas[0]"),
    *[("ScheduleFreeAdamW", {k: v}, k) for k in ("warmup_steps", "r", "weight_lr_power") for v in (NAN, INF, -1.0)],
    *[("Adafactor", {"eps": e}, f"eps[{i}]") for i, e in [(0, (NAN, 1e-3)), (0, (INF, 1e-3)), (0, (-1e-8, 1e-3)),
                                                          (1, (None, NAN)), (1, (None, INF)), (1, (None, -1e-3))]],
    *[("Adafactor", {"eps": e}, "eps") for e in [1e-3, (None,), (1e-30, 1e-3, 1e-3), ("a", 1e-3)]],
    *[("Adafactor", {"beta2_decay": v}, "beta2_decay") for v in (0.5, NAN, -INF)],
    *[("Adafactor", {"d": v}, "d") for v in (0.5, NAN, INF)],
]


@pytest.mark.parametrize("name, options, key", BAD_OPTIONS, ids=[f"{n}-{o}" for n, o, _ in BAD_OPTIONS])
def test_bad_hyperparameter_is_rejected_at_construction(name: str, options: dict[str, Any], key: str) -> None:
    params = fresh_params(np.random.default_rng(0))
    expect_rejected(None, params, lambda: CLASSES[name](params, **options), InvalidHyperparameterError,
                    key, ("must", "requires"))


def test_bad_hyperparameter_error_names_its_group() -> None:
    """With several groups, the message must say which group holds the bad value, both in the
    constructor and in add_param_group (as it already does at step time)."""
    for cls in CLASSES.values():
        a, b, c = np.zeros(3), np.zeros(2), np.zeros(4)
        with pytest.raises(InvalidHyperparameterError) as info:
            cls([{"params": [a]}, {"params": [b], "lr": -1.0}])
        assert_message(info.value, ["param_groups[1]", "lr"])
        opt = cls([a, b])
        with pytest.raises(InvalidHyperparameterError) as info:
            opt.add_param_group({"params": [c], "lr": NAN})
        assert_message(info.value, ["param_groups[1]", "lr"])
        assert len(opt.param_groups) == 1


@pytest.mark.parametrize("flag", ["capturable", "differentiable"])
def test_unsupported_implementation_flags_are_rejected(flag: str) -> None:
    for cls in CLASSES.values():
        if flag not in inspect.signature(cls).parameters:
            continue  # torch's SGD and Adagrad have no `capturable`; optimizers torch lacks have neither
        with pytest.raises(InvalidHyperparameterError, match=flag):
            cls([np.zeros(2)], **{flag: True})


# -- the params argument ------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(CLASSES))
def test_empty_param_list_is_rejected(name: str) -> None:
    for empty in ([], (), iter([])):
        with pytest.raises(InvalidParamError, match="empty parameter list"):
            CLASSES[name](empty)


@pytest.mark.parametrize("name", list(CLASSES))
def test_a_single_array_instead_of_a_list_is_rejected(name: str) -> None:
    for single in (np.zeros(3), optrs.Parameter(np.zeros(3))):
        with pytest.raises(ParamDTypeError, match="wrap it in a list"):
            CLASSES[name](single)


# The params argument is handled by the Optimizer base class: these check every class in turn.
UNORDERED = [set, frozenset]


@pytest.mark.parametrize("unordered", UNORDERED, ids=lambda t: t.__name__)
def test_a_set_of_params_in_a_group_is_rejected(unordered: type) -> None:
    for cls in CLASSES.values():
        params = unordered([optrs.Parameter(np.zeros(3)), optrs.Parameter(np.zeros(2))])
        with pytest.raises(TypeError, match="set"):
            cls([{"params": params}])


@pytest.mark.parametrize("unordered", UNORDERED, ids=lambda t: t.__name__)
def test_a_set_of_params_is_rejected(unordered: type) -> None:
    """A set has no fixed order, so grads (which are paired with params by position) and
    state_dict indices would be paired with the wrong params. Rejected inside a group dict
    (test above), it must be rejected as the top-level params argument too."""
    for cls in CLASSES.values():
        params = unordered([optrs.Parameter(np.zeros(3)), optrs.Parameter(np.zeros(2))])
        with pytest.raises(TypeError, match="set"):
            cls(params)


@pytest.mark.parametrize("name", list(CLASSES))
def test_group_without_params_is_rejected(name: str) -> None:
    with pytest.raises(InvalidParamError, match="'params'"):
        CLASSES[name]([{"lr": 0.1}])


@pytest.mark.parametrize("name", list(CLASSES))
def test_a_group_that_is_not_a_dict_is_rejected(name: str) -> None:
    opt = CLASSES[name]([np.zeros(3)])
    with pytest.raises(ParamDTypeError, match="dict"):
        opt.add_param_group([np.zeros(2)])  # type: ignore[arg-type]
    assert len(opt.param_groups) == 1


@pytest.mark.parametrize("config_name", list(CONFIGS))
def test_an_empty_group_is_allowed_and_takes_no_grads(config_name: str) -> None:
    """As in torch, a group may have no params: it takes no grads and keeps no state, and the
    params of the other groups are indexed around it."""
    cls, options = CONFIGS[config_name]
    rng = np.random.default_rng(0)
    p = rng.standard_normal(4)
    twin = p.copy()
    only_empty = cls([{"params": []}], **options)
    only_empty.step([])
    assert only_empty.state_dict()["state"] == {}

    opt = cls([{"params": []}, {"params": [p]}], **options)
    reference = cls([twin], **options)
    g = rng.standard_normal(4)
    opt.step([g])
    reference.step([g])
    assert_bits_equal(p, twin, "param after a step beside an empty group")
    assert opt.state_dict()["param_groups"][0]["params"] == []
    assert opt.state_dict()["param_groups"][1]["params"] == [0]
    with pytest.raises(InvalidParamError, match="got 2 grads for 1 params"):
        opt.step([None, g])


# -- Parameter objects and their .grad ----------------------------------------------------------


def test_parameter_without_grad_is_skipped(config: str) -> None:
    """A Parameter whose .grad is None is left alone: its data, its state and its step count do
    not change, so its later steps are those of a param that never saw the skipped one."""
    cls, options = CONFIGS[config]
    rng = np.random.default_rng(0)
    params = [optrs.Parameter(rng.standard_normal(s)) for s in SHAPES]
    alone = optrs.Parameter(params[1].data.copy())  # param 1 on its own, without the skipped step
    alone_opt = cls([alone], **options)
    opt = cls(params, **options)
    g1, g3 = rng.standard_normal(SHAPES[1]), rng.standard_normal(SHAPES[1])

    for p in params:
        p.grad = rng.standard_normal(p.shape)
    params[1].grad = g1
    opt.step()
    alone.grad = g1.copy()
    alone_opt.step()

    # Step 2 skips param 1.
    for p in params:
        p.grad = rng.standard_normal(p.shape)
    params[1].grad = None
    before = snapshot(opt, [p.data for p in params])
    opt.step()
    assert_bits_equal(params[1].data, before.arrays[1], "the skipped param")
    assert opt.state_dict()["state"].get(1, {}).keys() == before.state.get(1, {}).keys()
    for name, value in opt.state_dict()["state"].get(1, {}).items():
        assert_bits_equal(value, before.state[1][name], f"the skipped param's state {name!r}")
    for i in (0, 2):
        assert not np.array_equal(params[i].data, before.arrays[i]), f"param {i} was not updated"

    if config in GROUP_SCHEDULED:
        return
    # Step 3: param 1 takes its second step, as if step 2 had not happened to it.
    for p in params:
        p.grad = rng.standard_normal(p.shape)
    params[1].grad = g3
    opt.step()
    alone.grad = g3.copy()
    alone_opt.step()
    assert_bits_equal(params[1].data, alone.data, "param 1 after its second step")
    if "step" in opt.state[params[1]]:
        assert float(opt.state[params[1]]["step"]) == 2.0


def test_parameter_never_given_a_grad_gets_no_state(config: str) -> None:
    cls, options = CONFIGS[config]
    params = [optrs.Parameter(np.ones(s)) for s in SHAPES]
    opt = cls(params, **options)
    params[0].grad = np.ones(SHAPES[0])
    opt.step()
    assert_bits_equal(params[2].data, np.ones(SHAPES[2]), "the param without a grad")
    if cls is Adagrad:  # torch creates Adagrad's state at construction: step 0, sum at its start
        assert float(opt.state[params[2]]["step"]) == 0.0
        assert_bits_equal(opt.state[params[2]]["sum"], np.full(SHAPES[2], options["initial_accumulator_value"]),
                          "sum")
    else:
        assert params[2] not in opt.state
        assert 2 not in opt.state_dict()["state"]


def test_parameter_with_a_bad_grad_is_rejected(config: str) -> None:
    cls, options = CONFIGS[config]
    rng = np.random.default_rng(0)
    params = [optrs.Parameter(rng.standard_normal(s)) for s in SHAPES]
    opt = cls(params, **options)
    for p in params:
        p.grad = rng.standard_normal(p.shape)
    opt.step()
    for p in params:
        p.grad = rng.standard_normal(p.shape)
    params[-1].grad = params[-1].grad.astype(np.float32)
    expect_rejected(opt, [p.data for p in params], opt.step, ParamDTypeError,
                    "grad of param_groups[0]['params'][2]", "float32")


@pytest.mark.parametrize("replacement, error, fragment", [
    (lambda old: _read_only(old.copy()), InvalidParamError, "read-only"),
    (lambda old: np.zeros(old.size + 1), InvalidParamError,
     ("replaced by an array of 7", "replaced by an array of shape (7,)")),
    (lambda old: old.astype(np.float32), InvalidParamError, "float32"),
    (lambda old: np.ones((3, 2)).T, InvalidParamError, "not C-contiguous"),
], ids=["read-only", "bigger", "float32", "non-contiguous"])
def test_parameter_data_replaced_by_an_unusable_array_is_rejected(config: str, replacement: Any,
                                                                  error: type[Exception], fragment: Fragment) -> None:
    cls, options = CONFIGS[config]
    rng = np.random.default_rng(0)
    params = [optrs.Parameter(rng.standard_normal(s)) for s in SHAPES]
    opt = cls(params, **options)
    for p in params:
        p.grad = rng.standard_normal(p.shape)
    opt.step()
    params[-1].data = replacement(params[-1].data)
    for p in params:
        p.grad = rng.standard_normal(p.shape).astype(p.data.dtype)
    expect_rejected(opt, [p.data for p in params], opt.step, error, "param_groups[0]['params'][2]", fragment)


@pytest.mark.parametrize("config_name", list(CONFIGS))
def test_step_without_grads_on_plain_arrays_says_to_pass_grads(config_name: str) -> None:
    cls, options = CONFIGS[config_name]
    for params in ([np.ones(3), np.ones(2)], [optrs.Parameter(np.ones(3)), np.ones(2)]):
        opt = cls(params, **options)
        arrays = [p if isinstance(p, np.ndarray) else p.data for p in params]
        expect_rejected(opt, arrays, opt.step, InvalidParamError, "pass the grads", "opt.step([")


# -- NaN and inf in gradients -------------------------------------------------------------------


def test_nan_and_inf_in_grads_propagate_without_error(config: str, layout: str) -> None:
    """As in torch: no error, the elements with a NaN/inf grad become non-finite (NaN for a NaN
    grad) and every other element is updated exactly as if the bad ones were not there. LAMB's
    per-tensor trust ratio spreads them over their tensor: its norms are NaN; with Adafactor, which
    factors a matrix's second moment, every element of that matrix becomes NaN too."""
    s = make_stepped(config, layout)
    twin = make_stepped(config, layout)
    grads = s.grads()
    clean = [g.copy() for g in grads]
    grads[-1][0, 0], grads[-1][0, 1], grads[-1][1, 2] = np.nan, np.inf, -np.inf
    before = s.params[-1].copy()
    s.opt.step(grads)
    twin.opt.step(clean)
    last = s.params[-1]
    if config == "Rprop":
        # Rprop moves by the gradient's sign only, and torch.sign(NaN) is 0: as in torch, a NaN grad
        # leaves its element where it was and an infinite one takes an ordinary finite step.
        assert last[0, 0] == before[0, 0] and np.isfinite(last[0, 1]) and np.isfinite(last[1, 2])
    elif config in ("LAMB", "Adafactor"):
        # LAMB: the NaN reaches the tensor's norms. Adafactor: it reaches the row factors' mean,
        # which divides every element's estimate.
        assert np.isnan(last).all()
    else:
        assert np.isnan(last[0, 0])
        assert not np.isfinite(last[0, 1]) and not np.isfinite(last[1, 2])
    bad = np.full(SHAPES[-1], config == "Adafactor")  # there, no element is as if the bad ones were not
    bad[0, 0] = bad[0, 1] = bad[1, 2] = True
    if config == "LAMB":
        bad[...] = True
    assert_bits_equal(last[~bad], twin.params[-1][~bad], "the last param's other elements")
    for i in range(len(SHAPES) - 1):
        assert_bits_equal(s.params[i], twin.params[i], f"param {i}")
    s.opt.step(s.grads())  # still no error on the next step
    assert np.isnan(last[0, 0]) or config == "Rprop"


# -- the functional API -------------------------------------------------------------------------


@dataclass
class Functional:
    fn: Callable[..., None]
    columns: list[str]  # state lists, in the function's order
    options: dict[str, Any]
    has_steps: bool = True


FUNCTIONALS = {
    "sgd": Functional(optrs.functional.sgd, ["momentum_buffer_list"], dict(lr=0.1, momentum=0.9), has_steps=False),
    "adam": Functional(optrs.functional.adam, ["exp_avgs", "exp_avg_sqs", "max_exp_avg_sqs"],
                       dict(amsgrad=True, beta1=0.9, beta2=0.999, lr=0.1, weight_decay=0.0, eps=1e-8)),
    "adamw": Functional(optrs.functional.adamw, ["exp_avgs", "exp_avg_sqs", "max_exp_avg_sqs"],
                        dict(amsgrad=True, beta1=0.9, beta2=0.999, lr=0.1, weight_decay=0.01, eps=1e-8)),
    "adagrad": Functional(optrs.functional.adagrad, ["state_sums"], dict(lr=0.1)),
    "adadelta": Functional(optrs.functional.adadelta, ["square_avgs", "acc_deltas"], dict(lr=1.0, rho=0.9, eps=1e-6)),
    "rmsprop": Functional(optrs.functional.rmsprop, ["square_avgs", "grad_avgs", "momentum_buffer_list"],
                          dict(lr=0.01, alpha=0.99, eps=1e-8, momentum=0.5, centered=True)),
}


@dataclass
class FunctionalCall:
    spec: Functional
    params: list[np.ndarray]
    grads: list[Any]
    columns: dict[str, list[Any]]
    steps: list[np.ndarray]

    def __call__(self) -> None:
        steps = {"state_steps": self.steps} if self.spec.has_steps else {}
        self.spec.fn(self.params, self.grads, **self.columns, **steps, **self.spec.options)

    def arrays(self) -> list[np.ndarray]:
        """Every array the call could write (and the grads), deduplicated by identity."""
        seen: dict[int, np.ndarray] = {}
        for a in [*self.params, *self.grads, *(a for c in self.columns.values() for a in c), *self.steps]:
            if isinstance(a, np.ndarray):
                seen.setdefault(id(a), a)
        return list(seen.values())


def functional_call(name: str) -> FunctionalCall:
    spec = FUNCTIONALS[name]
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(3) for _ in range(2)]
    columns = {c: [np.abs(rng.standard_normal(3)) for _ in params] for c in spec.columns}
    call = FunctionalCall(spec, params, [rng.standard_normal(3) for _ in params], columns,
                          [np.zeros(1) for _ in params])
    call()  # one good step, so the state is not at its initial values
    call.grads = [rng.standard_normal(3) for _ in params]
    return call


def first_state(call: FunctionalCall) -> list[Any]:
    """The call's first state list (exp_avgs, state_sums, ...)."""
    return call.columns[call.spec.columns[0]]


def set_first_state(index: int, make: Callable[[FunctionalCall], Any]) -> Callable[[FunctionalCall], None]:
    def spoil(call: FunctionalCall) -> None:
        first_state(call)[index] = make(call)
    return spoil


def set_grad(index: int, make: Callable[[FunctionalCall], Any]) -> Callable[[FunctionalCall], None]:
    def spoil(call: FunctionalCall) -> None:
        call.grads[index] = make(call)
    return spoil


def shorten_first_state(call: FunctionalCall) -> None:
    call.columns[call.spec.columns[0]] = first_state(call)[:-1]


# name -> (how the call is spoiled, fragments of the message)
FUNCTIONAL_CASES: dict[str, tuple[Callable[[FunctionalCall], None], tuple[Fragment, ...]]] = {
    "state list too short": (shorten_first_state, ("entries for 2 params",)),
    "state list too long": (lambda c: first_state(c).append(np.zeros(3)), ("entries for 2 params",)),
    "grads too short": (lambda c: c.grads.pop(), ("got 1 grads for 2 params",)),
    "grads too long": (lambda c: c.grads.append(np.zeros(3)), ("got 3 grads for 2 params",)),
    "state buffer is its grad": (set_first_state(1, lambda c: c.grads[1]),
                                 ("grad of params[1]", "shares memory with params[1]'s state")),
    "state buffer is a param": (set_first_state(1, lambda c: c.params[0]), ("params[", "shares memory")),
    "state buffer is its own param": (set_first_state(1, lambda c: c.params[1]), ("params[1]", "shares memory")),
    "state buffer of two params": (set_first_state(1, lambda c: first_state(c)[0]), ("params[", "shares memory")),
    "grad is a param": (set_grad(1, lambda c: c.params[0]), ("grad of params[1]", "shares memory with params[0]")),
    "state buffer of the wrong dtype": (set_first_state(1, lambda c: np.zeros(3, np.float32)),
                                        ("params[1]'s state", "float32")),
    "state buffer of the wrong shape": (set_first_state(1, lambda c: np.zeros(4)), ("params[1]'s state", "shape (4,)")),
}


@pytest.mark.parametrize("case", list(FUNCTIONAL_CASES))
@pytest.mark.parametrize("name", list(FUNCTIONALS))
def test_functional_bad_input_is_rejected_and_nothing_changes(name: str, case: str) -> None:
    spoil, fragments = FUNCTIONAL_CASES[case]
    call = functional_call(name)
    spoil(call)
    error = ParamDTypeError if "dtype" in case else InvalidParamError
    expect_rejected(None, call.arrays(), call, error, *fragments)


@pytest.mark.parametrize("name", [n for n, f in FUNCTIONALS.items() if len(f.columns) >= 2])
def test_functional_two_state_lists_sharing_a_buffer_are_rejected(name: str) -> None:
    call = functional_call(name)
    first, second = call.spec.columns[:2]
    call.columns[second][1] = call.columns[first][1]
    expect_rejected(None, call.arrays(), call, InvalidParamError, "params[1]'s state", "shares memory")


@pytest.mark.parametrize("name", [n for n, f in FUNCTIONALS.items() if f.has_steps])
def test_functional_steps_too_short_or_not_float64_are_rejected(name: str) -> None:
    call = functional_call(name)
    call.steps = call.steps[:1]
    expect_rejected(None, call.arrays(), call, InvalidParamError, "step counter")
    call = functional_call(name)
    call.steps[1] = np.zeros(1, np.int64)
    expect_rejected(None, call.arrays(), call, (InvalidParamError, ParamDTypeError), "params[1]'s step counter")


@pytest.mark.parametrize("name", list(FUNCTIONALS))
def test_functional_bad_hyperparameter_is_rejected(name: str) -> None:
    call = functional_call(name)
    call.spec = Functional(call.spec.fn, call.spec.columns, {**call.spec.options, "lr": -1.0},
                           call.spec.has_steps)
    expect_rejected(None, call.arrays(), call, InvalidHyperparameterError, "lr")
