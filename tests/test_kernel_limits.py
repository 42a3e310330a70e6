"""No Python input makes a ``_core`` entry point panic or wrap around (issue 10, defects 5 and 6).

Every function and engine method of ``optrs._core`` is walked with overflow-sized and absurd values
(2**31, 2**40, 2**62, 2**63 - 1, 2**64, negative, zero) in each integer, shape and array-size
argument. Each call must succeed or raise ValueError, TypeError, MemoryError or OverflowError;
pyo3's ``PanicException`` (a BaseException) and ``optrs.InternalError`` (the backstop a kernel
panic becomes) fail the walk. The walk runs under an address-space limit, so the huge allocations
it asks for fail at once instead of succeeding on a large machine. The tables are checked against
``dir(_core)``: an entry point added without a row fails.
"""

from __future__ import annotations

import contextlib
import itertools
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

import optrs
from optrs import _core
from optrs.optim.optimizer import Optimizer

ABSURD = (2**31, 2**40, 2**62, 2**63 - 1, 2**64, -1, -(2**63), 0)
HUGE = (2**31, 2**40, 2**62, 2**63 - 1)
ALLOWED = (ValueError, TypeError, MemoryError, OverflowError)
F32 = np.float32


# -- the walk ------------------------------------------------------------------------------------

@dataclass
class Row:
    """One entry point's call with ordinary arguments, and which of them to make absurd."""

    args: list[Any]
    ints: tuple[int, ...] = ()  # int (or float) options: each takes every absurd value
    pairs: tuple[int, ...] = ()  # (h, w) options: also (v, 1) and (1, v)
    shapes: tuple[int, ...] = ()  # shape tuples: each element takes every absurd value
    arrays: tuple[int, ...] = ()  # arrays: each replaced by empty arrays with huge sizes
    check: Callable[[list[Any], Any], None] | None = None  # checks a successful result


def conv_size(size: int, kernel: int, stride: int, pad: int, dilation: int) -> int:
    """torch's convolution output size, in Python ints."""
    return (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1


def pool_size(size: int, kernel: int, stride: int, pad: int, dilation: int, ceil_mode: bool) -> int:
    """torch's ``pooling_output_shape``, in Python ints."""
    out = (size + 2 * pad - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + pad:
        out -= 1
    return out


def pair(value: Any) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)  # type: ignore[return-value]


def check_conv(args: list[Any], y: Any) -> None:
    x, w = args[0], args[1]
    (sh, sw), (ph, pw), (dh, dw) = pair(args[3]), pair(args[4]), pair(args[5])
    expected = (x.shape[0], w.shape[0], conv_size(x.shape[2], w.shape[2], sh, ph, dh),
                conv_size(x.shape[3], w.shape[3], sw, pw, dw))
    assert y.shape == expected


def check_pool(args: list[Any], y: Any, dilation: Any = 1, ceil_mode: bool = False) -> None:
    x, (kh, kw), (sh, sw), (ph, pw), (dh, dw) = args[0], pair(args[1]), pair(args[2]), pair(args[3]), \
        pair(dilation)
    expected = (*x.shape[:2], pool_size(x.shape[2], kh, sh, ph, dh, ceil_mode),
                pool_size(x.shape[3], kw, sw, pw, dw, ceil_mode))
    assert y.shape == expected


def ones(*shape: int, dtype: Any = F32) -> np.ndarray:
    return np.ones(shape, dtype)


def rows() -> dict[str, Row]:
    """Every module-level function of ``_core``, called with ordinary arguments."""
    x, w, g = ones(1, 1, 4, 4), ones(1, 1, 2, 2), ones(1, 1, 3, 3)
    target = np.array([0, 2], np.int64)
    vector = ones(5)
    threads = _core.get_num_threads()
    return {
        "conv2d": Row([x, w, None, 1, 0, 1, 1], ints=(6,), pairs=(3, 4, 5), arrays=(0, 1),
                      check=check_conv),
        "conv2d_backward": Row([x, w, g, 1, 0, 1, 1, True, True, True], ints=(6,), pairs=(3, 4, 5),
                               arrays=(0, 1, 2)),
        "max_pool2d": Row([x, 2, 2, 0, 1, False], pairs=(1, 2, 3, 4), arrays=(0,),
                          check=lambda a, r: check_pool(a, r[0], a[4], a[5])),
        "max_pool2d_backward": Row([ones(1, 1, 2, 2), np.zeros((1, 1, 2, 2), np.int64), (1, 1, 4, 4)],
                                   shapes=(2,), arrays=(0, 1)),
        "avg_pool2d": Row([x, 2, 2, 0, False, True, None], ints=(6,), pairs=(1, 2, 3), arrays=(0,),
                          check=lambda a, r: check_pool(a, r, 1, a[4])),
        "avg_pool2d_backward": Row([ones(1, 1, 2, 2), (1, 1, 4, 4), 2, 2, 0, False, True, None], ints=(7,),
                                   shapes=(1,), pairs=(2, 3, 4), arrays=(0,)),
        "log_softmax": Row([ones(2, 3)], arrays=(0,)),
        "log_softmax_backward": Row([ones(2, 3), ones(2, 3)], arrays=(0, 1)),
        "softmax": Row([ones(2, 3)], arrays=(0,)),
        "softmax_backward": Row([ones(2, 3), ones(2, 3)], arrays=(0, 1)),
        "relu": Row([ones(2, 3)], arrays=(0,)),
        "relu_backward": Row([ones(2, 3), ones(2, 3)], arrays=(0, 1)),
        "matmul": Row([ones(2, 3), ones(3, 4)], arrays=(0, 1)),
        "nll_loss": Row([ones(2, 3), target, None, -100, "mean"], ints=(3,), arrays=(0, 1)),
        "nll_loss_backward": Row([np.array(1.0, F32), target, None, -100, "mean", 2.0, 3], ints=(3, 5, 6),
                                 arrays=(0, 1)),
        "cross_entropy": Row([ones(2, 3), target, None, -100, "mean", 0.0], ints=(3, 5), arrays=(0, 1)),
        "cross_entropy_backward": Row([np.array(1.0, F32), ones(2, 3) / 3, target, None, -100, "mean", 0.0],
                                      ints=(4, 6), arrays=(0, 1, 2)),
        "clip_grad_norm": Row([[ones(3)], 1.0, 2.0, False, "grads"], ints=(1, 2)),
        "clip_grads_with_norm": Row([[ones(3)], 1.0, 1.0, "float64", "grads"], ints=(1, 2)),
        "total_norm": Row([[ones(3)], 2.0, False, "tensors"], ints=(1,)),
        "dot": Row([vector, ones(5)], arrays=(0, 1)),
        "axpy": Row([ones(5), vector, 0.5], ints=(2,), arrays=(0, 1)),
        # Thread counts above the CPUs are capped by defect 7's fix; zero and negatives are errors.
        "set_num_threads": Row([threads]),
        "get_num_threads": Row([]),
        "simd_level": Row([]),
        "force_simd_level": Row([None]),
        "build_info": Row([]),
        "freed_memory_policy": Row([]),
        "profiler_set_enabled": Row([False]),
        "profiler_drain": Row([]),
        "profiler_now_ns": Row([]),
        "profiler_thread_id": Row([]),
    }


def absurd_arrays(array: np.ndarray) -> Iterator[np.ndarray]:
    """Empty arrays of `array`'s dtype whose other sizes are huge, of its ndim and one more."""
    for ndim in {array.ndim, array.ndim + 1, max(array.ndim - 1, 1)}:
        for big, axis in itertools.product(HUGE, range(ndim)):
            shape = [1] * ndim
            shape[axis] = big
            shape[(axis + 1) % ndim] = 0
            with contextlib.suppress(ValueError):  # NumPy cannot hold every such shape
                yield np.empty(shape, array.dtype)


def variants(row: Row, name: str) -> Iterator[list[Any]]:
    """The row's arguments with one of them made absurd at a time, then two options (or two sizes
    of a shape) at once."""
    yield list(row.args)
    options = row.ints + row.pairs
    for i in options:
        values: list[Any] = list(ABSURD)
        if i in row.pairs:
            values += [(v, 1) for v in values] + [(1, v) for v in values]
        for value in values:
            args = list(row.args)
            args[i] = value
            yield args
    for (i, j), first, second in itertools.product(itertools.combinations(options, 2), ABSURD, ABSURD):
        args = list(row.args)
        args[i], args[j] = first, second
        yield args
    for i in row.shapes:
        sizes = range(len(row.args[i]))
        for chosen in [*itertools.combinations(sizes, 1), *itertools.combinations(sizes, 2)]:
            for value in ABSURD:
                args = list(row.args)
                args[i] = tuple(value if k in chosen else v for k, v in enumerate(row.args[i]))
                yield args
    for i in row.arrays:
        for array in absurd_arrays(row.args[i]):
            args = list(row.args)
            args[i] = array
            yield args


def call(function: Callable[..., Any], *args: Any) -> Any:
    """Calls `function`; an allowed exception is returned, anything else fails the test."""
    try:
        return function(*args)
    except ALLOWED as error:
        return error
    except BaseException as error:  # PanicException is a BaseException
        pytest.fail(f"{getattr(function, '__qualname__', function)}{shown(args)} raised "
                    f"{type(error).__module__}.{type(error).__name__}: {error}")


def shown(args: tuple[Any, ...]) -> str:
    parts = [f"array{a.shape}" if isinstance(a, np.ndarray) else repr(a)[:60] for a in args]
    return f"({', '.join(parts)})"


@contextlib.contextmanager
def address_space_limit(headroom: int = 3 << 30) -> Iterator[None]:
    """Lowers this process's address-space limit to its current size plus `headroom`, so that a
    walk asking for terabytes (or for 16 GB on a large machine) gets MemoryError at once."""
    resource = pytest.importorskip("resource")
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[0])
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = pages * resource.getpagesize() + headroom
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


needs_linux = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                 reason="the address-space limit the walk runs under is Linux's")


def public(names: list[str]) -> set[str]:
    return {n for n in names if not n.startswith("_")}


ENGINES = sorted(n for n in public(dir(_core)) if n.endswith("Engine"))
ENGINE_METHODS = {"state_spec", "state_shapes", "add_group", "refresh", "step", "apply", "set_train_mode"}


def test_every_entry_point_has_a_row() -> None:
    functions = public(dir(_core)) - set(ENGINES)
    assert functions == set(rows()), "add a row for each new _core function (and drop removed ones)"
    for engine in ENGINES:
        methods = public(dir(getattr(_core, engine)))
        assert methods <= ENGINE_METHODS, f"{engine}: add the walk of {methods - ENGINE_METHODS}"
    assert set(ENGINES) == set(optimizers()), "every engine needs an optimizer to build its groups"


@needs_linux
@pytest.mark.parametrize("name", sorted(rows()))
def test_absurd_arguments_never_panic(name: str) -> None:
    row = rows()[name]
    function = getattr(_core, name)
    threads = _core.get_num_threads()
    try:
        with address_space_limit():
            for args in variants(row, name):
                result = call(function, *args)
                if row.check is not None and not isinstance(result, BaseException):
                    row.check(args, result)
            # Too many arguments, and none.
            call(function, *row.args, 1)
            call(function)
    finally:
        _core.set_num_threads(threads)
        _core.force_simd_level(None)
        _core.profiler_set_enabled(False)
        _core.profiler_drain()


# -- the engines ---------------------------------------------------------------------------------

def optimizers() -> dict[str, type[Optimizer]]:
    """Engine class name -> the optimizer that drives it."""
    found = {}
    for name in optrs.optim.__all__:
        cls = getattr(optrs.optim, name)
        engine = getattr(cls, "_engine_class", None)
        if isinstance(cls, type) and engine is not None and getattr(_core, engine.__name__, None) is engine:
            found.setdefault(engine.__name__, cls)
    return found


def absurd_groups(group: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """`group` with one number (or one element of a pair of numbers) made absurd at a time."""
    for key, value in group.items():
        if isinstance(value, bool) or key == "params":
            continue
        if isinstance(value, (int, float)):
            for v in ABSURD:
                yield {**group, key: v}
        elif isinstance(value, (tuple, list)) and all(isinstance(v, (int, float)) for v in value):
            for i, v in itertools.product(range(len(value)), ABSURD):
                yield {**group, key: [v if j == i else e for j, e in enumerate(value)]}


@dataclass
class Registered:
    engine: Any
    group: dict[str, Any]
    params: list[np.ndarray] = field(default_factory=list)
    states: list[list[np.ndarray]] = field(default_factory=list)
    steps: list[np.ndarray] = field(default_factory=list)


def arrays_for(cls: Any, group: dict[str, Any], params: list[np.ndarray]) -> Registered:
    """Fresh state for `params`, of the shapes the optimizer gives each buffer (Adafactor's factors
    have shapes of their own)."""
    spec, scalars = cls.state_spec(group)
    states = [[np.zeros(shape, p.dtype) for shape in shapes if shape is not None]
              for p, shapes in zip(params, cls.state_shapes(group, [p.shape for p in params]))]
    return Registered(cls(), group, params, states, [np.zeros(1 + len(scalars)) for _ in params])


@needs_linux
@pytest.mark.parametrize("engine", ENGINES)
def test_engines_take_absurd_options_and_sizes(engine: str) -> None:
    cls = getattr(_core, engine)
    # A matrix, which every rule takes (Muon takes nothing else).
    PARAM = lambda: ones(2, 3)  # noqa: E731, N806
    group = {**optimizers()[engine]([PARAM()]).param_groups[0], "params": [None]}
    with address_space_limit():
        for bad in [group, *absurd_groups(group)]:
            call(cls.state_spec, bad)
            call(cls.state_spec, bad, "label")
            call(cls.state_shapes, bad, [(2, 3), (4,)])
            base = arrays_for(cls, group, [PARAM()])
            call(base.engine.add_group, bad, base.params, base.states, base.steps, "p")
            call(cls.apply, bad, base.params, [PARAM()], base.states, base.steps)
            registered = arrays_for(cls, group, [PARAM()])
            registered.engine.add_group(group, registered.params, registered.states, registered.steps, "p")
            call(registered.engine.step, [PARAM()], [bad])
            if hasattr(cls, "set_train_mode"):
                call(registered.engine.set_train_mode, [bad], False)
                call(registered.engine.set_train_mode, [group], True)
        for array in [*absurd_arrays(PARAM()), *absurd_arrays(ones(2, 3))]:
            params = [np.zeros(array.shape, F32)]
            # An empty param's factors (Adafactor's) can be huge: the walk skips what NumPy cannot hold.
            with contextlib.suppress(MemoryError):
                empty = arrays_for(cls, group, params)
                call(empty.engine.add_group, group, empty.params, empty.states, empty.steps, "p")
                call(empty.engine.step, [array], [group])
                call(empty.engine.refresh, [array])
                call(cls.apply, group, params, [array], empty.states, empty.steps)
            registered = arrays_for(cls, group, [PARAM()])
            registered.engine.add_group(group, registered.params, registered.states, registered.steps, "p")
            call(registered.engine.step, [array], [group])
            call(registered.engine.refresh, [array])
        for value in ABSURD:
            call(cls.state_shapes, group, [(value, 3), (2, value, 1), (value,)])
        for count in ABSURD:
            call(arrays_for(cls, group, [PARAM()]).engine.step, [PARAM()] * (count % 7), [group])


# -- the reproducers of issue 10 -----------------------------------------------------------------

def test_conv2d_huge_padding_is_a_memory_error_naming_the_bytes() -> None:
    with pytest.raises(MemoryError, match=r"conv2d's output would have shape \(1, 1, 2199023255555, "
                                          r"2199023255555\).* bytes"):
        _core.conv2d(ones(1, 1, 3, 3), ones(1, 1, 1, 1), None, 1, 2**40, 1, 1)


def test_conv2d_padding_past_int64_is_refused_not_wrapped() -> None:
    # torch's formula gives (1, 1, 5, 5) in Python ints, but the padded size 3 + 2 * (2**63 - 1)
    # overflows torch's int64 (torch refuses padding above 2**62 - 1); the kernels refused to
    # wrap it into (1, 1, 1, 1).
    for stride in (2**62, 1):
        with pytest.raises(optrs.InvalidHyperparameterError, match=r"padding .* too large"):
            _core.conv2d(ones(1, 1, 3, 3), ones(1, 1, 1, 1), None, stride, 2**63 - 1, 1, 1)


def test_conv2d_huge_stride_is_exact() -> None:
    y = _core.conv2d(ones(1, 1, 3, 3), ones(1, 1, 1, 1), None, 2**62, 2**61, 1, 1)
    assert y.shape == (1, 1, 2, 2)  # (3 + 2**62 - 1) // 2**62 + 1
    np.testing.assert_array_equal(y, 0.0)  # both windows lie in the padding


def test_max_pool2d_huge_kernel_and_dilation_is_refused() -> None:
    with pytest.raises(optrs.InvalidHyperparameterError, match="kernel_size"):
        _core.max_pool2d(ones(1, 1, 3, 3), 2**63 - 1, 1, 0, 2, False)


def test_pools_with_a_huge_kernel_visit_only_the_input() -> None:
    # A window of 2**62 taps, padded by 2**61 on each side, over a 3 x 3 input: four outputs,
    # each the maximum (or sum) of the input taps it covers, computed without walking the kernel.
    x = np.arange(9, dtype=F32).reshape(1, 1, 3, 3)
    y, indices = _core.max_pool2d(x, 2**62, 1, 2**61, 1, False)
    assert y.shape == (1, 1, 4, 4)
    np.testing.assert_array_equal(y, 8.0)
    np.testing.assert_array_equal(indices, 8)
    mean = _core.avg_pool2d(x, 2**62, 1, 2**61, False, False, None)
    np.testing.assert_array_equal(mean, 4.0)


@pytest.mark.parametrize("input_shape", [(1, 1, 2**40, 2**40), (1, 1, 2**62, 2**62)])
def test_pool_backwards_of_huge_inputs_fail_softly(input_shape: tuple[int, ...]) -> None:
    with pytest.raises((MemoryError, ValueError)):
        _core.max_pool2d_backward(ones(1, 1, 1, 1), np.zeros((1, 1, 1, 1), np.int64), input_shape)
    with pytest.raises((MemoryError, ValueError)):
        _core.avg_pool2d_backward(ones(1, 1, 1, 1), input_shape, 2, 2, 0, False, True, None)


@needs_linux
@pytest.mark.parametrize("classes", [2**40, 2**62, 2**63 - 1])
def test_nll_loss_backward_with_huge_class_counts_is_a_memory_error(classes: int) -> None:
    # NumPy's own MemoryError names the size too ("Unable to allocate 4.00 TiB ...").
    with address_space_limit(), pytest.raises(MemoryError, match="bytes|iB"):
        _core.nll_loss_backward(np.array(1.0, F32), np.array([0], np.int64), None, -100, "mean", 1.0, classes)


def test_matmul_of_empty_operands_with_a_huge_product() -> None:
    with pytest.raises(MemoryError, match="bytes"):
        _core.matmul(np.empty((2**31, 0), F32), np.empty((0, 2**31), F32))


def test_internal_error_is_a_runtime_error() -> None:
    assert issubclass(optrs.InternalError, RuntimeError)
    assert issubclass(optrs.InternalError, optrs.OptrsError)


# -- output sizes on ordinary shapes -------------------------------------------------------------

GRID = list(itertools.product((1, 2, 5, 8), (1, 2, 3), (1, 2, 3), (0, 1), (1, 2)))


@pytest.mark.parametrize("size,kernel,stride,pad,dilation", GRID)
def test_conv_output_sizes_are_torchs(size: int, kernel: int, stride: int, pad: int, dilation: int) -> None:
    x, w = ones(2, 1, size, size + 1), ones(3, 1, kernel, kernel)
    out = [conv_size(s, kernel, stride, pad, dilation) for s in (size, size + 1)]
    if min(out) < 1:
        with pytest.raises(optrs.InvalidParamError):
            _core.conv2d(x, w, None, stride, pad, dilation, 1)
        return
    y = _core.conv2d(x, w, None, stride, pad, dilation, 1)
    assert y.shape == (2, 3, *out)
    grads = _core.conv2d_backward(x, w, y, stride, pad, dilation, 1, True, True, True)
    assert [g.shape for g in grads] == [x.shape, w.shape, (3,)]


@pytest.mark.parametrize("size,kernel,stride,pad,dilation", GRID)
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_pool_output_sizes_are_torchs(size: int, kernel: int, stride: int, pad: int, dilation: int,
                                      ceil_mode: bool) -> None:
    x = np.random.default_rng(0).standard_normal((2, 3, size, size + 1)).astype(F32)
    out = [pool_size(s, kernel, stride, pad, dilation, ceil_mode) for s in (size, size + 1)]
    if pad > kernel // 2:
        with pytest.raises(optrs.InvalidHyperparameterError):
            _core.max_pool2d(x, kernel, stride, pad, dilation, ceil_mode)
        return
    if min(out) < 1:
        with pytest.raises(optrs.InvalidParamError):
            _core.max_pool2d(x, kernel, stride, pad, dilation, ceil_mode)
        return
    y, indices = _core.max_pool2d(x, kernel, stride, pad, dilation, ceil_mode)
    assert y.shape == indices.shape == (2, 3, *out)
    assert _core.max_pool2d_backward(y, indices, x.shape).shape == x.shape
    if dilation == 1:
        mean = _core.avg_pool2d(x, kernel, stride, pad, ceil_mode, True, None)
        assert mean.shape == (2, 3, *out)
        assert _core.avg_pool2d_backward(mean, x.shape, kernel, stride, pad, ceil_mode, True, None).shape == x.shape
