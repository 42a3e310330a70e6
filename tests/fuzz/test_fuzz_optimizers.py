"""Fuzzing of every optimizer through its Python API: random params (dtypes, shapes, layouts),
grads (bad dtypes, shapes, layouts, aliases of params and state, NaN/inf), options (valid and
bad), param-group edits, and changes to params and state between steps. The invariants are
``_fuzz_optim``'s; each operation runs in two worlds that differ only in the bytes around the
arrays.

``OptimizerMachine`` runs in this process. ``CrashProneOptimizerMachine`` adds what can make
optrs use freed memory (``ndarray.resize(..., refcheck=False)`` of a registered param) and runs
in the worker process, so that a crash fails the example rather than the whole run.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from _fuzz_arrays import Violation, budget, check_exception
from _fuzz_draw import FAMILIES, configs, grad_spec, operations, options
from _fuzz_optim import Pair
from _fuzz_worker import WORKER
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

import optrs

ALL_FAMILIES = frozenset(FAMILIES)


class OptimizerMachine(RuleBasedStateMachine):
    """One optimizer (two worlds) and a sequence of operations on it."""

    isolated = False  # run in the worker process (for the crash-prone operations)
    families = ALL_FAMILIES - {"resize"}

    def __init__(self) -> None:
        super().__init__()
        self.summary: dict[str, Any] = {"built": False}
        self.name = ""
        self.pair: Pair | None = None
        self.resized = False

    @initialize(data=st.data())
    def build(self, data: st.DataObject) -> None:
        self._build(data.draw(configs("resize" in self.families), label="config"))

    def _build(self, config: dict[str, Any]) -> None:
        self.name = config["optimizer"]
        if self.isolated:
            self.summary = WORKER.call("_fuzz_optim:remote_start", config)
        else:
            self.pair = Pair(config)
            self.summary = self.pair.worlds[0].summary()

    @rule(data=st.data())
    def operate(self, data: st.DataObject) -> None:
        if not self.summary.get("built", False):  # the constructor refused: try another
            self._build(data.draw(configs("resize" in self.families), label="config"))
            return
        op = data.draw(operations(self.name, self.families), label="op")
        self.resized |= op[0] == "mutate_param" and op[2] == "resize"
        if self.isolated:
            self.summary = WORKER.call("_fuzz_optim:remote_apply", op)
        else:
            assert self.pair is not None
            self.summary = self.pair.apply(op)

    def teardown(self) -> None:
        if self.resized:
            WORKER.stop()  # a use after free that did not crash may still have corrupted the worker


class CrashProneOptimizerMachine(OptimizerMachine):
    isolated = True
    families = ALL_FAMILIES


OptimizerMachine.TestCase.settings = settings(OptimizerMachine.TestCase.settings, max_examples=budget(0.35),
                                              stateful_step_count=12)
CrashProneOptimizerMachine.TestCase.settings = settings(CrashProneOptimizerMachine.TestCase.settings,
                                                        max_examples=budget(0.08), stateful_step_count=8)
TestOptimizers = OptimizerMachine.TestCase
TestOptimizersCrashProne = CrashProneOptimizerMachine.TestCase


@settings(max_examples=budget(0.3), deadline=None)
@given(data=st.data())
def test_construction_with_bad_params_and_options(data: st.DataObject) -> None:
    """Constructors and ``add_param_group`` refuse bad params and options with optrs's errors."""
    config = data.draw(configs(), label="config")
    pair = Pair(config)
    if pair.worlds[0].opt is not None:
        name = config["optimizer"]
        extra = data.draw(st.tuples(st.just("add_group"), options(name), st.lists(st.tuples(
            st.sampled_from([(3,), (2, 2), ()]), st.sampled_from(["float32", "float64", "int8", ">f8", "object"]),
            st.integers(0, 99), st.sampled_from(["guarded", "F", "neg", "readonly", "unaligned"])), max_size=2)),
            label="add_group")
        pair.apply(extra)
        pair.apply(("step", [data.draw(grad_spec(), label="grad") for _ in range(4)], 0))


LBFGS_OPTIONS = st.fixed_dictionaries({}, optional=dict(
    lr=st.sampled_from([1.0, 0.1, 0.0, -1.0, float("nan"), 1e308]), max_iter=st.sampled_from([1, 3, 0, -1]),
    max_eval=st.sampled_from([None, 1, 5, 0]), tolerance_grad=st.sampled_from([1e-7, 0.0, float("nan")]),
    tolerance_change=st.sampled_from([1e-9, 0.0, -1.0]), history_size=st.sampled_from([1, 10, 0, -1]),
    line_search_fn=st.sampled_from([None, "strong_wolfe", "bogus"])))


@settings(max_examples=budget(0.15), deadline=None)
@given(opts=LBFGS_OPTIONS, shape=st.sampled_from([(3,), (2, 2), (), (0,)]),
       dtype=st.sampled_from(["float32", "float64"]),
       closure_kind=st.sampled_from(["quadratic", "nan", "inf", "none_grad", "bad_dtype", "bad_shape", "raises"]),
       steps=st.integers(1, 3))
def test_lbfgs(opts: dict[str, Any], shape: tuple[int, ...], dtype: str, closure_kind: str, steps: int) -> None:
    """LBFGS (closure-driven): only optrs's errors come out, and its params stay inside their guards."""
    from _fuzz_arrays import Arena

    arena = Arena(0)
    param = optrs.Parameter(arena.place(np.linspace(-1, 1, int(np.prod(shape))).reshape(shape).astype(dtype)))

    def closure() -> Any:
        x = param.data
        if closure_kind == "raises":
            raise KeyError("closure failed")
        g = (2 * x).astype(x.dtype)
        param.grad = {"none_grad": None, "bad_dtype": g.astype(np.int32), "bad_shape": g.reshape(-1)[:1]}.get(
            closure_kind, g)
        loss = float(np.sum(x.astype(np.float64) ** 2))
        return {"nan": float("nan"), "inf": float("inf")}.get(closure_kind, loss)

    try:
        opt = optrs.optim.LBFGS([param], **opts)
        for _ in range(steps):
            opt.step(closure)
    except BaseException as exc:  # noqa: B036 - every exception is judged
        if not (closure_kind == "raises" and isinstance(exc, KeyError)):
            check_exception(exc, f"LBFGS({opts}) with a {closure_kind} closure")
    arena.check("LBFGS")


def test_violations_are_reported() -> None:
    """The harness itself: a write outside an array and a crash in the worker are both caught."""
    from _fuzz_arrays import Arena

    arena = Arena(0)
    arena.place(np.zeros(4, np.float32))
    arena.guarded[0].buffer[-1] ^= 1
    with pytest.raises(Violation, match="outside"):
        arena.check("a deliberate write")
    with pytest.raises(Violation, match="crashed"):
        WORKER.call("os:abort")
