"""Fuzzing of every ``optrs._core`` function, the ``optrs.functional`` rules and the
``optrs.utils`` clip functions: plausible calls (shapes that fit together), each with one
argument made bad some of the time (dtypes incl. int, float16, complex, object, bool,
big-endian; 0-d, empty and huge broadcast shapes; Fortran, negative-stride, strided, unaligned
and read-only views; out-of-range indices; huge, negative, NaN and wrongly typed options). Every
case runs in the worker process (``_fuzz_kernels.run_case`` lists the checks).
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from _fuzz_arrays import Violation, budget
from _fuzz_draw import BAD_DTYPES, OPTIONS, options
from _fuzz_kernels import describe_case, functional_signature
from _fuzz_worker import WORKER
from hypothesis import given, settings
from hypothesis import strategies as st

import optrs
from optrs import _core

Spec = tuple[Any, ...]

seeds = st.integers(0, 2**32 - 1)
specials = st.sampled_from(["normal"] * 6 + ["nan", "inf", "huge", "zero", "subnormal", "max", "neg"])


@st.composite
def arr(draw: st.DrawFn, shape: tuple[int, ...], dtype: str, ints: tuple[int, int] | None = None) -> Spec:
    return ("arr", tuple(shape), dtype, "C", draw(seeds), draw(specials), None, ints)


def val(value: Any, tag: str) -> Spec:
    return ("val", value, tag)


BAD = {
    "int": [2**31, 2**40, 2**62, 2**63 - 1, 2**63, 2**64, -1, 0, -(2**63), 1.5, "3", None, True],
    "pair": [(2**40, 1), (2**62, 2**62), (2**63 - 1, 2**63 - 1), (0, 1), (-1, 1), (1,), (1, 2, 3), "ab", None,
             (1.5, 1), 2**63 - 1, 2**40],
    "float": [math.nan, math.inf, -math.inf, -1.0, 1e308, -1e308, "x", None, 0.0],
    "bool": ["yes", None, 2],
    "str": ["bogus", "", None, 3, "MEAN"],
    "shape": [(1, 1, 2**40, 2**40), (2**62, 2), (2**31, 2**31, 2**31), (-1, 1, 1, 1), (), (1,), ("a",), None],
}


@st.composite
def perturbed(draw: st.DrawFn, call: str, args: list[Spec], writes: bool = False) -> dict[str, Any]:
    """The case, with one argument (maybe inside a list) made bad a third of the time."""
    args = list(args)
    if args and draw(st.integers(0, 2)) == 0:
        i = draw(st.integers(0, len(args) - 1))
        args[i] = draw(_worse(args[i]))
    return {"call": call, "args": [s[:2] if s[0] == "val" else s for s in args], "writes": writes}


@st.composite
def _worse(draw: st.DrawFn, spec: Spec) -> Spec:
    kind = spec[0]
    if kind == "val":
        tag = spec[2] if len(spec) > 2 else "fixed"
        if tag in BAD:
            return ("val", draw(st.sampled_from(BAD[tag])), tag)
        if tag == "optarr":
            return ("val", draw(st.sampled_from([None, 1.0, "w"])), tag)
        return spec
    if kind == "seq":
        items = list(spec[1])
        if items and draw(st.booleans()):
            j = draw(st.integers(0, len(items) - 1))
            items[j] = draw(_worse(items[j]))
        else:
            items = draw(st.sampled_from([items[:-1], items + items[:1], []]))
        return ("seq", items)
    if kind == "pgrad":
        return ("pgrad", draw(_worse(spec[1])))
    _, shape, dtype, layout, seed, special, broadcast, ints = spec
    how = draw(st.sampled_from(["dtype", "layout", "shape", "broadcast", "values", "object"]))
    if how == "dtype":
        dtype = draw(st.sampled_from(BAD_DTYPES + ["float32", "float64", "int64"]))
    elif how == "layout":
        layout = draw(st.sampled_from(["F", "neg", "strided", "unaligned", "readonly"]))
    elif how == "shape":
        shape = draw(st.sampled_from([(), (0,), shape[:-1], (*shape, 1), (*shape[:-1], 0) if shape else (2,),
                                      tuple(2 * s + 1 for s in shape)]))
    elif how == "broadcast":
        broadcast = draw(st.sampled_from([(2**40,), (2**20, 2**20), (1, 1, 2**28, 2**28), (2**59, 1)]))
        shape = (1,) * len(broadcast)
    elif how == "values" and ints is not None:
        ints = draw(st.sampled_from([(-(2**40), -1), (2**40, 2**41), (-1, 2), (2**62, 2**63 - 1)]))
    elif how == "object":
        return ("val", draw(st.sampled_from([None, 1.0, [1.0, 2.0], "x", ((1.0,),)])), "optarr")
    return ("arr", shape, dtype, layout, seed, special, broadcast, ints)


dtypes = st.sampled_from(["float32", "float64"])
small = st.integers(0, 5)


def pair_of(low: int, high: int) -> st.SearchStrategy[Any]:
    return st.one_of(st.integers(low, high), st.tuples(st.integers(low, high), st.integers(low, high)))


def _h(v: Any) -> int:
    return v if isinstance(v, int) else v[0]


def _w(v: Any) -> int:
    return v if isinstance(v, int) else v[1]


def _out(size: int, k: int, s: int, p: int, d: int) -> int:
    return max((size + 2 * p - d * (k - 1) - 1) // s + 1, 0)


@st.composite
def conv_cases(draw: st.DrawFn) -> dict[str, Any]:
    f = draw(dtypes)
    n, groups = draw(st.integers(0, 2)), draw(st.integers(1, 2))
    cin, cout = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    h, w = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    k, s, p, d = draw(pair_of(1, 3)), draw(pair_of(1, 3)), draw(pair_of(0, 1)), draw(pair_of(1, 2))
    ho, wo = _out(h, _h(k), _h(s), _h(p), _h(d)), _out(w, _w(k), _w(s), _w(p), _w(d))
    x = draw(arr((n, cin, h, w), f))
    weight = draw(arr((cout, cin // groups, _h(k), _w(k)), f))
    opts = [val(s, "pair"), val(p, "pair"), val(d, "pair"), val(groups, "int")]
    if draw(st.booleans()):
        bias = draw(arr((cout,), f)) if draw(st.booleans()) else val(None, "optarr")
        return draw(perturbed("conv2d", [x, weight, bias, *opts]))
    grad_y = draw(arr((n, cout, ho, wo), f))
    needs = [val(draw(st.booleans()), "bool") for _ in range(3)]
    return draw(perturbed("conv2d_backward", [x, weight, grad_y, *opts, *needs]))


@st.composite
def pool_cases(draw: st.DrawFn) -> dict[str, Any]:
    f = draw(dtypes)
    lead = draw(st.sampled_from([(1, 2), (2,), (0, 1)]))
    h, w = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    k = draw(pair_of(1, 3))
    s = draw(st.one_of(st.none(), pair_of(1, 3))) if draw(st.booleans()) else draw(pair_of(1, 3))
    p = draw(st.integers(0, min(_h(k), _w(k)) // 2))
    d, ceil = draw(pair_of(1, 2)), draw(st.booleans())
    stride = k if s is None else s
    ho, wo = _out(h, _h(k), _h(stride), p, _h(d)), _out(w, _w(k), _w(stride), p, _w(d))
    x = draw(arr((*lead, h, w), f))
    grad_y = draw(arr((*lead, ho, wo), f))
    kind = draw(st.sampled_from(["max", "max_backward", "avg", "avg_backward"]))
    if kind == "max":
        return draw(perturbed("max_pool2d", [x, val(k, "pair"), val(stride, "pair"), val(p, "pair"),
                                             val(d, "pair"), val(ceil, "bool")]))
    if kind == "max_backward":
        indices = draw(arr((*lead, ho, wo), "int64", ints=(0, h * w)))
        return draw(perturbed("max_pool2d_backward", [grad_y, indices, val((*lead, h, w), "shape")]))
    avg_opts = [val(k, "pair"), val(stride, "pair"), val(p, "pair"), val(ceil, "bool"),
                val(draw(st.booleans()), "bool"), val(draw(st.sampled_from([None, 1, 3, 0, -1])), "int")]
    if kind == "avg":
        return draw(perturbed("avg_pool2d", [x, *avg_opts]))
    return draw(perturbed("avg_pool2d_backward", [grad_y, val((*lead, h, w), "shape"), *avg_opts]))


@st.composite
def activation_cases(draw: st.DrawFn) -> dict[str, Any]:
    f = draw(dtypes)
    shape = draw(st.sampled_from([(3, 4), (1, 5), (0, 3), (4,), (2, 3, 2), (), (3, 0)]))
    name = draw(st.sampled_from(["relu", "softmax", "log_softmax", "relu_backward", "softmax_backward",
                                 "log_softmax_backward"]))
    if name.endswith("_backward"):
        return draw(perturbed(name, [draw(arr(shape, f)), draw(arr(shape, f))]))
    return draw(perturbed(name, [draw(arr(shape, f))]))


@st.composite
def loss_cases(draw: st.DrawFn) -> dict[str, Any]:
    f = draw(dtypes)
    n, c = draw(st.integers(0, 4)), draw(st.integers(1, 5))
    target = draw(arr((n,), "int64", ints=draw(st.sampled_from([(0, c), (0, c), (-100, c), (0, c + 3)]))))
    weight = draw(arr((c,), f)) if draw(st.booleans()) else val(None, "optarr")
    ignore = val(draw(st.sampled_from([-100, 0, 1, 2**63 - 1])), "int")
    reduction = val(draw(st.sampled_from(["mean", "sum", "none"])), "str")
    grad_loss = draw(arr((n,) if reduction[1] == "none" else (), f))
    name = draw(st.sampled_from(["nll_loss", "nll_loss_backward", "cross_entropy", "cross_entropy_backward"]))
    smoothing = val(draw(st.sampled_from([0.0, 0.1, 1.0])), "float")
    x = draw(arr((n, c), f))
    if name == "nll_loss":
        args = [x, target, weight, ignore, reduction]
    elif name == "nll_loss_backward":
        args = [grad_loss, target, weight, ignore, reduction, val(draw(st.sampled_from([1.0, float(max(n, 1)), 0.0])),
                                                                  "float"), val(c, "int")]
    elif name == "cross_entropy":
        args = [x, target, weight, ignore, reduction, smoothing]
    else:
        args = [grad_loss, x, target, weight, ignore, reduction, smoothing]
    return draw(perturbed(name, args))


@st.composite
def linear_cases(draw: st.DrawFn) -> dict[str, Any]:
    f = draw(dtypes)
    m, k, n = draw(small), draw(small), draw(small)
    name = draw(st.sampled_from(["matmul", "dot", "axpy"]))
    if name == "matmul":
        ta, tb = draw(st.booleans()), draw(st.booleans())
        a = draw(arr((k, m) if ta else (m, k), f))
        b = draw(arr((n, k) if tb else (k, n), f))
        return draw(perturbed("matmul", [a, b, val(ta, "bool"), val(tb, "bool")]))
    if name == "dot":
        return draw(perturbed("dot", [draw(arr((m,), f)), draw(arr((m,), f))]))
    return draw(perturbed("axpy", [draw(arr((m,), f)), draw(arr((m,), f)),
                                   val(draw(st.sampled_from([0.5, -2.0, 0.0])), "float")], writes=True))


@st.composite
def grad_lists(draw: st.DrawFn) -> Spec:
    items = []
    for _ in range(draw(st.integers(0, 3))):
        if draw(st.integers(0, 4)) == 0:
            items.append(val(None, "optarr"))
        else:
            items.append(draw(arr(draw(st.sampled_from([(3,), (2, 2), (), (0,), (17,)])), draw(dtypes))))
    return ("seq", items)


NORMS = [2.0, 1.0, math.inf, 0.5, 3.0, 0.0, -1.0, math.nan, -math.inf]


@st.composite
def norm_cases(draw: st.DrawFn) -> dict[str, Any]:
    grads = draw(grad_lists())
    norm = val(draw(st.sampled_from(NORMS)), "float")
    finite = val(draw(st.booleans()), "bool")
    name = draw(st.sampled_from(["total_norm", "clip_grad_norm", "clip_grads_with_norm", "utils.clip_grads_norm_",
                                 "utils.get_total_norm", "utils.clip_grad_value_", "utils.parameters_to_vector",
                                 "utils.vector_to_parameters"]))
    max_norm = val(draw(st.sampled_from([1.0, 0.0, 1e-3, 1e30])), "float")
    if name == "total_norm":
        return draw(perturbed(name, [grads, norm, finite, val("tensors", "str")]))
    if name == "clip_grad_norm":
        return draw(perturbed(name, [grads, max_norm, norm, finite, val("grads", "str")], writes=True))
    if name == "clip_grads_with_norm":
        return draw(perturbed(name, [grads, max_norm, val(draw(st.sampled_from([2.0, 0.0, math.nan])), "float"),
                                     val(draw(st.sampled_from(["float64", "float32"])), "str"), val("g", "str")],
                              writes=True))
    if name == "utils.clip_grads_norm_":
        return draw(perturbed(name, [grads, max_norm, norm, finite], writes=True))
    if name == "utils.get_total_norm":
        return draw(perturbed(name, [grads, norm, finite]))
    params = ("seq", [("pgrad", g) for g in grads[1]])
    if name == "utils.clip_grad_value_":
        return draw(perturbed(name, [params, val(draw(st.sampled_from([1.0, 0.0, math.nan, -1.0])), "float")],
                              writes=True))
    if name == "utils.parameters_to_vector":
        return draw(perturbed(name, [grads]))
    size = sum(int(math.prod(s[1])) for s in grads[1] if s[0] == "arr")
    return draw(perturbed(name, [draw(arr((size,), draw(dtypes))), grads], writes=True))


def _engine_names() -> list[str]:
    return sorted(n[:-len("Engine")] for n in dir(_core) if n.endswith("Engine"))


@st.composite
def engine_cases(draw: st.DrawFn) -> dict[str, Any]:
    """An engine's functional ``apply`` (the binding under optrs.functional)."""
    name = draw(st.sampled_from(_engine_names()))
    group = draw(options(name))
    full = {**{k: v.default for k, v in _ctor_defaults(name).items()}, **group}
    engine = getattr(_core, name + "Engine")
    try:
        spec, scalars = engine.state_spec(full)
    except Exception:
        spec, scalars = [], []
    f = draw(dtypes)
    shapes = draw(st.lists(st.sampled_from([(3,), (2, 2), (), (0,), (9,)]), min_size=1, max_size=3))
    params = ("seq", [draw(arr(s, f)) for s in shapes])
    grads = ("seq", [draw(arr(s, f)) if draw(st.integers(0, 4)) else val(None, "optarr") for s in shapes])
    states = ("seq", [("seq", [draw(arr(s, f)) for _ in spec]) for s in shapes])
    steps = ("seq", [draw(arr((1 + len(scalars),), "float64")) for _ in shapes])
    return draw(perturbed(f"{name}Engine.apply", [val(full, "group"), params, grads, states, steps], writes=True))


def _ctor_defaults(name: str) -> dict[str, Any]:
    import inspect

    params = inspect.signature(getattr(optrs.optim, name).__init__).parameters
    return {k: p for k, p in params.items() if k in OPTIONS[name]}


FUNCTIONAL_KWARGS = dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, rho=0.9, alpha=0.99,
                         lambd=1e-4, t0=1e6, momentum_decay=4e-3, step_size_min=1e-6, step_size_max=50.0,
                         etaminus=0.5, etaplus=1.2)


@st.composite
def functional_cases(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(st.sampled_from(optrs.functional.__all__))
    positional, required = functional_signature(name)
    f = draw(dtypes)
    shapes = draw(st.lists(st.sampled_from([(3,), (2, 2), (), (0,)]), min_size=1, max_size=3))
    args: list[Spec] = []
    for column in positional:
        if column == "grads":
            args.append(("seq", [draw(arr(s, f)) if draw(st.integers(0, 4)) else val(None, "optarr")
                                 for s in shapes]))
        elif column in ("state_steps", "mu_products", "etas", "mus"):
            args.append(("seq", [("arr", (1,), "float64", "C", 0, "normal", None, None) for _ in shapes]))
        elif column in ("momentum_buffer_list",):
            args.append(("seq", [val(None, "optarr") if draw(st.booleans()) else draw(arr(s, f)) for s in shapes]))
        else:
            args.append(("seq", [draw(arr(s, f)) for s in shapes]))
    kwargs = {k: FUNCTIONAL_KWARGS.get(k, 0.0) for k in required}
    if kwargs and draw(st.integers(0, 3)) == 0:
        key = draw(st.sampled_from(sorted(kwargs)))
        kwargs[key] = draw(st.sampled_from(BAD["float"] + [2**70, (0.1,)]))
    case = draw(perturbed(f"functional.{name}", args, writes=True))
    case["args"].append(("val", kwargs))
    return case


@st.composite
def whole_tensor_cases(draw: st.DrawFn) -> dict[str, Any]:
    """The engines of rules whose state has shapes of its own (Muon, Adafactor), with such state."""
    f = draw(dtypes)
    shapes = draw(st.lists(st.sampled_from([(3, 4), (4, 3), (1, 1), (0, 3), (5,), (2, 2, 3), ()]), min_size=1,
                           max_size=2))
    params = ("seq", [draw(arr(s, f)) for s in shapes])
    grads = ("seq", [draw(arr(s, f)) if draw(st.integers(0, 4)) else val(None, "optarr") for s in shapes])
    if draw(st.booleans()):
        group = {"lr": 0.01, "weight_decay": 0.1, "momentum": 0.95, "nesterov": True,
                 "ns_coefficients": (3.4445, -4.775, 2.0315), "eps": 1e-7, "ns_steps": 5, "adjust_lr_fn": None,
                 **draw(options("Muon")), "params": [None] * len(shapes)}
        buffers = ("seq", [("seq", [draw(arr(s, f))]) for s in shapes])
        counters = ("seq", [draw(arr((1,), "float64")) for _ in shapes])
        return draw(perturbed("MuonEngine.apply", [val(group, "group"), params, grads, buffers, counters],
                              writes=True))
    group = {"lr": 0.01, "beta2_decay": -0.8, "eps": (None, 1e-3), "d": 1.0, "weight_decay": 0.0, "maximize": False,
             **draw(options("Adafactor")), "params": [None] * len(shapes)}

    def state(s: tuple[int, ...]) -> Spec:
        if len(s) >= 2:
            return ("seq", [draw(arr((*s[:-1], 1), f)), draw(arr((*s[:-2], 1, s[-1]), f))])
        return ("seq", [draw(arr(s, f))])
    states = ("seq", [state(s) for s in shapes])
    steps = ("seq", [draw(arr((1,), "float64")) for _ in shapes])
    return draw(perturbed("AdafactorEngine.apply", [val(group, "group"), params, grads, states, steps], writes=True))


ALL_CASES = st.one_of(conv_cases(), pool_cases(), activation_cases(), loss_cases(), linear_cases(), norm_cases(),
                      engine_cases(), functional_cases(), whole_tensor_cases())


@settings(max_examples=budget(2.0))
@given(case=ALL_CASES)
def test_kernels(case: dict[str, Any]) -> None:
    try:
        WORKER.call("_fuzz_kernels:run_case", case)
    except Violation:
        WORKER.stop()  # a failure may have left the worker corrupted
        raise


@pytest.mark.parametrize("call,args", [
    ("conv2d", "ones(1,1,3,3) ones(1,1,1,1) None 1 2**40 1 1"),
    ("conv2d", "ones(1,1,3,3) ones(1,1,1,1) None 2**62 2**63-1 1 1"),
    ("max_pool2d", "ones(1,1,3,3) 2**63-1 1 0 2 False"),
    ("max_pool2d_backward", "ones(1,1,1,1) zeros_i64(1,1,1,1) (1,1,2**40,2**40)"),
    ("avg_pool2d_backward", "ones(1,1,1,1) (1,1,2**40,2**40) 2**40 2**40 0 False True None"),
    ("nll_loss_backward", "ones() zeros_i64(1) None -100 'mean' 1.0 2**40"),
])
def test_overflow_sized_arguments(call: str, args: str) -> None:
    """The issue's overflow-sized calls: a ValueError or MemoryError, never a panic or a crash."""
    WORKER.call("_fuzz_kernels:run_case", _literal_case(call, args))


def _literal_case(call: str, args: str) -> dict[str, Any]:
    specs: list[Spec] = []
    for token in args.split(" "):
        if token.startswith(("ones(", "zeros_i64(")):
            shape = tuple(int(x) for x in token[token.index("(") + 1:-1].split(",") if x)
            dtype = "int64" if token.startswith("zeros") else "float32"
            specs.append(("arr", shape, dtype, "C", 0, "zero" if dtype == "int64" else "normal", None,
                          (0, 1) if dtype == "int64" else None))
        else:
            specs.append(("val", eval(token)))  # noqa: S307 - literals of this file
    return {"call": call, "args": specs, "writes": False}


def test_case_descriptions_are_readable() -> None:
    case = _literal_case("conv2d", "ones(1,1,3,3) ones(1,1,1,1) None 1 2**40 1 1")
    assert describe_case(case) == "(array(1, 1, 3, 3):float32, array(1, 1, 1, 1):float32, None, 1, " \
        "1099511627776, 1, 1)"
