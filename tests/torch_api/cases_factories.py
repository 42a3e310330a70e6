"""Cases for factories, dtypes, devices and module-level functions (see harness.py). Random
factories are compared by shape, dtype and bounds here; their seeding and statistics are checked
in tests/test_torch_factories.py."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from .harness import Case

X = [[0.5, -1.25, 3.0], [2.0, 0.0, -0.75]]
ND = np.array(X)  # float64: tensors made from it keep float64


def _grad(t: ModuleType, fn: Any, *inputs: Any) -> list[Any]:
    """fn's result and the gradients of its sum (weighted, so each element counts differently)
    with respect to each float64 input."""
    leaves = [t.tensor(np.asarray(x, np.float64), requires_grad=True) for x in inputs]
    out = fn(*leaves)
    first = out[0] if isinstance(out, tuple) else out
    weights = t.tensor(np.arange(1.0, 1.0 + first.numel()).reshape(first.shape))
    (first * weights).sum().backward()
    return [first, *[t.as_tensor(leaf.grad) for leaf in leaves]]  # optrs's .grad is an ndarray


CASES: dict[str, Case] = {
    # -- dtypes -----------------------------------------------------------------------------------
    "dtype_names": Case(lambda t: [t.float32, t.float64, t.float16, t.bfloat16, t.int64, t.int32, t.int16, t.int8,
                                   t.uint8, t.bool]),
    "dtype_aliases": Case(lambda t: [t.float == t.float32, t.double == t.float64, t.half == t.float16,
                                     t.long == t.int64, t.int == t.int32, t.short == t.int16]),
    "default_dtype": Case(lambda t: t.get_default_dtype()),
    "tensor_of_floats_is_default_dtype": Case(lambda t: t.tensor([1.0, 2.0])),
    "tensor_of_ints_is_int64": Case(lambda t: t.tensor([1, 2, 3])),
    "tensor_of_bools": Case(lambda t: t.tensor([True, False])),
    "tensor_mixed_int_float": Case(lambda t: t.tensor([1, 2.5])),
    "tensor_bool_and_int": Case(lambda t: t.tensor([True, 1])),
    "tensor_scalar": Case(lambda t: t.tensor(3.5)),
    "tensor_int_scalar": Case(lambda t: t.tensor(7)),
    "tensor_empty": Case(lambda t: t.tensor([])),
    "tensor_nested": Case(lambda t: t.tensor(X)),
    "tensor_of_float64_ndarray": Case(lambda t: t.tensor(ND)),
    "tensor_of_float32_ndarray": Case(lambda t: t.tensor(ND.astype(np.float32))),
    "tensor_of_numpy_scalar": Case(lambda t: t.tensor(np.float64(1.5))),
    "tensor_of_0d_tensors": Case(lambda t: t.tensor([t.tensor(1.0), t.tensor(2.0)])),
    "tensor_dtype_given": Case(lambda t: t.tensor([1, 2], dtype=t.float64)),
    "tensor_requires_grad": Case(lambda t: t.tensor([1.0], requires_grad=True).requires_grad),
    "tensor_int_requires_grad_raises": Case(lambda t: t.tensor([1], requires_grad=True), raises_as=(TypeError,)),
    "tensor_overflow_raises": Case(lambda t: t.tensor([2**63])),
    "dtype_of_float_op_result": Case(lambda t: (t.tensor([1.0, 2.0]) * 2.5).dtype),
    "set_default_dtype_float64": Case(lambda t: _with_default(t, t.float64, lambda: [
        t.tensor([1.5]), t.zeros(2), t.arange(0.0, 1.0, 0.5), t.full((1,), 2.0), t.get_default_dtype(),
        t.nn.Linear(2, 1).weight.dtype, t.linspace(0, 1, 3), t.tensor(ND.astype(np.float32))])),
    "set_default_dtype_int_raises": Case(lambda t: t.set_default_dtype(t.int64)),
    "set_default_dtype_python_float_raises": Case(lambda t: t.set_default_dtype(float)),
    "linear_params_float32_by_default": Case(lambda t: [p.dtype for p in t.nn.Linear(3, 2).parameters()]),
    "conv_params_float32_by_default": Case(lambda t: [p.dtype for p in t.nn.Conv2d(1, 2, 3).parameters()]),
    "finfo_float32": Case(lambda t: [t.finfo(t.float32).eps, t.finfo(t.float32).max, t.finfo(t.float32).tiny,
                                     t.finfo(t.float32).bits, t.finfo().bits]),
    "finfo_bfloat16": Case(lambda t: [t.finfo(t.bfloat16).eps, t.finfo(t.bfloat16).bits]),
    "iinfo_int32": Case(lambda t: [t.iinfo(t.int32).max, t.iinfo(t.int32).min, t.iinfo(t.int32).bits]),
    "is_floating_point": Case(lambda t: [t.is_floating_point(t.zeros(1)), t.is_floating_point(t.zeros(1).long()),
                                         t.zeros(1).is_floating_point(), t.zeros(1).bfloat16().is_floating_point()]),
    "is_tensor": Case(lambda t: [t.is_tensor(t.zeros(1)), t.is_tensor(ND), t.is_tensor(1.0)]),
    # -- conversions ------------------------------------------------------------------------------
    "to_dtype": Case(lambda t: t.tensor(X).to(t.float64)),
    "to_int_truncates": Case(lambda t: t.tensor(X).to(t.int64)),
    "to_device_cpu": Case(lambda t: t.tensor(X).to("cpu")),
    "to_device_and_dtype": Case(lambda t: t.tensor(X).to("cpu", t.float64)),
    "to_keywords": Case(lambda t: t.tensor(X).to(device="cpu", dtype=t.float16)),
    "to_device_object": Case(lambda t: t.tensor(X).to(t.device("cpu"))),
    "to_other_tensor": Case(lambda t: t.tensor(X).to(t.zeros(1, dtype=t.float64))),
    "to_non_blocking_copy": Case(lambda t: t.tensor(X).to(t.float64, non_blocking=True, copy=True)),
    "to_same_is_self": Case(lambda t: (lambda x: x.to(t.float32) is x)(t.tensor(X))),
    "to_copy_is_new": Case(lambda t: (lambda x: x.to(t.float32, copy=True) is x)(t.tensor(X))),
    "to_python_float": Case(lambda t: t.tensor(X).to(float)),
    "to_bfloat16_values": Case(lambda t: t.tensor([1.0, 1.00390625, 3.14159]).to(t.bfloat16).float(),
                               rtol=0, atol=0),
    "to_half": Case(lambda t: t.tensor([1.0, 1.0001, 65504.0]).half()),
    "to_cuda_raises": Case(lambda t: t.zeros(1).to("cuda")),
    "to_mps_raises": Case(lambda t: t.zeros(1).to("mps")),
    "cuda_method_raises": Case(lambda t: t.zeros(1).cuda()),
    "to_bad_device_raises": Case(lambda t: t.zeros(1).to("gpu")),
    "to_grad_flows": Case(lambda t: _grad(t, lambda x: x.to(t.float32) * 3, X), rtol=1e-6),
    "cpu_is_self": Case(lambda t: (lambda x: x.cpu() is x)(t.zeros(2))),
    "type_as": Case(lambda t: t.tensor([1.5, -2.5]).type_as(t.tensor([1]))),
    "type_name": Case(lambda t: [t.zeros(1).type(), t.zeros(1, dtype=t.int64).type(), t.zeros(1).double().type(),
                                 t.zeros(1, dtype=t.bool).type()]),
    "type_dtype": Case(lambda t: [t.zeros(1).type(t.float64), t.zeros(1).type("torch.DoubleTensor")]),
    "device_properties": Case(lambda t: [t.zeros(1).device, t.zeros(1).is_cuda, t.zeros(1).is_sparse,
                                         t.zeros(1).is_cpu, t.zeros(1).device.type, t.zeros(1).is_complex()]),
    "layout": Case(lambda t: str(t.zeros(1).layout == t.strided)),
    # -- devices ----------------------------------------------------------------------------------
    "device_cpu": Case(lambda t: [t.device("cpu"), t.device("cpu").type, t.device("cpu").index, str(t.device("cpu"))]),
    "device_cpu_index": Case(lambda t: [t.device("cpu", 0), t.device("cpu", 0).index, str(t.device("cpu", 0))]),
    "device_cuda": Case(lambda t: [str(t.device("cuda")), t.device("cuda").index, str(t.device("cuda:1")),
                                   t.device("cuda:1").index, repr(t.device("cuda", 2))]),
    "device_int_is_cuda": Case(lambda t: str(t.device(0))),
    "device_of_device": Case(lambda t: str(t.device(t.device("cpu")))),
    "device_keyword": Case(lambda t: str(t.device(type="cpu", index=None))),
    "device_equality": Case(lambda t: [t.device("cpu") == t.device("cpu"), t.device("cpu") == t.device("cpu", 0),
                                       t.device("cpu") == "cpu", t.device("cuda") == t.device("cpu"),
                                       t.device("cpu") in {t.device("cpu")}]),
    "device_repr": Case(lambda t: [repr(t.device("cpu")), repr(t.device("cuda:0"))]),
    "device_bad_raises": Case(lambda t: t.device("foo")),
    "device_negative_raises": Case(lambda t: t.device("cpu", -1)),
    "device_double_index_raises": Case(lambda t: t.device("cuda:0", 1)),
    "cuda_queries": Case(lambda t: [t.cuda.is_available(), t.cuda.device_count()]),
    "mps_query": Case(lambda t: t.backends.mps.is_available()),
    "cudnn_flags_settable": Case(lambda t: _set_cudnn(t)),
    "accelerator_available": Case(lambda t: t.accelerator.is_available()),
    "device_selection_idiom": Case(lambda t: str(t.device("cuda" if t.cuda.is_available() else "cpu"))),
    "factory_cpu_device": Case(lambda t: t.zeros(2, device="cpu").device),
    "factory_cuda_raises": Case(lambda t: t.zeros(2, device="cuda")),
    "module_to_device": Case(lambda t: [p.dtype for p in t.nn.Linear(2, 1).to("cpu").parameters()]),
    "module_to_device_object": Case(lambda t: [p.dtype for p in t.nn.Linear(2, 1).to(t.device("cpu")).parameters()]),
    "module_to_dtype": Case(lambda t: [p.dtype for p in t.nn.Linear(2, 1).to(t.float64).parameters()]),
    "module_to_device_dtype": Case(lambda t: [p.dtype for p in t.nn.Linear(2, 1).to("cpu", t.float64).parameters()]),
    "module_to_tensor": Case(lambda t: [p.dtype for p in t.nn.Linear(2, 1).to(t.zeros(1).double()).parameters()]),
    "module_to_keywords": Case(lambda t: [p.dtype for p in t.nn.Linear(2, 1).to(device="cpu",
                                                                                dtype=t.float64).parameters()]),
    "module_to_returns_self": Case(lambda t: (lambda m: m.to("cpu") is m and m.cpu() is m)(t.nn.Linear(2, 1))),
    "module_half_and_back": Case(lambda t: [p.dtype for p in t.nn.Linear(2, 1).half().float().parameters()]),
    "module_to_int_raises": Case(lambda t: t.nn.Linear(2, 1).to(t.int64), raises_as=(TypeError,)),
    "module_to_cuda_raises": Case(lambda t: t.nn.Linear(2, 1).to("cuda")),
    "module_cuda_raises": Case(lambda t: t.nn.Linear(2, 1).cuda()),
    # -- factories --------------------------------------------------------------------------------
    "zeros_varargs": Case(lambda t: t.zeros(2, 3)),
    "zeros_tuple": Case(lambda t: t.zeros((2, 3))),
    "zeros_list": Case(lambda t: t.zeros([2, 3])),
    "zeros_scalar_shape": Case(lambda t: t.zeros(())),
    "size_keyword": Case(lambda t: [t.zeros(size=(2, 3)), t.ones(size=[2]), t.empty(size=(1, 2)).shape,
                                    t.rand(size=(3,)).shape, t.randn(size=(2, 2)).dtype]),
    "zeros_without_size_raises": Case(lambda t: t.zeros(), raises_as=(TypeError,)),
    "zeros_dtype": Case(lambda t: t.zeros(2, dtype=t.int32)),
    "zeros_requires_grad": Case(lambda t: t.zeros(2, requires_grad=True).requires_grad),
    "zeros_negative_raises": Case(lambda t: t.zeros(-1)),
    "zeros_float_size_raises": Case(lambda t: t.zeros(2.0), raises_as=(TypeError,)),
    "ones": Case(lambda t: [t.ones(3), t.ones(2, 2, dtype=t.bool), t.ones((1, 2), dtype=t.float64)]),
    "empty_shape_dtype": Case(lambda t: [t.empty(2, 3).shape, t.empty(2, 3).dtype, t.empty((4,), dtype=t.int64).dtype]),
    "full_float": Case(lambda t: t.full((2, 2), 1.5)),
    "full_int": Case(lambda t: t.full((3,), 7)),
    "full_bool": Case(lambda t: t.full([2], True)),
    "full_dtype": Case(lambda t: t.full((2,), 3, dtype=t.float64)),
    "full_int_size_raises": Case(lambda t: t.full(2, 1.0), raises_as=(TypeError,)),
    "arange_end": Case(lambda t: t.arange(5)),
    "arange_start_end_step": Case(lambda t: t.arange(1, 10, 3)),
    "arange_negative_step": Case(lambda t: t.arange(5, -5, -2)),
    "arange_float": Case(lambda t: t.arange(0, 1, 0.1)),
    "arange_float_end": Case(lambda t: t.arange(2.5)),
    "arange_float_long": Case(lambda t: t.arange(-3.0, 7.0, 0.37)),
    "arange_dtype": Case(lambda t: t.arange(4, dtype=t.float64)),
    "arange_keywords": Case(lambda t: [t.arange(end=3), t.arange(start=1, end=4), t.arange(0, 5, step=2)]),
    "arange_empty": Case(lambda t: t.arange(1, 1)),
    "arange_tensor_bound": Case(lambda t: t.arange(t.tensor(3))),
    "arange_zero_step_raises": Case(lambda t: t.arange(0, 1, 0)),
    "arange_wrong_sign_raises": Case(lambda t: t.arange(0, 1, -1)),
    "linspace": Case(lambda t: t.linspace(0, 1, 5)),
    "linspace_odd": Case(lambda t: t.linspace(-2.5, 7.25, 7)),
    "linspace_one": Case(lambda t: t.linspace(0, 10, 1)),
    "linspace_zero": Case(lambda t: t.linspace(0, 10, 0)),
    "linspace_int_dtype": Case(lambda t: t.linspace(0, 10, 4, dtype=t.int64)),
    "linspace_float64": Case(lambda t: t.linspace(0, 1, 11, dtype=t.float64), rtol=1e-15, atol=0),
    "linspace_negative_raises": Case(lambda t: t.linspace(0, 1, -1)),
    "eye": Case(lambda t: [t.eye(3), t.eye(2, 3), t.eye(2, dtype=t.int64)]),
    "as_tensor_list": Case(lambda t: t.as_tensor([1.0, 2.0])),
    "as_tensor_ndarray_shares": Case(lambda t: _shares(t, lambda a: t.as_tensor(a))),
    "as_tensor_dtype": Case(lambda t: t.as_tensor(ND, dtype=t.float32)),
    "as_tensor_tensor_is_self": Case(lambda t: (lambda x: t.as_tensor(x) is x)(t.zeros(2))),
    "from_numpy_shares": Case(lambda t: _shares(t, t.from_numpy)),
    "from_numpy_keeps_dtype": Case(lambda t: [t.from_numpy(ND).dtype, t.from_numpy(ND.astype(np.int32)).dtype]),
    "zeros_like": Case(lambda t: [t.zeros_like(t.tensor(X)), t.zeros_like(t.tensor([1, 2], dtype=t.int32))]),
    "ones_like_dtype": Case(lambda t: t.ones_like(t.tensor(X), dtype=t.float64)),
    "full_like": Case(lambda t: [t.full_like(t.zeros(2, dtype=t.int32), 2.7), t.full_like(t.zeros(2), 2.5)]),
    "empty_like": Case(lambda t: [t.empty_like(t.tensor(X)).shape, t.empty_like(t.tensor(X)).dtype]),
    "rand_like_int_raises": Case(lambda t: t.rand_like(t.zeros(2, dtype=t.int64))),
    # -- random factories: shapes, dtypes, bounds -------------------------------------------------
    "rand": Case(lambda t: _drawn(t.rand(50, 4))),
    "rand_tuple_float64": Case(lambda t: _drawn(t.rand((3, 5), dtype=t.float64))),
    "rand_int_raises": Case(lambda t: t.rand(2, dtype=t.int64)),
    "randn": Case(lambda t: [t.randn(2, 3).shape, t.randn(2, 3).dtype, t.randn(4, dtype=t.float64).dtype]),
    "randint_high": Case(lambda t: _drawn(t.randint(10, (200,)), 0, 10)),
    "randint_low_high": Case(lambda t: _drawn(t.randint(3, 6, (50, 2)), 3, 6)),
    "randint_dtype": Case(lambda t: t.randint(0, 2, (3,), dtype=t.float32).dtype),
    "randint_size_keyword": Case(lambda t: t.randint(0, 5, size=(4,)).shape),
    "randint_empty_range_raises": Case(lambda t: t.randint(5, 5, (2,))),
    "randperm": Case(lambda t: [t.randperm(10).dtype, t.sort(t.randperm(10)).values, t.randperm(0).shape]),
    "normal_numbers": Case(lambda t: [t.normal(2.0, 3.0, (4, 2)).shape, t.normal(2.0, 3.0, (4, 2)).dtype]),
    "normal_tensors": Case(lambda t: [t.normal(t.zeros(3), t.ones(3)).shape, t.normal(t.zeros(3), t.ones(3)).dtype,
                                      t.normal(t.zeros(2, dtype=t.float64), 1.0).dtype,
                                      t.normal(0.0, t.ones(2, 2)).shape]),
    "normal_zero_std": Case(lambda t: t.normal(t.tensor([1.0, -2.0]), t.zeros(2))),
    "normal_negative_std_raises": Case(lambda t: t.normal(0.0, -1.0, (2,))),
    "rand_like": Case(lambda t: [t.rand_like(t.zeros(2, 2)).shape, t.randn_like(t.zeros(3, dtype=t.float64)).dtype]),
    "randint_like": Case(lambda t: _drawn(t.randint_like(t.zeros(40, dtype=t.int32), 4), 0, 4)),
    "manual_seed_repeats": Case(lambda t: _seeded(t)),
    # -- module-level functions -------------------------------------------------------------------
    "flatten": Case(lambda t: [t.flatten(t.zeros(2, 3, 4)).shape, t.flatten(t.zeros(2, 3, 4), 1).shape,
                               t.flatten(t.zeros(2, 3, 4), 0, 1).shape, t.flatten(t.tensor(1.0)).shape]),
    "flatten_grad": Case(lambda t: _grad(t, lambda x: t.flatten(x), X)),
    "cat": Case(lambda t: [t.cat([t.tensor(X), t.tensor(X)]), t.cat((t.tensor(X), t.tensor(X)), dim=1),
                           t.concat([t.zeros(1), t.ones(2)])]),
    "cat_grad": Case(lambda t: _grad(t, lambda a, b: t.cat([a, b], 1), X, [[1.0], [2.0]])),
    "stack": Case(lambda t: [t.stack([t.tensor(X), t.tensor(X)]), t.stack([t.zeros(2), t.ones(2)], dim=1)]),
    "stack_raises_on_mismatch": Case(lambda t: t.stack([t.zeros(2), t.zeros(3)])),
    "where": Case(lambda t: t.where(t.tensor(X) > 0, t.tensor(X), t.zeros(2, 3))),
    "where_scalars": Case(lambda t: [t.where(t.tensor([True, False]), 1.0, 0.0),
                                     t.where(t.tensor([True, False]), 1, 0),
                                     t.where(t.tensor([True, False]), t.tensor([1.0, 2.0]), 0)]),
    "where_broadcast": Case(lambda t: t.where(t.tensor([[True], [False]]), t.tensor([1.0, 2.0, 3.0]), -1.0)),
    "where_one_argument": Case(lambda t: t.where(t.tensor([[True, False], [False, True]]))),
    "where_grad": Case(lambda t: _grad(t, lambda a, b: t.where(a > b, a, b), X, [[1.0, 0.0, 0.0]])),
    "where_non_bool_raises": Case(lambda t: t.where(t.tensor([1, 0]), t.zeros(2), t.ones(2))),
    "clamp": Case(lambda t: [t.clamp(t.tensor(X), -1, 1), t.clamp(t.tensor(X), min=0.0), t.clip(t.tensor(X), max=0.5)]),
    "clamp_tensor_bounds": Case(lambda t: t.clamp(t.tensor(X), t.tensor([0.0, -1.0, 0.0]), t.tensor(1.5))),
    "clamp_tensor_grad": Case(lambda t: _grad(t, lambda x, lo, hi: t.clamp(x, lo, hi), X, [0.0, -1.0, 0.0],
                                              [1.0, 2.0, -0.5])),
    "clamp_grad": Case(lambda t: _grad(t, lambda x: t.clamp(x, -1.0, 1.0), X)),
    "elementwise": Case(lambda t: [f(t.tensor([[0.5, 1.5], [2.0, 4.0]])) for f in
                                   (t.exp, t.log, t.sqrt, t.abs, t.relu, t.sigmoid, t.tanh, t.neg, t.square)]),
    "elementwise_grads": Case(lambda t: [_grad(t, f, [[0.5, 1.5], [2.0, 4.0]]) for f in
                                         (t.exp, t.log, t.sqrt, t.abs, t.sigmoid, t.tanh, t.square)]),
    "relu_negative": Case(lambda t: t.relu(t.tensor(X))),
    "softmax": Case(lambda t: [t.softmax(t.tensor(X), 1), t.softmax(t.tensor(X), dim=0),
                               t.log_softmax(t.tensor(X), -1), t.softmax(t.tensor(X), 1, dtype=t.float64)]),
    "softmax_grad": Case(lambda t: _grad(t, lambda x: t.log_softmax(x, 1), X)),
    "arithmetic": Case(lambda t: [t.add(t.tensor(X), 1.0), t.add(t.tensor(X), t.tensor(X), alpha=2),
                                  t.sub(t.tensor(X), 0.5, alpha=3), t.mul(t.tensor(X), t.tensor(X)),
                                  t.div(t.tensor(X), 4.0), t.pow(t.tensor(X), 2), t.pow(2, t.tensor(X)),
                                  t.div(t.tensor([7.0, -7.0]), 2, rounding_mode="floor"),
                                  t.div(t.tensor([7.0, -7.0]), 2, rounding_mode="trunc"),
                                  t.div(t.tensor([7, -7]), 2, rounding_mode="floor")]),
    "arithmetic_grad": Case(lambda t: _grad(t, lambda a, b: t.add(t.mul(a, b), b, alpha=2), X, X)),
    "maximum_minimum": Case(lambda t: [t.maximum(t.tensor(X), t.zeros(2, 3)), t.minimum(t.tensor(X), t.zeros(3))]),
    "maximum_grad_ties": Case(lambda t: _grad(t, t.maximum, [1.0, 2.0, 3.0], [1.0, 5.0, 0.0])),
    "minimum_grad_ties": Case(lambda t: _grad(t, t.minimum, [1.0, 2.0, 3.0], [1.0, 5.0, 0.0])),
    "matmul": Case(lambda t: [t.matmul(t.tensor(X), t.tensor(X).T), t.matmul(t.tensor([1.0, 2.0]), t.tensor(X)),
                              t.mm(t.tensor(X), t.tensor(X).t())]),
    "mm_grad": Case(lambda t: _grad(t, t.mm, X, [[1.0], [2.0], [-1.0]])),
    "mm_not_2d_raises": Case(lambda t: t.mm(t.zeros(2), t.zeros(2, 2))),
    "bmm": Case(lambda t: t.bmm(t.tensor([X, X]), t.tensor([X, X]).transpose(1, 2))),
    "bmm_grad": Case(lambda t: _grad(t, t.bmm, [X, X], [[[1.0], [2.0], [3.0]], [[0.5], [0.0], [-1.0]]])),
    "bmm_batch_mismatch_raises": Case(lambda t: t.bmm(t.zeros(2, 2, 2), t.zeros(3, 2, 2))),
    "bmm_not_3d_raises": Case(lambda t: t.bmm(t.zeros(2, 2), t.zeros(2, 2))),
    "dot": Case(lambda t: t.dot(t.tensor([1.0, 2.0]), t.tensor([3.0, 4.0]))),
    "sum_mean": Case(lambda t: [t.sum(t.tensor(X)), t.sum(t.tensor(X), 1), t.sum(t.tensor(X), dim=0, keepdim=True),
                                t.sum(t.tensor(X), (0, 1)), t.mean(t.tensor(X)), t.mean(t.tensor(X), 1, True),
                                t.sum(t.tensor(X), dtype=t.float64)]),
    "sum_ints_and_bools": Case(lambda t: [t.sum(t.tensor([True, True, False])),
                                          t.sum(t.tensor([1, 2], dtype=t.int32))]),
    "mean_int_raises": Case(lambda t: t.mean(t.tensor([1, 2]))),
    "mean_int_with_dtype": Case(lambda t: t.mean(t.tensor([1, 2]), dtype=t.float32)),
    "max_all": Case(lambda t: [t.max(t.tensor(X)), t.min(t.tensor(X))]),
    "max_dim": Case(lambda t: [t.max(t.tensor(X), 1), t.max(t.tensor(X), dim=0, keepdim=True),
                               t.min(t.tensor(X), 1), t.min(t.tensor(X), -1, True)]),
    "max_dim_fields": Case(lambda t: [t.max(t.tensor(X), 1).values, t.max(t.tensor(X), 1).indices]),
    "max_elementwise": Case(lambda t: [t.max(t.tensor(X), t.zeros(2, 3)), t.min(t.tensor(X), t.zeros(3))]),
    "max_grad": Case(lambda t: [_grad(t, t.max, X), _grad(t, lambda x: t.max(x, 1), X),
                                _grad(t, lambda x: t.min(x, 0), X)]),
    "max_dim_out_of_range_raises": Case(lambda t: t.max(t.tensor([1.0, 3.0]), 1), raises_as=(IndexError,)),
    "argmax_argmin": Case(lambda t: [t.argmax(t.tensor(X)), t.argmax(t.tensor(X), 1), t.argmin(t.tensor(X), dim=0),
                                     t.argmax(t.tensor(X), 1, keepdim=True)]),
    "sort": Case(lambda t: [t.sort(t.tensor(X)), t.sort(t.tensor(X), 0), t.sort(t.tensor(X), descending=True),
                            t.sort(t.tensor(X), dim=0, descending=True)]),
    "sort_ties_stable": Case(lambda t: [t.sort(t.tensor([1.0, 1.0, 0.0, 1.0]), descending=True),
                                        t.sort(t.tensor([1, 0, 1, 0]), stable=True)]),
    "sort_nan_is_largest": Case(lambda t: [t.sort(t.tensor([1.0, float("nan"), 0.0])),
                                           t.sort(t.tensor([1.0, float("nan"), 0.0]), descending=True)]),
    "sort_grad": Case(lambda t: _grad(t, lambda x: t.sort(x, 1, descending=True), X)),
    "argsort": Case(lambda t: [t.argsort(t.tensor(X)), t.argsort(t.tensor(X), 0, descending=True)]),
    "topk": Case(lambda t: [t.topk(t.tensor(X), 2), t.topk(t.tensor(X), 1, dim=0),
                            t.topk(t.tensor(X), 2, largest=False), t.topk(t.tensor([3.0, 1.0, 2.0]), 3)]),
    "topk_grad": Case(lambda t: _grad(t, lambda x: t.topk(x, 2), X)),
    "topk_too_many_raises": Case(lambda t: t.topk(t.tensor([1.0, 1.0]), 3)),
    "allclose_equal": Case(lambda t: [t.allclose(t.tensor(X), t.tensor(X) + 1e-9),
                                      t.allclose(t.tensor(X), t.tensor(X) + 1),
                                      t.allclose(t.tensor([1.0, 1.0]), t.tensor([1.0])),
                                      t.allclose(t.tensor([float("nan")]), t.tensor([float("nan")]), equal_nan=True),
                                      t.allclose(t.tensor([1.0]), t.tensor([1.1]), rtol=0.2),
                                      t.equal(t.tensor(X), t.tensor(X)), t.equal(t.tensor(X), t.tensor(X) * 2),
                                      t.equal(t.tensor([1, 2]), t.tensor([[1, 2]])),
                                      t.equal(t.tensor([1, 2]), t.tensor([1.0, 2.0])),
                                      t.equal(t.tensor([float("nan")]), t.tensor([float("nan")]))]),
    "allclose_dtype_mismatch_raises": Case(lambda t: t.allclose(t.tensor([1, 2]), t.tensor([1.0, 2.0]))),
    "shape_functions": Case(lambda t: [t.squeeze(t.zeros(1, 2, 1)).shape, t.squeeze(t.zeros(1, 2, 1), 0).shape,
                                       t.unsqueeze(t.zeros(2), 1).shape, t.transpose(t.zeros(2, 3), 0, 1).shape,
                                       t.reshape(t.zeros(6), (2, 3)).shape,
                                       t.permute(t.zeros(2, 3, 4), (2, 0, 1)).shape,
                                       t.t(t.zeros(2, 3)).shape, t.numel(t.zeros(2, 3))]),
    "split_chunk": Case(lambda t: [t.split(t.arange(7), 3), t.split(t.arange(6), [1, 5]), t.chunk(t.arange(7), 3),
                                   t.chunk(t.arange(6).reshape(2, 3), 2, dim=1), t.chunk(t.arange(5), 10)]),
    "split_grad": Case(lambda t: _grad(t, lambda x: t.split(x, 2, dim=1)[1] * 2, X)),
    "split_bad_sizes_raises": Case(lambda t: t.split(t.arange(6), [1, 2])),
    "no_grad_and_inference_mode": Case(lambda t: _grad_modes(t)),
    "unsupported_dtypes_are_names": Case(lambda t: [repr(t.complex64) != "", t.zeros(1).dtype == t.complex64]),
}


def _with_default(t: ModuleType, dtype: Any, make: Any) -> Any:
    previous = t.get_default_dtype()
    t.set_default_dtype(dtype)
    try:
        return make()
    finally:
        t.set_default_dtype(previous)


def _set_cudnn(t: ModuleType) -> list[Any]:
    before = (t.backends.cudnn.deterministic, t.backends.cudnn.benchmark)
    t.backends.cudnn.deterministic, t.backends.cudnn.benchmark = True, False
    result = [t.backends.cudnn.deterministic, t.backends.cudnn.benchmark]
    t.backends.cudnn.deterministic, t.backends.cudnn.benchmark = before
    return result


def _shares(t: ModuleType, make: Any) -> list[Any]:
    array = ND.copy()
    x = make(array)
    array[0, 0] = 100.0
    return [x, x.dtype]


def _drawn(x: Any, low: float = 0.0, high: float = 1.0) -> list[Any]:
    """A random tensor's shape, dtype and whether its values lie in [low, high)."""
    values = np.asarray(x.tolist(), dtype=np.float64)
    return [x.shape, x.dtype, bool(np.all((values >= low) & (values < high)))]


def _seeded(t: ModuleType) -> list[Any]:
    draws = []
    for _ in range(2):
        t.manual_seed(123)
        draws.append([t.rand(3).tolist(), t.randn(2).tolist(), t.randint(0, 100, (4,)).tolist(),
                      t.randperm(5).tolist(), t.normal(0.0, 1.0, (2,)).tolist()])
    return [draws[0] == draws[1]]


def _grad_modes(t: ModuleType) -> list[Any]:
    x = t.ones(2, requires_grad=True)
    with t.no_grad():
        a = (x * 2).requires_grad
    with t.inference_mode():
        b = (x * 2).requires_grad
    with t.inference_mode(False):
        c = (x * 2).requires_grad

    @t.inference_mode()
    def decorated() -> bool:
        return bool((x * 2).requires_grad)

    @t.no_grad()
    def decorated_no_grad() -> bool:
        return bool((x * 2).requires_grad)

    @t.no_grad
    def bare_no_grad() -> bool:
        return bool((x * 2).requires_grad)

    @t.inference_mode
    def bare_inference() -> bool:
        return bool((x * 2).requires_grad)

    return [a, b, c, decorated(), decorated_no_grad(), bare_no_grad(), bare_inference(), t.is_grad_enabled(),
            (x * 2).requires_grad, t.is_inference_mode_enabled()]
