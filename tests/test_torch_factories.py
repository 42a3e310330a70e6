"""torch's tensor surface beyond what tests/torch_api compares with torch: seeding and statistics
of the random factories, the errors for what optrs lacks (GPUs, sparse, complex, out=), the
default dtype, gradients of the new ops (gradcheck, float64), and save/load round trips."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import optrs
from optrs.autograd import gradcheck


@pytest.fixture(autouse=True)
def _default_dtype_restored() -> Iterator[None]:
    yield
    optrs.set_default_dtype(optrs.float32)


# -- random factories ---------------------------------------------------------------------------

def _draws() -> list[np.ndarray]:
    return [optrs.rand(3, 2).data, optrs.randn(4).data, optrs.randint(0, 10, (5,)).data, optrs.randperm(6).data,
            optrs.normal(1.0, 2.0, (3,)).data, optrs.normal(optrs.zeros(2), optrs.ones(2)).data,
            optrs.rand_like(optrs.zeros(2)).data, optrs.randn_like(optrs.zeros(2)).data]


def test_manual_seed_makes_every_random_factory_repeat() -> None:
    optrs.manual_seed(7)
    first = _draws()
    optrs.manual_seed(7)
    second = _draws()
    optrs.manual_seed(8)
    other = _draws()
    for a, b, c in zip(first, second, other):
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c) or a.size <= 1


def test_a_generator_argument_is_drawn_from_instead_of_the_global_one() -> None:
    optrs.manual_seed(0)
    expected = optrs.rand(4).data
    optrs.manual_seed(0)
    drawn = optrs.rand(4, generator=np.random.default_rng(99)).data
    np.testing.assert_array_equal(optrs.rand(4).data, expected)  # the global stream was not used
    np.testing.assert_array_equal(drawn, optrs.rand(4, generator=np.random.default_rng(99)).data)

    class Holder:  # e.g. an optrs.Generator that holds a NumPy one
        def __init__(self, seed: int) -> None:
            self.generator = np.random.default_rng(seed)

    np.testing.assert_array_equal(optrs.randperm(9, generator=Holder(3)).data,
                                  optrs.randperm(9, generator=Holder(3)).data)
    with pytest.raises(optrs.ParamDTypeError, match="generator must be"):
        optrs.randn(2, generator=42)


def test_random_factories_have_the_right_statistics() -> None:
    optrs.manual_seed(1)
    u = optrs.rand(200_000).data
    assert u.dtype == np.float32 and 0 <= u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.01
    n = optrs.randn(200_000, dtype=optrs.float64).data
    assert n.dtype == np.float64 and abs(n.mean()) < 0.01 and abs(n.std() - 1) < 0.01
    g = optrs.normal(3.0, 0.5, (200_000,)).data
    assert abs(g.mean() - 3) < 0.01 and abs(g.std() - 0.5) < 0.01
    per_element = optrs.normal(optrs.tensor([0.0, 100.0]), optrs.tensor([1.0, 0.0])).data
    assert per_element[1] == 100.0
    counts = np.bincount(optrs.randint(3, 8, (50_000,)).data)[3:]
    assert len(counts) == 5 and counts.min() > 9_000
    perm = optrs.randperm(1000).data
    assert perm.dtype == np.int64 and np.array_equal(np.sort(perm), np.arange(1000))


@pytest.mark.parametrize("dtype", [optrs.float16, optrs.bfloat16])
def test_low_precision_uniform_draws_stay_below_one(dtype: Any) -> None:
    optrs.manual_seed(2)
    u = optrs.rand(100_000, dtype=dtype)
    assert u.dtype == dtype and float(u.data.astype(np.float32).max()) < 1


# -- default dtype ------------------------------------------------------------------------------

def test_default_dtype_sets_what_python_floats_and_layers_become() -> None:
    assert optrs.get_default_dtype() == optrs.float32
    assert optrs.nn.Linear(2, 2).weight.dtype == np.float32 and optrs.tensor(1.5).dtype == np.float32
    optrs.set_default_dtype(optrs.float64)
    assert optrs.tensor([1.5]).dtype == np.float64 and optrs.ones(2).dtype == np.float64
    assert all(p.dtype == np.float64 for p in optrs.nn.Conv2d(1, 2, 3).parameters())
    assert optrs.tensor([1, 2]).dtype == np.int64 and optrs.arange(3).dtype == np.int64
    for bad in (optrs.int64, float, "float32", optrs.bool):
        with pytest.raises(TypeError, match="only floating-point types"):
            optrs.set_default_dtype(bad)
    assert optrs.get_default_dtype() == optrs.float64


def test_import_optrs_leaves_ml_dtypes_unloaded_until_bfloat16_is_used() -> None:
    code = ("import sys, optrs; loaded = 'ml_dtypes' in sys.modules; optrs.zeros(1).half(); "
            "print(loaded, optrs.bfloat16, 'ml_dtypes' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "bfloat16", "True"]


def test_dtypes_are_numpy_dtypes() -> None:
    assert optrs.float32 is np.dtype(np.float32) or optrs.float32 == np.dtype(np.float32)
    assert isinstance(optrs.bfloat16, optrs.dtype) and optrs.zeros(2).dtype == optrs.float
    x = optrs.tensor([1.0, 2.0], dtype=optrs.bfloat16)
    assert x.dtype == optrs.bfloat16 and x.is_floating_point() and x.float().tolist() == [1.0, 2.0]


# -- what optrs does not have -------------------------------------------------------------------

@pytest.mark.parametrize("call", [
    lambda: optrs.zeros(2).to("cuda"),
    lambda: optrs.zeros(2).to("cuda:0", optrs.float64),
    lambda: optrs.zeros(2).to(device="mps"),
    lambda: optrs.zeros(2).cuda(),
    lambda: optrs.zeros(2).pin_memory(),
    lambda: optrs.zeros(2, device="cuda"),
    lambda: optrs.tensor([1.0], device=optrs.device("cuda", 0)),
    lambda: optrs.randn(2, device="mps"),
    lambda: optrs.nn.Linear(2, 2).to("cuda"),
    lambda: optrs.nn.Linear(2, 2).cuda(),
    lambda: optrs.nn.Linear(2, 2, device="cuda"),
    lambda: optrs.cuda.current_device(),
    lambda: optrs.cuda.synchronize(),
    lambda: optrs.load(io.BytesIO(b""), map_location="cuda"),
])
def test_gpu_devices_raise_a_device_error_that_says_optrs_runs_on_the_cpu(call: Any) -> None:
    with pytest.raises(optrs.DeviceError, match="CPU") as info:
        call()
    assert isinstance(info.value, RuntimeError)  # as torch's "Torch not compiled with CUDA enabled"


def test_device_selection_code_of_torch_scripts_picks_the_cpu() -> None:
    device = optrs.device("cuda" if optrs.cuda.is_available() else "cpu")
    if optrs.backends.mps.is_available() or optrs.accelerator.is_available():
        pytest.fail("optrs claims an accelerator")
    assert optrs.accelerator.current_accelerator() is None and optrs.cuda.device_count() == 0
    optrs.cuda.manual_seed(0)
    optrs.cuda.manual_seed_all(0)
    model = optrs.nn.Linear(3, 1).to(device)
    x = optrs.ones(2, 3).to(device)
    assert model(x).device == device and str(device) == "cpu"
    with optrs.device("cpu"):
        pass
    with pytest.raises(optrs.DeviceError):
        optrs.device("cuda").__enter__()


@pytest.mark.parametrize("call, match", [
    (lambda: optrs.zeros(2).to_sparse(), "dense tensors only"),
    (lambda: optrs.zeros(2).to_sparse_csr(), "dense tensors only"),
    (lambda: optrs.sparse_coo_tensor([[0]], [1.0]), "dense tensors only"),
    (lambda: optrs.view_as_complex(optrs.zeros(2, 2)), "real numbers only"),
    (lambda: optrs.zeros(2, out=optrs.zeros(2)), "out="),
    (lambda: optrs.cat([optrs.zeros(1)], out=optrs.zeros(1)), "out="),
])
def test_sparse_complex_and_out_raise_not_supported(call: Any, match: str) -> None:
    with pytest.raises(optrs.NotSupportedError, match=match) as info:
        call()
    assert isinstance(info.value, NotImplementedError)


@pytest.mark.parametrize("call", [
    lambda: optrs.zeros(2, dtype=optrs.complex64),
    lambda: optrs.tensor([1 + 2j]),
    lambda: optrs.ones(2).to(optrs.cdouble),
    lambda: optrs.tensor(np.array([1j])),
])
def test_complex_dtypes_are_named_and_refused_when_used(call: Any) -> None:
    assert optrs.zeros(1).is_sparse is False and optrs.zeros(1).is_complex() is False
    with pytest.raises(optrs.ParamDTypeError, match="complex"):
        call()


def test_half_params_are_refused_by_optimizers_naming_the_param() -> None:
    model = optrs.nn.Linear(2, 1).half()
    assert model.weight.dtype == np.float16
    with pytest.raises(optrs.ParamDTypeError, match=r"params'\]\[0\] has dtype float16"):
        opt = optrs.optim.SGD(model.parameters(), lr=0.1)
        model(optrs.ones(1, 2, dtype=optrs.half)).sum().backward()
        opt.step()


def test_module_to_dtype_keeps_the_parameter_objects() -> None:
    model = optrs.nn.Sequential(optrs.nn.Linear(2, 2), optrs.nn.BatchNorm2d(2))
    params = list(model.parameters())
    assert model.to(optrs.float64) is model and model.double() is model
    assert [id(p) for p in model.parameters()] == [id(p) for p in params]
    assert all(t.dtype == np.float64 for t in [*model.parameters(), *model.buffers()] if t.dtype.kind == "f")
    assert model[1].num_batches_tracked.dtype == np.int64  # integer buffers stay
    with pytest.raises(TypeError, match="floating point"):
        model.to(optrs.int32)


def test_tensor_to_argument_errors() -> None:
    x = optrs.zeros(2)
    with pytest.raises(TypeError, match="multiple values"):
        x.to(optrs.float64, dtype=optrs.float64)
    with pytest.raises(TypeError, match="unexpected keyword"):
        x.to(dtype=optrs.float64, colour="red")
    with pytest.raises(optrs.ParamDTypeError, match="not a dtype"):
        x.to(object())


# -- gradients of the new ops (float64) ---------------------------------------------------------

def _leaf(shape: tuple[int, ...], seed: int) -> optrs.Tensor:
    return optrs.tensor(np.random.default_rng(seed).normal(size=shape), requires_grad=True)


GRADCHECKS: dict[str, tuple[Any, list[tuple[int, ...]]]] = {
    "where": (lambda a, b: optrs.where(a > 0, a, b), [(3, 4), (4,)]),
    "where_number": (lambda a: optrs.where(a > 0, a, 0.5), [(3, 4)]),
    "maximum": (optrs.maximum, [(3, 4), (3, 1)]),
    "minimum": (optrs.minimum, [(3, 4), (4,)]),
    "max_of_two": (lambda a, b: optrs.max(a, b), [(2, 3), (2, 3)]),
    "clamp_tensors": (lambda x, lo, hi: optrs.clamp(x, lo, hi * 3), [(3, 4), (4,), (3, 1)]),
    "clamp_min_tensor": (lambda x, lo: optrs.clamp(x, min=lo), [(3, 4), (3, 4)]),
    "sort": (lambda x: optrs.sort(x, 0, descending=True).values, [(4, 3)]),
    "argsort_free_sort": (lambda x: optrs.sort(x).values * 2, [(5,)]),
    "topk": (lambda x: optrs.topk(x, 2, dim=1).values, [(3, 5)]),
    "topk_smallest": (lambda x: optrs.topk(x, 3, largest=False).values, [(6,)]),
    "bmm": (optrs.bmm, [(2, 3, 4), (2, 4, 2)]),
    "mm": (optrs.mm, [(3, 4), (4, 2)]),
    "dot": (optrs.dot, [(5,), (5,)]),
    "split": (lambda x: optrs.split(x, [1, 3], dim=1)[1], [(2, 4)]),
    "chunk": (lambda x: optrs.chunk(x, 2)[0], [(5, 2)]),
    "cat": (lambda a, b: optrs.cat([a, b], dim=1), [(2, 3), (2, 1)]),
    "add_alpha": (lambda a, b: optrs.add(a, b, alpha=-2.5), [(2, 3), (3,)]),
    "softmax_dtype": (lambda x: optrs.softmax(x, 0, dtype=optrs.float64), [(3, 2)]),
    "to_and_back": (lambda x: x.to(optrs.float32).to(optrs.float64), [(3,)]),
}


@pytest.mark.parametrize("name", sorted(GRADCHECKS))
def test_new_ops_pass_gradcheck(name: str) -> None:
    fn, shapes = GRADCHECKS[name]
    inputs = [_leaf(shape, seed) for seed, shape in enumerate(shapes)]
    if name == "to_and_back":  # a float32 round trip: float32's finite differences
        assert gradcheck(fn, inputs, eps=1e-2, atol=1e-3, rtol=1e-3)
    else:
        assert gradcheck(fn, inputs)


def test_maximum_shares_the_gradient_of_ties_and_nan_reaches_both() -> None:
    a = optrs.tensor([1.0, 2.0, float("nan")], requires_grad=True)
    b = optrs.tensor([1.0, 3.0, 0.0], requires_grad=True)
    optrs.maximum(a, b).sum().backward()
    assert a.grad is not None and b.grad is not None
    assert a.grad.tolist() == [0.5, 0.0, 1.0] and b.grad.tolist() == [0.5, 1.0, 1.0]


# -- grad modes -----------------------------------------------------------------------------------

def test_inference_mode_as_context_decorator_and_bare_decorator() -> None:
    x = optrs.ones(2, requires_grad=True)

    @optrs.inference_mode
    def bare() -> tuple[bool, bool]:
        return (x * 2).requires_grad, optrs.is_inference_mode_enabled()

    assert bare() == (False, True)
    assert not optrs.is_inference_mode_enabled() and (x * 2).requires_grad
    with optrs.inference_mode():
        with optrs.enable_grad():
            assert (x * 2).requires_grad
        assert not (x * 2).requires_grad
    with optrs.no_grad(), optrs.inference_mode(False):
        assert not (x * 2).requires_grad  # inference_mode(False) leaves grad mode as it was


def test_no_grad_and_enable_grad_decorate_bare_as_in_torch() -> None:
    x = optrs.ones(2, requires_grad=True)

    @optrs.no_grad
    def evaluate(y: optrs.Tensor) -> bool:
        return bool((y * 2).requires_grad)

    @optrs.enable_grad
    def train(y: optrs.Tensor) -> bool:
        return bool((y * 2).requires_grad)

    assert evaluate(x) is False and evaluate.__name__ == "evaluate"
    with optrs.no_grad():
        assert train(x) is True
    assert optrs.is_grad_enabled()


# -- save and load ------------------------------------------------------------------------------

def _trained() -> tuple[optrs.nn.Module, optrs.optim.Optimizer]:
    optrs.manual_seed(0)
    model = optrs.nn.Sequential(optrs.nn.Linear(4, 3), optrs.nn.ReLU(), optrs.nn.Linear(3, 2))
    opt = optrs.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(2):
        opt.zero_grad()
        model(optrs.randn(5, 4)).pow(2).mean().backward()
        opt.step()
    return model, opt


@pytest.mark.parametrize("name", ["model.pt", "model.pth", "weights.bin", "ckpt"])
def test_a_state_dict_round_trips_through_any_file_name(tmp_path: Path, name: str) -> None:
    model, _ = _trained()
    optrs.save(model.state_dict(), tmp_path / name)
    fresh = optrs.nn.Sequential(optrs.nn.Linear(4, 3), optrs.nn.ReLU(), optrs.nn.Linear(3, 2))
    fresh.load_state_dict(optrs.load(str(tmp_path / name)))
    for (key, a), b in zip(model.state_dict().items(), fresh.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=key)


def test_an_optimizer_state_dict_round_trips_and_steps_on_identically(tmp_path: Path) -> None:
    model, opt = _trained()
    optrs.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 2}, tmp_path / "run.pt")
    checkpoint = optrs.load(tmp_path / "run.pt", map_location="cpu", weights_only=True)
    twin = optrs.nn.Sequential(optrs.nn.Linear(4, 3), optrs.nn.ReLU(), optrs.nn.Linear(3, 2))
    twin.load_state_dict(checkpoint["model"])
    twin_opt = optrs.optim.Adam(twin.parameters(), lr=0.5)
    twin_opt.load_state_dict(checkpoint["optimizer"])
    assert checkpoint["epoch"] == 2 and twin_opt.param_groups[0]["lr"] == 1e-2
    x = optrs.randn(5, 4)
    for m, o in ((model, opt), (twin, twin_opt)):
        o.zero_grad()
        m(x).pow(2).mean().backward()
        o.step()
    for a, b in zip(model.parameters(), twin.parameters()):
        np.testing.assert_array_equal(a.data, b.data)


def test_nested_trees_of_tensors_numbers_and_strings_round_trip(tmp_path: Path) -> None:
    param = optrs.nn.Parameter(np.arange(3.0, dtype=np.float32))
    obj = {"tensors": [optrs.tensor([1.5, 2.5]), optrs.zeros(2, 2, dtype=optrs.int64), optrs.tensor(3.0)],
           "leaf": optrs.ones(2, requires_grad=True), "param": param,
           "meta": {"name": "run", "steps": (1, 2.5, None, True), "nested": [[{"deep": optrs.arange(4)}]]}}
    optrs.save(obj, tmp_path / "tree.pt")
    back = optrs.load(tmp_path / "tree.pt")
    assert isinstance(back["tensors"][0], optrs.Tensor) and back["tensors"][0].dtype == np.float32
    assert back["tensors"][1].dtype == np.int64 and back["tensors"][2].shape == ()
    assert back["leaf"].requires_grad and back["leaf"].is_leaf
    assert type(back["param"]) is optrs.nn.Parameter and back["param"].requires_grad
    assert back["meta"]["name"] == "run" and back["meta"]["steps"] == (1, 2.5, None, True)
    np.testing.assert_array_equal(back["meta"]["nested"][0][0]["deep"].data, np.arange(4))
    np.testing.assert_array_equal(back["param"].data, param.data)


def test_save_and_load_take_binary_file_objects() -> None:
    model, _ = _trained()
    buffer = io.BytesIO()
    optrs.save({"w": model[0].weight, "state": model.state_dict()}, buffer)
    buffer.seek(0)
    back = optrs.load(buffer, map_location=lambda storage, location: storage)
    np.testing.assert_array_equal(back["w"].data, model[0].weight.data)
    with pytest.raises(optrs.CheckpointError, match="<file object>|truncated|not an optrs"):
        optrs.load(io.BytesIO(b"not a checkpoint at all"))


def _version(path: Path) -> str:
    data = path.read_bytes()
    header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
    return str(header["__metadata__"]["format_version"])


def test_files_without_tensors_stay_format_version_2(tmp_path: Path) -> None:
    optrs.save({"a": np.zeros(2)}, tmp_path / "arrays.pt")
    optrs.save({"a": optrs.zeros(2)}, tmp_path / "tensors.pt")
    assert _version(tmp_path / "arrays.pt") == "2" and _version(tmp_path / "tensors.pt") == "3"


@pytest.mark.parametrize("location", ["cpu", optrs.device("cpu"), {"cuda:0": "cpu"}, None])
def test_map_location_naming_the_cpu_is_accepted(tmp_path: Path, location: Any) -> None:
    optrs.save([optrs.ones(1)], tmp_path / "x.pt")
    assert optrs.load(tmp_path / "x.pt", map_location=location)[0].tolist() == [1.0]
    with pytest.raises(optrs.DeviceError):
        optrs.load(tmp_path / "x.pt", map_location={"cpu": "cuda:0"})
