"""Calls of every ``_core`` kernel, ``optrs.functional`` rule and ``optrs.utils`` clip function,
given as plain data (a *case*) so that they run in the worker process, where a crash or an
abort on a failed allocation fails the case instead of pytest.

A case is ``{"call": name, "args": [spec, ...], "writes": bool}``; an argument spec is
``("arr", shape, dtype, layout, seed, special, broadcast_to, int_range)`` (an array in a guarded
buffer), ``("val", value)``, ``("seq", [spec, ...])`` (a list) or ``("pgrad", spec)`` (an
``optrs.Parameter`` whose ``.grad`` is the array). ``run_case`` builds the arguments in two
worlds (different guard bytes), calls, and checks: only optrs's errors come out; guards intact;
inputs that the call does not write are unchanged, and on an error none is; results and written
arrays bit-identical in both worlds.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
from _fuzz_arrays import Arena, Violation, check_exception, iter_arrays, same_bits, snapshot
from _fuzz_optim import values_for

import optrs
from optrs import _core


def _build(spec: Any, arena: Arena) -> Any:
    kind = spec[0]
    if kind == "val":
        return spec[1]
    if kind == "seq":
        return [_build(s, arena) for s in spec[1]]
    if kind == "pgrad":
        param = optrs.Parameter(np.zeros(1, np.float32))
        param.grad = _build(spec[1], arena)
        return param
    _, shape, dtype, layout, seed, special, broadcast, int_range = spec
    dtype = np.dtype(dtype)
    if int_range is not None and dtype.kind in "iu":
        low, high = int_range
        values = np.random.default_rng(seed).integers(low, max(high, low + 1), size=shape, dtype=np.int64,
                                                      endpoint=False).astype(dtype)
    else:
        values = values_for(tuple(shape), dtype, seed, special)
    return arena.place(values, layout, f"argument {shape}:{dtype}", tuple(broadcast) if broadcast else None)


def _target(name: str) -> Any:
    module, _, attr = name.rpartition(".")
    obj: Any = {"": _core, "functional": optrs.functional, "utils": optrs.utils}.get(module)
    if obj is None:  # an engine's static method: "AdamEngine.apply"
        return getattr(getattr(_core, module), attr)
    return getattr(obj, attr)


def _arrays_in(args: Any) -> list[np.ndarray[Any, Any]]:
    found = []
    for a in args if isinstance(args, list) else [args]:
        if isinstance(a, optrs.Parameter):
            found.extend(iter_arrays([a.data, a.grad]))
        elif isinstance(a, dict):
            continue
        else:
            found.extend(iter_arrays(a))
    return found


def _once(case: dict[str, Any], world: int) -> tuple[str, Any, list[Any]]:
    arena = Arena(world)
    args = [_build(spec, arena) for spec in case["args"]]
    if case["call"].startswith("functional."):
        args, kwargs = args[:-1], args[-1]
    else:
        kwargs = {}
    inputs = _arrays_in(args) + _arrays_in(list(kwargs.values()))
    before = [snapshot(a) for a in inputs]
    try:
        result = _target(case["call"])(*args, **kwargs)
        outcome = "ok"
    except BaseException as exc:  # noqa: B036 - every exception is judged
        check_exception(exc, f"{case['call']}{describe_case(case)}")
        result, outcome = None, type(exc).__name__
    arena.check(f"{case['call']}{describe_case(case)}")
    if outcome == "ok":
        _check_output_shape(case["call"], args, result)
    after = [snapshot(a) for a in inputs]
    if (outcome != "ok" or not case["writes"]) and after != before:
        changed = [i for i, (x, y) in enumerate(zip(before, after)) if x != y]
        why = f"raised {outcome}" if outcome != "ok" else "writes none of its inputs"
        raise Violation(f"{case['call']}{describe_case(case)} {why} but changed input array(s) {changed}")
    written = [(x[0], x[1], x[-1]) for x in after] if case["writes"] else []
    return outcome, result, written


def describe_case(case: dict[str, Any]) -> str:
    def show(spec: Any) -> str:
        if spec[0] == "val":
            return repr(spec[1])[:60]
        if spec[0] == "seq":
            return "[" + ", ".join(show(s) for s in spec[1]) + "]"
        if spec[0] == "pgrad":
            return f"Parameter(grad={show(spec[1])})"
        _, shape, dtype, layout, _seed, special, broadcast, _ = spec
        extra = "".join(f" {x}" for x in (layout if layout != "C" else "", special if special != "normal" else "",
                                           f"broadcast_to{tuple(broadcast)}" if broadcast else "") if x)
        return f"array{tuple(shape)}:{dtype}{extra}"
    return "(" + ", ".join(show(s) for s in case["args"]) + ")"


def run_case(case: dict[str, Any]) -> str:
    """Runs ``case`` in both worlds and checks it; returns the outcome."""
    a = _once(case, 0)
    b = _once(case, 1)
    if a[0] != b[0]:
        raise Violation(f"{case['call']}{describe_case(case)}: outcome depends on the bytes around the arrays "
                        f"({a[0]} / {b[0]})")
    if not same_bits(_plain(a[1]), _plain(b[1])) or not same_bits(a[2], b[2]):
        raise Violation(f"{case['call']}{describe_case(case)}: the result depends on the bytes around the "
                        "arrays (an out-of-bounds read)")
    return a[0]


def _plain(result: Any) -> Any:
    if isinstance(result, (tuple, list)):
        return [_plain(r) for r in result]
    if isinstance(result, np.generic):
        return np.asarray(result)
    if isinstance(result, float):
        return np.float64(result)
    return result


def functional_signature(name: str) -> tuple[list[str], list[str]]:
    """The positional and the required keyword parameter names of ``optrs.functional.<name>``."""
    params = inspect.signature(getattr(optrs.functional, name)).parameters.values()
    positional = [p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
    required = [p.name for p in params if p.kind is p.KEYWORD_ONLY and p.default is p.empty]
    return positional, required


def _pair(value: Any) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _pooled(size: int, kernel: int, stride: int, padding: int, dilation: int, ceil: bool) -> int:
    """torch's output size of a convolution or pooling window, in Python's unbounded ints."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    out = -(-span // stride) + 1 if ceil else span // stride + 1
    if ceil and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def _check_output_shape(call: str, args: list[Any], result: Any) -> None:
    """A successful conv2d or pooling call has torch's output shape (computed here with unbounded
    ints): sizes that overflow must raise, not wrap around."""
    if call == "conv2d":
        x, weight, _, stride, padding, dilation, _ = args
        kernel, lead = weight.shape[2:], (x.shape[0], weight.shape[0])
        ceil = False
    elif call in ("max_pool2d", "avg_pool2d"):
        x, kernel, stride, padding = args[:4]
        dilation = args[4] if call == "max_pool2d" else 1
        ceil = bool(args[5] if call == "max_pool2d" else args[4])
        kernel, lead = _pair(kernel), x.shape[:-2]
        stride = kernel if stride is None else stride
    else:
        return
    expected = (*lead, *(_pooled(x.shape[-2 + i], kernel[i], _pair(stride)[i], _pair(padding)[i],
                                 _pair(dilation)[i], ceil) for i in range(2)))
    got = (result[0] if isinstance(result, tuple) else result).shape
    if tuple(got) != expected:
        raise Violation(f"{call} returned shape {tuple(got)}, where torch's formula gives {expected}")
