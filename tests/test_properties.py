"""Property tests: every optimizer against a plain NumPy (float64) transcription of torch 2.13's
single-tensor update rule (``torch.optim.*._single_tensor_*``), over random hyperparameters in
their valid domains, random shapes (0-d, empty, one element, and tensors big enough for the
multi-threaded chunked path), several steps and skipped params; and bit-identical results across
thread counts and SIMD levels.

Each step of the reference starts from the values the optimizer holds before it (its param and
state, upcast exactly). float64 must agree to rtol 1e-12 of the operands' magnitude (the reference
does the same operations in the same order, so only libm's pow/sqrt of scalars may differ in the
last bit). float32 is compared with the float64 reference to rtol 1e-5 / atol 1e-6 (restarting
each step keeps float32 rounding from compounding over the trajectory); ``assert_close`` says
where float32 arithmetic itself cannot meet that and what is allowed there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import optrs
from optrs.optim import SGD, Adadelta, Adagrad, Adam, AdamW, Optimizer, RMSprop
from simd_levels import SIMD_LEVELS

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

State = dict[str, Any]

# -- torch 2.13's rules in NumPy ----------------------------------------------------------------
# Each takes the param, the grad, the param's state before the step and the step number (1 on
# the param's first step) and returns the new param and state. Operations are written in the
# order torch's CPU kernels evaluate them on FMA hardware (AVX2/AVX-512, measured): add(x,
# alpha=a) is fma(a, x, self), addcmul(t1, t2, value=v) is fma(v * t1, t2, self), lerp is fused
# (below), addcdiv(t1, t2, value=v) is self + v * t1 / t2 (no fusion). Scalars are Python floats
# (computed in double, as torch's Python code does), which NumPy rounds to the arrays' dtype, so
# the same code computes in float64 (the reference) or float32 (an emulation of float32
# arithmetic that shows how far float32 can be from the reference).


def fma(a: Any, b: Any, c: Any) -> Any:
    """``a * b + c`` rounded once. float32: the float64 product is exact, and rounding the float64
    sum to float32 is exact but for double rounding (about 2**-29 of cases, far inside the
    tolerances). float64: Dekker's exact product and Knuth's exact sum, then one rounding of their
    three terms, exact where they cancel (where one rounding and two differ most)."""
    dtype = np.result_type(a, b, c)
    a, b, c = (np.asarray(x, dtype) for x in (a, b, c))
    if dtype == np.float32:
        return (a.astype(np.float64) * b.astype(np.float64) + c.astype(np.float64)).astype(np.float32)
    product = a * b
    a_hi, a_lo = split(a)
    b_hi, b_lo = split(b)
    product_error = ((a_hi * b_hi - product) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo
    total = product + c
    c_part = total - product
    sum_error = (product - (total - c_part)) + (c - c_part)
    fused = total + (sum_error + product_error)
    return np.where(np.isfinite(fused), fused, product + c)  # overflow in the split: unfused


def split(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Veltkamp's split of float64 ``x`` into a high and a low half of 26 bits each."""
    t = 134217729.0 * x
    high = t - (t - x)
    return high, x - high


def lerp(start: Any, end: Any, weight: float) -> Any:
    """torch.lerp with a scalar weight: its two-sided formula, exact at both ends. The weight is
    rounded to the tensors' dtype first, and 1 - weight computed in it, as torch's kernel does."""
    w = np.result_type(start, end).type(weight)
    if abs(w) < 0.5:
        return fma(w, end - start, start)
    return fma(start - end, 1 - w, end)


def sgd_step(p: Any, g: Any, state: State, step: int, *, lr: float, momentum: float, dampening: float,
             weight_decay: float, nesterov: bool, maximize: bool) -> tuple[Any, State]:
    g = -g if maximize else g
    if weight_decay != 0:
        g = fma(weight_decay, p, g)
    new: State = {}
    if momentum != 0:
        if step == 1:
            buf = np.array(g, copy=True)  # torch.clone(grad): the first buffer is the gradient
        else:
            buf = fma(1 - dampening, g, state["momentum_buffer"] * momentum)
        new["momentum_buffer"] = buf
        g = fma(momentum, buf, g) if nesterov else buf
    return fma(-lr, g, p), new


def adam_step(p: Any, g: Any, state: State, step: int, *, lr: float, betas: tuple[float, float], eps: float,
              weight_decay: float, amsgrad: bool, maximize: bool,
              decoupled_weight_decay: bool = False) -> tuple[Any, State]:
    beta1, beta2 = betas
    g = -g if maximize else g
    if weight_decay != 0:
        if decoupled_weight_decay:
            p = p * (1 - lr * weight_decay)
        else:
            g = fma(weight_decay, p, g)
    exp_avg = lerp(state["exp_avg"], g, 1 - beta1)
    exp_avg_sq = fma((1 - beta2) * g, g, state["exp_avg_sq"] * beta2)
    new: State = {"exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}
    bias_correction1 = 1 - beta1 ** float(step)
    bias_correction2 = 1 - beta2 ** float(step)
    step_size = lr / bias_correction1
    bias_correction2_sqrt = bias_correction2 ** 0.5
    if amsgrad:
        new["max_exp_avg_sq"] = np.maximum(state["max_exp_avg_sq"], exp_avg_sq)
        denom = np.sqrt(new["max_exp_avg_sq"]) / bias_correction2_sqrt + eps
    else:
        denom = np.sqrt(exp_avg_sq) / bias_correction2_sqrt + eps
    return p + (-step_size) * exp_avg / denom, new


def adamw_step(p: Any, g: Any, state: State, step: int, **options: Any) -> tuple[Any, State]:
    return adam_step(p, g, state, step, **options, decoupled_weight_decay=True)


def adagrad_step(p: Any, g: Any, state: State, step: int, *, lr: float, lr_decay: float, weight_decay: float,
                 initial_accumulator_value: float, eps: float, maximize: bool) -> tuple[Any, State]:
    g = -g if maximize else g
    if weight_decay != 0:
        g = fma(weight_decay, p, g)
    clr = lr / (1 + (step - 1) * lr_decay)
    state_sum = fma(g, g, state["sum"])
    std = np.sqrt(state_sum) + eps
    return p + (-clr) * g / std, {"sum": state_sum}


def adadelta_step(p: Any, g: Any, state: State, step: int, *, lr: float, rho: float, eps: float,
                  weight_decay: float, maximize: bool) -> tuple[Any, State]:
    g = -g if maximize else g
    if weight_decay != 0:
        g = fma(weight_decay, p, g)
    square_avg = fma((1 - rho) * g, g, state["square_avg"] * rho)
    std = np.sqrt(square_avg + eps)
    delta = np.sqrt(state["acc_delta"] + eps) / std * g
    acc_delta = fma((1 - rho) * delta, delta, state["acc_delta"] * rho)
    return fma(-lr, delta, p), {"square_avg": square_avg, "acc_delta": acc_delta}


def rmsprop_step(p: Any, g: Any, state: State, step: int, *, lr: float, alpha: float, eps: float,
                 weight_decay: float, momentum: float, centered: bool, maximize: bool) -> tuple[Any, State]:
    g = -g if maximize else g
    if weight_decay != 0:
        g = fma(weight_decay, p, g)
    square_avg = fma((1 - alpha) * g, g, state["square_avg"] * alpha)
    new: State = {"square_avg": square_avg}
    if centered:
        grad_avg = lerp(state["grad_avg"], g, 1 - alpha)
        new["grad_avg"] = grad_avg
        avg = np.sqrt(fma(-grad_avg, grad_avg, square_avg))
    else:
        avg = np.sqrt(square_avg)
    avg = avg + eps
    if momentum > 0:
        buf = state["momentum_buffer"] * momentum + g / avg
        new["momentum_buffer"] = buf
        return fma(-lr, buf, p), new
    return p + (-lr) * g / avg, new


# -- hyperparameters, in their valid domains ----------------------------------------------------
# Each is 0 or at least 1e-6 (1e-10 for eps): a positive value below float32's range would be
# rounded to 0 by a float32 step (as torch does), turning x/eps or x*rho into 0/0 or 0 where the
# float64 reference keeps a tiny nonzero value, which tests float32's range, not optrs.


def zero_or(high: float, low: float = 1e-6, exclude_max: bool = False) -> st.SearchStrategy[float]:
    return st.one_of(st.just(0.0), st.floats(low, high, exclude_max=exclude_max))


unit = zero_or(1.0)
lrs = zero_or(1.0)
epsilons = zero_or(1e-1, low=1e-10)
weight_decays = zero_or(1.0)
momenta = zero_or(0.99)


@st.composite
def sgd_options(draw: st.DrawFn) -> dict[str, Any]:
    nesterov = draw(st.booleans())
    momentum = draw(st.floats(0.01, 0.99) if nesterov else momenta)
    dampening = 0.0 if nesterov else draw(unit)
    return dict(lr=draw(lrs), momentum=momentum, dampening=dampening, weight_decay=draw(weight_decays),
                nesterov=nesterov, maximize=draw(st.booleans()))


betas = zero_or(1.0, exclude_max=True)
adamw_options = st.fixed_dictionaries(dict(lr=lrs, betas=st.tuples(betas, betas), eps=epsilons,
                                           weight_decay=weight_decays, amsgrad=st.booleans(),
                                           maximize=st.booleans()))
# Adam(decoupled_weight_decay=True) is AdamW.
adam_options = st.builds(lambda options, decoupled: {**options, "decoupled_weight_decay": decoupled},
                         adamw_options, st.booleans())
adagrad_options = st.fixed_dictionaries(dict(lr=lrs, lr_decay=unit,
                                             weight_decay=weight_decays,
                                             initial_accumulator_value=unit,
                                             eps=epsilons, maximize=st.booleans()))
adadelta_options = st.fixed_dictionaries(dict(lr=zero_or(2.0), rho=unit, eps=epsilons,
                                              weight_decay=weight_decays, maximize=st.booleans()))
rmsprop_options = st.fixed_dictionaries(dict(lr=lrs, alpha=unit, eps=epsilons, weight_decay=weight_decays,
                                             momentum=momenta, centered=st.booleans(), maximize=st.booleans()))


@dataclass(frozen=True)
class Rule:
    cls: type[Optimizer]
    step: Callable[..., tuple[Any, State]]
    options: st.SearchStrategy[dict[str, Any]]

    def initial_state(self, options: dict[str, Any]) -> dict[str, float]:
        """The reference's state before the first step: names and starting values."""
        if self.step is sgd_step:
            return {"momentum_buffer": 0.0} if options["momentum"] != 0 else {}
        if self.step in (adam_step, adamw_step):
            return {"exp_avg": 0.0, "exp_avg_sq": 0.0, **({"max_exp_avg_sq": 0.0} if options["amsgrad"] else {})}
        if self.step is adagrad_step:
            return {"sum": options["initial_accumulator_value"]}
        if self.step is adadelta_step:
            return {"square_avg": 0.0, "acc_delta": 0.0}
        state = {"square_avg": 0.0}
        if options["momentum"] > 0:
            state["momentum_buffer"] = 0.0
        if options["centered"]:
            state["grad_avg"] = 0.0
        return state


RULES = {
    "SGD": Rule(SGD, sgd_step, sgd_options()),
    "Adam": Rule(Adam, adam_step, adam_options),
    "AdamW": Rule(AdamW, adamw_step, adamw_options),
    "Adagrad": Rule(Adagrad, adagrad_step, adagrad_options),
    "Adadelta": Rule(Adadelta, adadelta_step, adadelta_options),
    "RMSprop": Rule(RMSprop, rmsprop_step, rmsprop_options),
}

# -- problems: shapes, initial params, grads ----------------------------------------------------

small_shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6)
# Bigger than the driver's chunk (2**15 elements), or several that add up to more than its
# parallel threshold, so that steps run chunked on the thread pool.
large_shapes = st.sampled_from([(40_961,), (3 * 2**15 + 7,), (205, 201), (2**15,), (2**15 + 1,), (20_000,),
                                (12_345,)])
shapes = st.lists(st.integers(0, 4).flatmap(lambda i: large_shapes if i == 0 else small_shapes),
                  min_size=1, max_size=3)


@dataclass
class Problem:
    shapes: list[tuple[int, ...]]
    groups: list[dict[str, Any]]  # options of each param group; consecutive params share one
    steps: int
    seed: int
    grad_scale: float
    zero_grads: bool  # some grad elements exactly 0
    skips: bool  # some params get no grad (None) on some steps

    def group_of(self, i: int) -> int:
        """The group of param i: the params are split into consecutive runs, one per group, so
        that param order (the order of grads) is group order."""
        return i * len(self.groups) // len(self.shapes)


@st.composite
def problems(draw: st.DrawFn, rule: Rule, shape_strategy: st.SearchStrategy[list[tuple[int, ...]]] = shapes,
             max_steps: int = 4) -> Problem:
    return Problem(shapes=draw(shape_strategy), groups=draw(st.lists(rule.options, min_size=1, max_size=2)),
                   steps=draw(st.integers(1, max_steps)), seed=draw(st.integers(0, 2**32 - 1)),
                   grad_scale=draw(st.sampled_from([1e-3, 1.0, 1e2])), zero_grads=draw(st.booleans()),
                   skips=draw(st.booleans()))


class Run:
    """An optimizer over the problem's params, and the grads it is fed (the same for a given
    problem and dtypes, whatever else differs between runs)."""

    def __init__(self, rule: Rule, problem: Problem, dtypes: list[Any]) -> None:
        self.problem = problem
        self.rng = np.random.default_rng(problem.seed)
        self.params = [np.array(self.rng.standard_normal(s), dtype=d) for s, d in zip(problem.shapes, dtypes)]
        groups: list[dict[str, Any]] = [{"params": [], **options} for options in problem.groups]
        for i, p in enumerate(self.params):
            groups[problem.group_of(i)]["params"].append(p)
        self.opt = rule.cls([g for g in groups if g["params"]])

    def grads(self) -> list[np.ndarray | None]:
        grads: list[np.ndarray | None] = []
        for p in self.params:
            g = np.array(self.rng.standard_normal(p.shape) * self.problem.grad_scale, dtype=p.dtype)
            if self.problem.zero_grads:
                g[self.rng.random(p.shape) < 0.2] = 0
            skip = self.problem.skips and self.rng.random() < 0.3
            grads.append(None if skip else g)
        return grads

    def outcome(self) -> list[np.ndarray]:
        """Every param and state array, in a fixed order."""
        arrays = [p.copy() for p in self.params]
        for _, entry in sorted(self.opt.state_dict()["state"].items()):
            arrays.extend(np.asarray(entry[name]) for name in sorted(entry))
        return arrays


def reference_step(rule: Rule, options: dict[str, Any], p: np.ndarray, g: np.ndarray, state: State, step: int,
                   dtype: Any) -> tuple[np.ndarray, State]:
    """One step of the reference rule, in ``dtype`` arithmetic, from the given values."""
    with np.errstate(all="ignore"):
        new_p, new_state = rule.step(np.asarray(p, dtype), np.asarray(g, dtype),
                                     {k: np.asarray(v, dtype) for k, v in state.items()}, step, **options)
    return (np.asarray(new_p, dtype).reshape(p.shape),
            {k: np.asarray(v, dtype).reshape(p.shape) for k, v in new_state.items()})


def assert_close(got: np.ndarray, want: np.ndarray, before: Any, emulated: np.ndarray | None, what: str) -> None:
    """float64: ``got`` is the reference ``want`` to rtol 1e-12 of the operands' magnitude (below).

    float32: ``got`` is the float64 reference ``want`` to rtol 1e-5 / atol 1e-6, with two
    allowances for what float32 arithmetic cannot do. The rtol is of the operands' magnitude,
    ``|before| + |want|`` (the value before the step and after it), not of the result's, since
    where a step's terms cancel float32 leaves an error of a rounding of the terms, however small
    the result. And ``emulated``, the same rule run in float32 arithmetic (torch's, and optrs's,
    order of operations), shows where intermediate cancellation amplifies float32's rounding
    (weight decay cancelling the grad, centered RMSprop's square_avg - grad_avg**2): twice its
    distance from the float64 result is allowed on top, NaN where it is NaN, and its exact value
    where the float64 result is NaN.
    """
    want = np.asarray(want, dtype=np.float64)
    got64 = np.asarray(got, dtype=np.float64)
    scale = np.abs(np.asarray(before, dtype=np.float64)) + np.abs(want)
    if got.dtype == np.float64:
        # Of the operands' magnitude too: with lr=1, beta1=0, eps=0 an Adam step is +-1 and can
        # cancel the param to ~1e-4, where one last-bit difference of a scalar pow is 1e-12.
        with np.errstate(invalid="ignore"):
            ok = (np.abs(got64 - want) <= 1e-12 * scale) | (got64 == want) | (np.isnan(got64) & np.isnan(want))
        if not ok.all():
            np.testing.assert_allclose(got64, want, rtol=1e-12, atol=0.0, err_msg=what)
        return
    with np.errstate(all="ignore"):
        tolerance = 1e-6 + 1e-5 * scale
        ok = (np.abs(got64 - want) <= tolerance) | (got64 == want) | (np.isnan(got64) & np.isnan(want))
        if emulated is not None:
            emulated = np.asarray(emulated, dtype=np.float64)
            slack = np.where(np.isnan(emulated), 0.0, 2 * np.abs(emulated - want))
            ok |= (np.abs(got64 - want) <= tolerance + slack) | (np.isnan(got64) & np.isnan(emulated))
            # Where float64 gives NaN and float32's own rounding does not (centered RMSprop with
            # alpha=0: fma(-g, g, RN(g*g)) is RN(g*g)'s rounding error, 0 in float64), the float32
            # emulation decides, bit for bit.
            ok |= np.isnan(want) & (got64 == emulated)
    if not ok.all():
        bad = np.flatnonzero(~ok.reshape(-1))
        flat = [np.broadcast_to(np.asarray(a, dtype=np.float64), got.shape).reshape(-1)
                for a in (got64, want, before, want if emulated is None else emulated)]
        rows = "\n".join(f"  [{k}] got {flat[0][k]!r}, want {flat[1][k]!r}, before {flat[2][k]!r}, "
                         f"float32 emulation {flat[3][k]!r}" for k in bad[:5])
        raise AssertionError(f"{what}: {bad.size} of {ok.size} elements differ\n{rows}")


# -- optrs == the reference ---------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", list(RULES))
@SETTINGS
@given(data=st.data())
def test_matches_the_numpy_reference(name: str, dtype: Any, data: st.DataObject) -> None:
    rule = RULES[name]
    problem = data.draw(problems(rule))
    run = Run(rule, problem, [dtype] * len(problem.shapes))
    options = [problem.groups[problem.group_of(i)] for i in range(len(run.params))]
    # The reference keeps float64 params and state; they start at the optimizer's values.
    ref_params = [p.astype(np.float64) for p in run.params]
    ref_states: list[State] = [
        {k: np.full(p.shape, v, dtype).astype(np.float64) for k, v in rule.initial_state(o).items()}
        for p, o in zip(run.params, options)
    ]
    counts = [0] * len(run.params)

    for t in range(problem.steps):
        grads = run.grads()
        # Each step starts from the values the optimizer holds, so that a last-bit difference of a
        # scalar pow in one step, which a later cancelling step can make relatively large, is
        # judged in the step that made it (with that step's operands) and not carried along.
        for i, p in enumerate(run.params):
            ref_params[i] = p.astype(np.float64)
            if counts[i] > 0:
                held = run.opt.state[p]
                ref_states[i] = {k: np.asarray(held[k], dtype=np.float64) for k in ref_states[i]}
        params_before, states_before = list(ref_params), list(ref_states)
        emulated: dict[int, tuple[np.ndarray, State]] = {}
        for i, g in enumerate(grads):
            if g is None:
                continue
            counts[i] += 1
            ref_params[i], ref_states[i] = reference_step(rule, options[i], ref_params[i], g, ref_states[i],
                                                          counts[i], np.float64)
            if dtype == np.float32:
                emulated[i] = reference_step(rule, options[i], params_before[i], g, states_before[i], counts[i],
                                             np.float32)
        run.opt.step(grads)

        for i, p in enumerate(run.params):
            where = f"param {i} {p.shape} {p.dtype} after step {t + 1}"
            emulated_param, emulated_state = emulated.get(i, (None, {}))
            assert_close(p, ref_params[i], params_before[i], emulated_param, where)
            if counts[i] == 0:
                continue
            held = dict(run.opt.state[p])
            if "step" in held:
                assert float(held.pop("step")) == counts[i], f"{where}: step count"
            assert held.keys() == ref_states[i].keys(), where
            for key, value in held.items():
                assert value.dtype == p.dtype and value.shape == p.shape, f"{where}: state {key!r}"
                assert_close(value, ref_states[i][key], states_before[i].get(key, 0.0), emulated_state.get(key),
                             f"{where}: state {key!r}")


# -- the same bits whatever the thread count or SIMD level --------------------------------------

big_shapes = st.lists(st.one_of(large_shapes, st.tuples(st.integers(0, 300))), min_size=1, max_size=4)
dtype_lists = st.lists(st.sampled_from([np.float32, np.float64]), min_size=4, max_size=4)


def outcomes_agree(runs: dict[Any, Run]) -> None:
    (first_key, first), *others = runs.items()
    for key, run in others:
        for i, (a, b) in enumerate(zip(first.outcome(), run.outcome(), strict=True)):
            assert a.dtype == b.dtype and a.shape == b.shape
            assert a.tobytes() == b.tobytes(), f"array {i} differs between {first_key} and {key}"


def stepped_run(rule: Rule, problem: Problem, dtypes: list[Any]) -> Run:
    run = Run(rule, problem, dtypes)
    for _ in range(problem.steps):
        run.opt.step(run.grads())
    return run


@pytest.mark.parametrize("name", list(RULES))
@SETTINGS
@given(data=st.data())
def test_thread_count_does_not_change_a_bit(name: str, data: st.DataObject) -> None:
    rule = RULES[name]
    problem = data.draw(problems(rule, big_shapes, max_steps=3))
    dtypes = data.draw(dtype_lists)
    original = optrs.get_num_threads()
    runs = {}
    try:
        for threads in (1, 2, 3):
            optrs.set_num_threads(threads)
            runs[f"{threads} threads"] = stepped_run(rule, problem, dtypes)
    finally:
        optrs.set_num_threads(original)
    assert optrs.get_num_threads() == original
    outcomes_agree(runs)


def test_forcing_the_simd_level_is_undone_by_none() -> None:
    detected = optrs.simd_level()
    try:
        optrs._core.force_simd_level("baseline")
        assert optrs.simd_level() in ("sse2", "neon", "scalar")
    finally:
        optrs._core.force_simd_level(None)
    assert optrs.simd_level() == detected
    with pytest.raises(ValueError):
        optrs._core.force_simd_level("avx9000")


@pytest.mark.parametrize("name", list(RULES))
@SETTINGS
@given(data=st.data())
def test_simd_level_does_not_change_a_bit(name: str, data: st.DataObject) -> None:
    rule = RULES[name]
    problem = data.draw(problems(rule, big_shapes, max_steps=3))
    dtypes = data.draw(dtype_lists)
    runs = {"detected level": stepped_run(rule, problem, dtypes)}
    try:
        for level in SIMD_LEVELS:
            optrs._core.force_simd_level(level)
            runs[level] = stepped_run(rule, problem, dtypes)
    finally:
        optrs._core.force_simd_level(None)
    outcomes_agree(runs)
