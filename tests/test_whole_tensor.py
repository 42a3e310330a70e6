"""The optimizer contract of the optimizers whose rules see each tensor whole (Muon, Adafactor:
`Rule::SHAPED` rules behind the one engine, rust/py/src/engine.rs): Parameters, closures, state_dict,
concurrency, and bad input rejected with a message naming the param before anything changes.
Their arithmetic and the checks of their own state are in test_muon.py and test_adafactor.py."""

from __future__ import annotations

import math
import pickle
from typing import Any

import numpy as np
import pytest

import optrs
from optrs import InvalidHyperparameterError, InvalidParamError, ParamDTypeError
from optrs.optim import Adafactor, Muon, Optimizer

# (class, param shapes, options that differ from the defaults)
CASES: dict[str, tuple[type[Optimizer], list[tuple[int, ...]], dict[str, Any]]] = {
    "Muon": (Muon, [(6, 10), (10, 4)], dict(lr=0.02, nesterov=False, adjust_lr_fn="match_rms_adamw")),
    "Adafactor": (Adafactor, [(6, 10), (5,), (), (2, 4, 3)], dict(lr=0.05, eps=(1e-5, 1e-3), maximize=True)),
}


# Params big enough that a step runs on the pool and splits its work across threads (Muon's
# products, Adafactor's blocks): float32 shapes, float64 shapes, options.
BIG: dict[str, tuple[list[tuple[int, ...]], list[tuple[int, ...]], dict[str, Any]]] = {
    "Muon": ([(256, 160), (96, 400), (130, 130), (8, 12)], [(70, 90)],
             dict(lr=0.02, nesterov=False, weight_decay=0.01)),
    "Adafactor": ([(600, 500), (3, 200, 300), (150_001,), (70_000, 2), (8, 12)], [(300, 450), (140_000,)],
                  dict(lr=0.05, weight_decay=0.01)),
}


@pytest.fixture(params=list(CASES))
def case(request: pytest.FixtureRequest) -> tuple[type[Optimizer], list[tuple[int, ...]], dict[str, Any]]:
    return CASES[request.param]


@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("name", list(CASES))
def test_thread_count_does_not_change_a_bit(name: str, threads: int) -> None:
    cls = CASES[name][0]
    shapes32, shapes64, options = BIG[name]
    rng = np.random.default_rng(5)
    initial = [rng.standard_normal(s).astype(np.float32) for s in shapes32]
    initial += [rng.standard_normal(s) for s in shapes64]
    grads = [[rng.standard_normal(p.shape).astype(p.dtype) for p in initial] for _ in range(3)]

    def run(n: int) -> list[np.ndarray]:
        before = optrs.get_num_threads()
        optrs.set_num_threads(n)
        try:
            params = [p.copy() for p in initial]
            opt = cls(params, **options)
            for g in grads:
                opt.step(g)
            return params + [v for p in params for v in opt.state[p].values()]
        finally:
            optrs.set_num_threads(before)

    for a, b in zip(run(1), run(threads)):
        assert a.tobytes() == b.tobytes()


def test_state_dict_resumes_bit_identically(case: Any) -> None:
    cls, shapes, options = case
    rng = np.random.default_rng(7)
    initial = [np.array(rng.standard_normal(s), np.float32) for s in shapes]
    grads = [[np.array(rng.standard_normal(s), np.float32) for s in shapes] for _ in range(6)]
    params = [p.copy() for p in initial]
    opt = cls(params, **options)
    for g in grads[:3]:
        opt.step(g)
    resumed_params = [p.copy() for p in params]
    resumed = cls(resumed_params, lr=5.0)
    resumed.load_state_dict(pickle.loads(pickle.dumps(opt.state_dict())))
    assert {k: resumed.param_groups[0][k] for k in options} == options
    for g in grads[3:]:
        opt.step(g)
        resumed.step(g)
    for a, b in zip(params, resumed_params):
        assert a.tobytes() == b.tobytes()


def test_parameters_with_grads_zero_grad_and_closure(case: Any) -> None:
    cls, shapes, options = case
    rng = np.random.default_rng(8)
    w = optrs.Parameter(rng.standard_normal(shapes[0]))
    start = w.data.copy()
    opt = cls([w], **options)
    g = rng.standard_normal(shapes[0])

    def closure() -> float:
        w.grad = g
        return 1.5

    assert opt.step(closure) == 1.5
    assert not np.array_equal(w.data, start)
    opt.zero_grad()
    assert w.grad is None
    twin = start.copy()
    cls([twin], **options).step([g])
    np.testing.assert_array_equal(w.data, twin)


def test_a_reentrant_step_is_refused(case: Any) -> None:
    """A step that starts while the same optimizer is stepping gets a clear error."""
    cls, shapes, _ = case
    w = np.ones(shapes[0])
    opt = cls([w], lr=0.1)
    seen: list[BaseException] = []

    class Lr:
        def __float__(self) -> float:
            try:
                opt.step([np.ones(shapes[0])])
            except RuntimeError as error:
                seen.append(error)
            return 0.1

    opt.param_groups[0]["lr"] = Lr()
    opt.step([np.ones(shapes[0])])
    assert seen and "already stepping in another thread" in str(seen[0])


def test_wrong_number_of_grads_is_rejected(case: Any) -> None:
    cls, shapes, options = case
    params = [np.ones(s) for s in shapes]
    opt = cls(params, **options)
    opt.step([np.ones(s) for s in shapes])
    before = [p.tobytes() for p in params]
    with pytest.raises(InvalidParamError, match=f"got {len(shapes) - 1} grads for {len(shapes)} params"):
        opt.step([np.ones(s) for s in shapes[:-1]])
    assert [p.tobytes() for p in params] == before


def test_read_only_and_overlapping_params_are_rejected_at_construction(case: Any) -> None:
    cls, shapes, _ = case
    read_only = np.zeros(shapes[0])
    read_only.setflags(write=False)
    with pytest.raises(InvalidParamError, match="read-only"):
        cls([read_only])
    base = np.zeros((4, 3))
    with pytest.raises(InvalidParamError, match="shares memory"):
        cls([base[:2], base[1:3]])


def test_parameter_data_replaced_by_another_shape_is_rejected(case: Any) -> None:
    cls, shapes, _ = case
    w = optrs.Parameter(np.ones(shapes[0]))
    opt = cls([w])
    w.grad = np.ones(shapes[0])
    opt.step()
    other = shapes[0][::-1]
    w.data, w.grad = np.ones(other), np.ones(other)
    with pytest.raises(InvalidParamError, match=f"replaced by an array of shape \\({other[0]}, {other[1]}\\)"):
        opt.step()


# -- bad input ----------------------------------------------------------------------------------


def snapshot(opt: Optimizer, arrays: list[np.ndarray]) -> list[bytes]:
    return [a.tobytes() for a in arrays] + [v.tobytes() for p in arrays for v in opt.state[p].values()]


def stepped(name: str) -> tuple[Optimizer, list[np.ndarray]]:
    """An optimizer with state, its last param in a group of its own: the bad entry is always
    that one, so a check made while updating would already have changed the others. The first
    param is a view into a bigger array, so that another view can overlap it partly."""
    cls, shapes, _ = CASES[name]
    rng = np.random.default_rng(9)
    first, last = math.prod(shapes[0]), math.prod(shapes[-1])
    base = rng.standard_normal(first + last).astype(np.float32)
    params = [base[:first].reshape(shapes[0])] + [np.array(rng.standard_normal(s), np.float32) for s in shapes[1:]]
    opt = cls([{"params": params[:-1]}, {"params": params[-1:]}], lr=0.1)
    opt.step([np.array(rng.standard_normal(s), np.float32) for s in shapes])
    return opt, params


LAST = "param_groups[1]['params'][0]"


def base_of(param: np.ndarray) -> np.ndarray:
    assert param.base is not None
    return param.base


# (the bad last grad, made from the params; the error; a fragment of its message, with {shape},
# {flipped} and {size} standing for the last param's shape, that shape reversed and its size)
BAD_GRADS: dict[str, tuple[Any, type[Exception], str]] = {
    "wrong shape": (lambda p: np.ones(p[-1].shape[::-1], np.float32), InvalidParamError,
                    "shape {flipped} but the param has shape {shape}"),
    "flat": (lambda p: np.ones(p[-1].size, np.float32), InvalidParamError, "shape ({size},)"),
    "0-d": (lambda p: np.array(1.0, np.float32), InvalidParamError, "shape ()"),
    "float64": (lambda p: np.ones(p[-1].shape), ParamDTypeError, "dtype float64 but the param is float32"),
    "int": (lambda p: np.ones(p[-1].shape, np.int32), ParamDTypeError, "int32"),
    "not contiguous": (lambda p: np.ones(p[-1].shape + (2,), np.float32)[..., 0], InvalidParamError,
                       "not C-contiguous"),
    "its param": (lambda p: p[-1], InvalidParamError, f"shares memory with {LAST}"),
    "another param": (lambda p: base_of(p[0])[:p[-1].size].reshape(p[-1].shape), InvalidParamError,
                      "shares memory with param_groups[0]['params'][0]"),
    "partly another param": (lambda p: base_of(p[0])[p[0].size // 2:][:p[-1].size].reshape(p[-1].shape),
                             InvalidParamError, "shares memory with param_groups[0]['params'][0]"),
    "a list": (lambda p: np.ones(p[-1].shape).tolist(), ParamDTypeError, "numpy.ndarray"),
}


@pytest.mark.parametrize("case", list(BAD_GRADS))
@pytest.mark.parametrize("name", list(CASES))
def test_bad_grad_raises_and_changes_nothing(name: str, case: str) -> None:
    opt, params = stepped(name)
    make, error, fragment = BAD_GRADS[case]
    shape = params[-1].shape
    grads = [np.ones(p.shape, np.float32) for p in params[:-1]] + [make(params)]
    before = snapshot(opt, params)
    with pytest.raises(error) as info:
        opt.step(grads)
    assert fragment.format(shape=shape, flipped=shape[::-1], size=params[-1].size) in str(info.value)
    assert f"grad of {LAST}" in str(info.value)
    assert snapshot(opt, params) == before
    opt.step([np.ones(p.shape, np.float32) for p in params])  # and it steps on


BAD_OPTIONS: list[tuple[str, str, Any, str]] = [
    *[(name, "lr", v, f"invalid lr={shown}") for name in CASES
      for v, shown in [(math.nan, "NaN"), (-0.1, "-0.1"), (math.inf, "inf")]],
    *[(name, "lr", "fast", "'lr' must be a number") for name in CASES],
    *[(name, "weight_decay", v, f"invalid weight_decay={shown}") for name in CASES
      for v, shown in [(-0.1, "-0.1"), (math.inf, "inf")]],
    ("Muon", "momentum", -1.0, "invalid momentum"),
    ("Muon", "eps", math.nan, "invalid eps"),
    ("Muon", "ns_steps", 100, "less than 100"),
    ("Muon", "ns_steps", 2.5, "'ns_steps' must be a whole number"),
    ("Muon", "ns_coefficients", (1.0, 2.0), "exactly 3 numbers"),
    ("Muon", "adjust_lr_fn", "sqrt", "Adjust learning rate function sqrt is not supported"),
    ("Adafactor", "beta2_decay", 0.5, "invalid beta2_decay=0.5: must be a finite number <= 0"),
    ("Adafactor", "beta2_decay", math.nan, "invalid beta2_decay=NaN"),
    ("Adafactor", "eps", (-1e-3, 1e-3), "invalid eps[0]=-0.001"),
    ("Adafactor", "eps", (None, -1.0), "invalid eps[1]=-1"),
    ("Adafactor", "eps", (None, math.nan), "invalid eps[1]=NaN"),
    ("Adafactor", "eps", (1e-3,), "'eps' must be a pair (eps1, eps2)"),
    ("Adafactor", "eps", ("a", 1e-3), "'eps' must be a pair (eps1, eps2)"),
    ("Adafactor", "d", 0.5, "invalid d=0.5: must be a finite number >= 1"),
    ("Adafactor", "d", math.nan, "invalid d=NaN"),
]


@pytest.mark.parametrize("name, option, value, fragment", BAD_OPTIONS,
                         ids=[f"{n}-{o}={v!r}" for n, o, v, _ in BAD_OPTIONS])
def test_bad_option_raises_at_construction_and_at_step(name: str, option: str, value: Any, fragment: str) -> None:
    cls, shapes, _ = CASES[name]
    with pytest.raises(InvalidHyperparameterError, match="param_groups\\[0\\]") as info:
        cls([np.zeros(shapes[0])], **{option: value})
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)
    opt, params = stepped(name)
    opt.param_groups[1][option] = value
    before = snapshot(opt, params)
    with pytest.raises(InvalidHyperparameterError, match="param_groups\\[1\\]") as info:
        opt.step([np.ones(p.shape, np.float32) for p in params])
    assert fragment in str(info.value)
    assert snapshot(opt, params) == before


@pytest.mark.parametrize("name", list(CASES))
def test_param_made_read_only_after_construction_is_rejected(name: str) -> None:
    opt, params = stepped(name)
    params[-1].setflags(write=False)
    before = snapshot(opt, params)
    with pytest.raises(InvalidParamError) as info:
        opt.step([np.ones(p.shape, np.float32) for p in params])
    assert LAST in str(info.value) and "read-only" in str(info.value)
    assert snapshot(opt, params) == before


@pytest.mark.parametrize("bad, error, fragment", [
    (lambda shape: np.zeros(shape, np.int64), ParamDTypeError, "int64"),
    (lambda shape: np.zeros(shape, np.float16), ParamDTypeError, "float16"),
    (lambda shape: np.zeros(shape[::-1]).T, InvalidParamError, "not C-contiguous"),
    (lambda shape: np.zeros(shape)[:, ::-1], InvalidParamError, "not C-contiguous"),
    (lambda shape: np.zeros(shape).tolist(), ParamDTypeError, "numpy.ndarray"),
], ids=["int", "float16", "transposed", "reversed", "list"])
def test_bad_params_are_rejected_at_construction_and_in_add_param_group(case: Any, bad: Any, error: type[Exception],
                                                                       fragment: str) -> None:
    cls, shapes, _ = case
    good = np.zeros(shapes[0])
    with pytest.raises(error, match=fragment) as info:
        cls([good, bad(shapes[0])])
    assert "param_groups[0]['params'][1]" in str(info.value)
    opt = cls([good])
    with pytest.raises(error, match=fragment):
        opt.add_param_group({"params": [bad(shapes[0])]})
    assert len(opt.param_groups) == 1
    opt.step([np.ones(shapes[0])])


def test_empty_param_list_is_rejected(case: Any) -> None:
    cls, _, _ = case
    for empty in ([], (), iter([])):
        with pytest.raises(InvalidParamError, match="empty parameter list"):
            cls(empty)
