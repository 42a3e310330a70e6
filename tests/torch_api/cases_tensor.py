"""Cases for Tensor methods and in-place ops (see harness.py): comparisons, picking and ordering,
shapes, conversions, the ``new_*`` factories, in-place ops with autograd and version counters."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from .harness import Case


def _dtype(t: ModuleType, name: str) -> Any:
    """``t.float32`` where the library has it (optrs's dtypes are NumPy's)."""
    return getattr(t, name, None) or np.dtype(name)


def f32(t: ModuleType, data: Any, requires_grad: bool = False) -> Any:
    return t.tensor(data, dtype=_dtype(t, "float32"), requires_grad=requires_grad)


def f64(t: ModuleType, data: Any, requires_grad: bool = False) -> Any:
    return t.tensor(data, dtype=_dtype(t, "float64"), requires_grad=requires_grad)


def i64(t: ModuleType, data: Any) -> Any:
    return t.tensor(data, dtype=_dtype(t, "int64"))


def boolean(t: ModuleType, data: Any) -> Any:
    return t.tensor(data, dtype=_dtype(t, "bool"))


def grad_of(t: ModuleType, x: Any) -> Any:
    """``x.grad`` as a tensor of either library (optrs's is an ndarray)."""
    return x.grad if hasattr(x.grad, "detach") else t.tensor(x.grad)


M = [[1.0, -2.0, 3.0], [4.0, 0.5, -6.0]]


def _grads(t: ModuleType, make: Any, *inputs: Any) -> Any:
    """(output, grads of the inputs) for ``make(*inputs)`` summed with fixed weights."""
    out = make(*inputs)
    weights = f32(t, np.arange(1, out.numel() + 1, dtype=np.float32).reshape(tuple(out.shape)).tolist())
    (out * weights).sum().backward()
    return out, [grad_of(t, x) for x in inputs]


def _gather(t: ModuleType) -> Any:
    x = f32(t, M, requires_grad=True)
    return _grads(t, lambda a: a.gather(1, i64(t, [[0, 0], [2, 1]])), x)


def _masked_fill_value_grad(t: ModuleType) -> Any:
    x, v = f32(t, [1.0, 2.0, 3.0], requires_grad=True), f32(t, 5.0, requires_grad=True)
    return _grads(t, lambda a, b: a.masked_fill(boolean(t, [True, False, True]), b), x, v)


def _inplace_on_nonleaf(t: ModuleType) -> Any:
    x = f32(t, [1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2
    y.add_(1)
    y.mul_(x)
    y.sub_(f32(t, [1.0, 1.0, 1.0]), alpha=2)
    y.div_(2)
    y.sum().backward()
    return y, y.is_leaf, y.requires_grad, y._version, grad_of(t, x)


def _inplace_into_buffer(t: ModuleType) -> Any:
    x = f32(t, [1.0, 2.0], requires_grad=True)
    buf = t.zeros(2, dtype=_dtype(t, "float32")) if hasattr(t, "zeros") else f32(t, [0.0, 0.0])
    buf.add_(x)
    buf.mul_(x)
    buf.sum().backward()
    return buf, buf.is_leaf, grad_of(t, x)


def _iadd_nonleaf(t: ModuleType) -> Any:
    x = f32(t, [1.0, 2.0], requires_grad=True)
    y = x * 1
    y += 1
    y *= 2
    y -= x
    y /= 2
    y.sum().backward()
    return y, grad_of(t, x)


def _setitem_in_graph(t: ModuleType) -> Any:
    w = f32(t, [1.0, 2.0], requires_grad=True)
    y = w * 1
    y[0] = 5
    z = f32(t, [0.0, 0.0, 0.0])
    z[1:] = w * 2
    ((y * y).sum() + (z * z).sum()).backward()
    return y, z, grad_of(t, w)


def _saved_output_changed(t: ModuleType) -> Any:
    x = f32(t, [1.0, 2.0], requires_grad=True)
    y = x.exp()
    y.add_(1)
    y.sum().backward()


def _saved_input_changed(t: ModuleType) -> Any:
    x = f32(t, [1.0, 2.0], requires_grad=True)
    c = f32(t, [3.0, 4.0])
    y = x * c
    c.add_(1)
    y.sum().backward()


def _unsaved_input_changed(t: ModuleType) -> Any:
    x = f32(t, [1.0, 2.0], requires_grad=True)
    c = f32(t, [3.0, 4.0])
    y = x + c
    c.add_(1)  # add saves neither operand: no error
    y.sum().backward()
    return grad_of(t, x), c._version


def _view_changes_base_version(t: ModuleType) -> Any:
    a = f32(t, [0.0, 1.0, 2.0, 3.0])
    v = a.view(2, 2)
    v.mul_(2)
    a[0] = 7
    s, d, e = a[1:], a.detach(), a.expand(2, 4)
    d.add_(1)
    picked = a[i64(t, [0, 1])]
    return a, v, a._version, v._version, s._version, e._version, picked._version


def _view_saved_then_base_changed(t: ModuleType) -> Any:
    x = f32(t, [1.0, 2.0], requires_grad=True)
    y = x * 1
    z = y.view(2, 1) * x.view(2, 1)  # saves the view of y
    with t.no_grad():
        y.mul_(3)
    z.sum().backward()


def _exp_twice(t: ModuleType) -> Any:
    x = f32(t, [1.0, 2.0], requires_grad=True)
    y = x * 1
    y.exp_()
    y.sum().backward()
    return y, grad_of(t, x)


def _in_place_under_no_grad(t: ModuleType) -> Any:
    w = f32(t, [1.0, 2.0], requires_grad=True)
    with t.no_grad():
        w.sub_(f32(t, [0.5, 0.5]), alpha=0.1)
        w.clamp_(min=0.96)
        w.mul_(2)
    return w, w.is_leaf, w.requires_grad, w._version


def _no_grad_in_place_keeps_history(t: ModuleType) -> Any:
    x = f32(t, [1.0, 2.0], requires_grad=True)
    y = x * 2
    with t.no_grad():
        y.add_(1)
    (y * 1).sum().backward()
    return y, y._version, grad_of(t, x)


def _clamp_and_friends(t: ModuleType) -> Any:
    x = f32(t, [-2.0, 0.25, 4.0], requires_grad=True)
    out = []
    for op in (lambda y: y.clamp_(min=-1.0, max=2.0), lambda y: y.relu_(), lambda y: y.abs().sqrt_(),
               lambda y: y.pow_(3), lambda y: y.neg_(), lambda y: y.abs_(), lambda y: y.sigmoid_(),
               lambda y: y.tanh_()):
        y = op(x * 1)
        y.sum().backward()
        out.append((y, grad_of(t, x)))
        x.grad = None
    return out


def _fill_copy_zero(t: ModuleType) -> Any:
    x, v = f32(t, [1.0, 2.0], requires_grad=True), f32(t, 3.0, requires_grad=True)
    y = x * 1
    y.fill_(v)
    z = f32(t, [[0.0, 0.0], [0.0, 0.0]])
    z.copy_(x * 3)
    w = x * 1
    w.zero_()
    (y.sum() + (z * z).sum() + w.sum()).backward()
    return y, z, w, grad_of(t, x), grad_of(t, v)


def _masked_fill_in_place(t: ModuleType) -> Any:
    x = f32(t, M, requires_grad=True)
    y = x * 1
    y.masked_fill_(boolean(t, [True, False, True]), -1.0)
    (y * y).sum().backward()
    return y, grad_of(t, x)


def _sort_grad(t: ModuleType) -> Any:
    x = f32(t, [[3.0, 1.0, 2.0], [0.0, 5.0, -1.0]], requires_grad=True)
    return _grads(t, lambda a: a.sort(dim=1, descending=True).values, x)


def _topk_grad(t: ModuleType) -> Any:
    x = f32(t, [[3.0, 1.0, 2.0], [0.0, 5.0, -1.0]], requires_grad=True)
    return _grads(t, lambda a: a.topk(2, dim=0).values, x)


def _index_select_grad(t: ModuleType) -> Any:
    x = f32(t, M, requires_grad=True)
    return _grads(t, lambda a: a.index_select(1, i64(t, [2, 0, 2])), x)


def _repeat_grad(t: ModuleType) -> Any:
    x = f32(t, [[1.0, 2.0]], requires_grad=True)
    return _grads(t, lambda a: a.repeat(2, 2, 3), x)


def _norms(t: ModuleType) -> Any:
    x = f32(t, [[3.0, -3.0], [1.0, 0.0]], requires_grad=True)
    out = []
    for kwargs in ({}, {"p": 1}, {"p": 3}, {"p": 0.5}, {"p": float("inf")}, {"p": 2, "dim": 1},
                   {"p": 1, "dim": 0, "keepdim": True}, {"p": "fro"}):
        n = x.norm(**kwargs)
        n.sum().backward()
        out.append((n, grad_of(t, x)))
        x.grad = None
    zero = f32(t, [0.0, 0.0], requires_grad=True)
    zero.norm().backward()
    return out, grad_of(t, zero)


def _split_grad(t: ModuleType) -> Any:
    x = f32(t, [1.0, 2.0, 3.0, 4.0, 5.0], requires_grad=True)
    a, b = x.split([2, 3])
    (a * 2).sum().backward()
    return a, b, grad_of(t, x)


def _format(t: ModuleType) -> Any:
    return f"{f32(t, 1.23456):.3f}", f"{i64(t, 3):d}", f"{f32(t, 2.5)}", f"{f64(t, 0.125):8.4f}|"


def _version_of_ops(t: ModuleType) -> Any:
    a = f32(t, [1.0, 2.0])
    b = a * 2
    a.add_(1)
    a.zero_()
    a.fill_(2)
    a.copy_(b)
    a[0] = 1
    a += 1
    return a._version, b._version


CASES: dict[str, Case] = {
    # comparisons
    "eq_ne_scalar": Case(lambda t: (f32(t, M).eq(0.5), f32(t, M).ne(3), f32(t, M) == 4, f32(t, M) != -2)),
    "lt_le_gt_ge": Case(lambda t: [getattr(f32(t, M), op)(f32(t, [1.0, 0.5, 3.0])) for op in
                                   ("lt", "le", "gt", "ge", "less", "less_equal", "greater", "greater_equal",
                                    "not_equal")]),
    "compare_operators": Case(lambda t: (f32(t, M) < 1, f32(t, M) <= 0.5, f32(t, M) > f32(t, [[0.0], [1.0]]),
                                         f32(t, M) >= 3, 2 < f32(t, M), 1.0 == f32(t, M))),
    "compare_int_float": Case(lambda t: (i64(t, [1, 2]).lt(1.5), i64(t, [1, 2]) == 1.5,
                                         i64(t, [1, 2]).eq(f32(t, [1.0, 3.0])))),
    "compare_bad_shapes": Case(lambda t: f32(t, [1.0, 2.0]).eq(f32(t, [1.0, 2.0, 3.0]))),
    "compare_with_none": Case(lambda t: (f32(t, [1.0]) == None, f32(t, [1.0]) != None)),  # noqa: E711
    "compare_requires_grad": Case(lambda t: f32(t, [1.0, 2.0], requires_grad=True).eq(1)),
    "equal": Case(lambda t: (f32(t, M).equal(f32(t, M)), f32(t, M).equal(f32(t, [1.0])))),
    "logical_ops": Case(lambda t: (boolean(t, [True, False]) & boolean(t, [True, True]),
                                   boolean(t, [True, False]) | boolean(t, [False, False]),
                                   boolean(t, [True, False]) ^ boolean(t, [True, True]), ~boolean(t, [True, False]),
                                   (f32(t, M) > 0) & (f32(t, M) < 3), ~i64(t, [0, 5]))),
    "all_any": Case(lambda t: (f32(t, [[1.0, 0.0], [3.0, 4.0]]).all(), f32(t, [[1.0, 0.0], [3.0, 4.0]]).any(),
                               f32(t, [[1.0, 0.0], [3.0, 4.0]]).all(dim=1, keepdim=True),
                               f32(t, [[1.0, 0.0], [3.0, 4.0]]).any(0), boolean(t, [[True], [False]]).all(-1),
                               f32(t, [[1.0, 0.0], [3.0, 4.0]]).all(dim=(0, 1)))),
    # shapes
    "view_as_reshape_as": Case(lambda t: (f32(t, [1.0, 2.0]).view_as(f32(t, [[0.0], [0.0]])),
                                          f32(t, M).t().reshape_as(f32(t, [0.0] * 6)))),
    "view_as_bad": Case(lambda t: f32(t, M).view_as(f32(t, [0.0] * 5))),
    "size_dim": Case(lambda t: (f32(t, M).size(), f32(t, M).size(-1), f32(t, M).size(0), f32(t, M).dim())),
    "size_bad_dim": Case(lambda t: f32(t, M).size(2)),
    "len_iter": Case(lambda t: (len(f32(t, M)), list(f32(t, M)), [float(v) for v in f32(t, [1.5, 2.5])])),
    "len_0d": Case(lambda t: len(f32(t, 1.0))),
    "iter_0d": Case(lambda t: list(f32(t, 1.0))),
    "split_chunk_unbind": Case(lambda t: (f32(t, [1.0, 2, 3, 4, 5]).split(2), f32(t, [1.0, 2, 3, 4, 5]).split([1, 4]),
                                          f32(t, [1.0, 2, 3, 4, 5]).chunk(2), f32(t, [1.0, 2, 3, 4, 5, 6]).chunk(4),
                                          f32(t, M).split(2, dim=1), f32(t, M).chunk(3, 1), f32(t, M).unbind(1))),
    "split_bad_sizes": Case(lambda t: f32(t, [1.0, 2.0, 3.0]).split([1, 1])),
    "chunk_zero": Case(lambda t: f32(t, [1.0, 2.0, 3.0]).chunk(0)),
    "split_grad": Case(_split_grad),
    "repeat": Case(lambda t: (f32(t, [1.0, 2.0]).repeat(2, 2), f32(t, [1.0, 2.0]).repeat(2), f32(t, 3.0).repeat(2),
                              f32(t, [1.0, 2.0]).repeat((2, 1, 2)))),
    "repeat_too_few": Case(lambda t: f32(t, [[1.0, 2.0]]).repeat(2)),
    "repeat_grad": Case(_repeat_grad),
    # picking and ordering
    "masked_fill": Case(lambda t: (f32(t, M).masked_fill(boolean(t, [True, False, True]), 0.5),
                                   i64(t, [[1, 2], [3, 4]]).masked_fill(boolean(t, [True, False]), 0.5),
                                   f32(t, M).masked_fill(boolean(t, [[True], [False]]), f32(t, 7.0)),
                                   f32(t, [[1.0, 2.0], [3.0, 4.0]]).masked_fill(boolean(t, [[[True, False]]]), 1.0))),
    "masked_fill_int_mask": Case(lambda t: f32(t, M).masked_fill(i64(t, [1, 0, 1]), 0.5)),
    "masked_fill_1d_value": Case(lambda t: f32(t, M).masked_fill(boolean(t, [True, False, True]), f32(t, [1.0]))),
    "masked_fill_grad": Case(_masked_fill_value_grad),
    "gather": Case(lambda t: (i64(t, [[1, 2], [3, 4]]).gather(1, i64(t, [[0, 0], [1, 0]])),
                              i64(t, [[1, 2], [3, 4]]).gather(1, i64(t, [[0], [1]])),
                              i64(t, [[1, 2], [3, 4]]).gather(0, i64(t, [[1, 0, 1]])[:, :2]),
                              f32(t, M).gather(-1, i64(t, [[2, 1, 0, 0], [1, 1, 1, 1]])))),
    "gather_out_of_bounds": Case(lambda t: f32(t, M).gather(1, i64(t, [[3]]))),
    "gather_negative": Case(lambda t: f32(t, M).gather(1, i64(t, [[-1]]))),
    "gather_float_index": Case(lambda t: f32(t, M).gather(1, f32(t, [[0.0]]))),
    "gather_index_too_big": Case(lambda t: f32(t, M).gather(0, i64(t, [[0, 1, 0, 1]]))),
    "gather_grad": Case(_gather),
    "index_select": Case(lambda t: (f32(t, M).index_select(0, i64(t, [1, 1, 0])),
                                    f32(t, M).index_select(1, i64(t, 2)), f32(t, M).index_select(-1, i64(t, [])))),
    "index_select_matrix_index": Case(lambda t: f32(t, M).index_select(0, i64(t, [[1]]))),
    "index_select_negative": Case(lambda t: f32(t, M).index_select(1, i64(t, [-1]))),
    "index_select_grad": Case(_index_select_grad),
    "sort": Case(lambda t: (f32(t, [3.0, 1.0, 3.0, 2.0, 1.0, 3.0]).sort(),
                            f32(t, [3.0, 1.0, 3.0, 2.0, 1.0, 3.0]).sort(descending=True),
                            f32(t, [3.0, 1.0, 3.0, 2.0, 1.0, 3.0]).sort(stable=True, descending=True),
                            f32(t, M).sort(0), f32(t, M).sort(dim=1, descending=True), f32(t, 5.0).sort(),
                            i64(t, [2, 2, 1]).sort())),
    "sort_nan": Case(lambda t: (f32(t, [1.0, float("nan"), 0.0, float("nan")]).sort(),
                                f32(t, [1.0, float("nan"), 0.0, float("nan")]).sort(descending=True))),
    "argsort": Case(lambda t: (f32(t, [3.0, 1.0, 3.0, 2.0]).argsort(), f32(t, M).argsort(dim=0, descending=True))),
    "sort_grad": Case(_sort_grad),
    "topk": Case(lambda t: (f32(t, [3.0, 1.0, 4.0, 2.0, 0.0, 5.0]).topk(2),
                            f32(t, [3.0, 1.0, 4.0, 2.0, 0.0, 5.0]).topk(3, largest=False),
                            f32(t, M).topk(1, dim=0), f32(t, M).topk(2, dim=1, largest=False),
                            f32(t, M).topk(0), f32(t, 5.0).topk(1), f32(t, [1.0, float("nan"), 0.0]).topk(2),
                            f32(t, [3.0, 1.0, 4.0, 2.0]).topk(3, sorted=False).values.sort().values)),
    "topk_k_too_big": Case(lambda t: f32(t, [1.0, 2.0]).topk(3)),
    "topk_grad": Case(_topk_grad),
    # reductions
    "norm": Case(_norms, rtol=1e-5),
    "norm_int": Case(lambda t: i64(t, [1, 2]).norm()),
    "std_var_forms": Case(lambda t: (f32(t, M).std(1), f32(t, M).std(1, False), f32(t, M).std(False),
                                     f32(t, M).var(dim=1, unbiased=False, keepdim=True), f32(t, M).var(0, True),
                                     f32(t, M).std(dim=0, correction=0)), rtol=1e-5),
    "max_min_dim": Case(lambda t: (f32(t, M).max(dim=1), f32(t, M).min(0, keepdim=True), f32(t, M).argmax(1),
                                   f32(t, M).argmin(), f32(t, M).max())),
    # conversions and new tensors
    "int_bool_methods": Case(lambda t: (f32(t, [1.7, -2.5, 0.0]).int(), f32(t, [1.7, -2.5, 0.0]).bool(),
                                        f32(t, [1.7, -2.5, 0.0]).long(), i64(t, [0, 3]).float(),
                                        f32(t, [1.5]).double(), f32(t, [1.7, 300.0]).half(),
                                        f32(t, [1.7, -2.5]).short(), f32(t, [1.7, 2.5]).byte(),
                                        f32(t, [1.7, -2.5]).char())),
    "type_names": Case(lambda t: (f32(t, M).type(), i64(t, [1]).type(), boolean(t, [True]).type(),
                                  f32(t, [1.0]).int().type(), f64(t, [1.0]).type(),
                                  f32(t, M).type("torch.DoubleTensor"),
                                  f32(t, [1.5]).type(_dtype(t, "int64")))),
    "is_methods": Case(lambda t: (f32(t, M).is_floating_point(), i64(t, [1]).is_floating_point(),
                                  f32(t, M).is_contiguous(), f32(t, M).t().is_contiguous(), f32(t, M).nelement(),
                                  f32(t, M).element_size(), f64(t, [1.0]).element_size())),
    "new_factories": Case(lambda t: (f32(t, [1.0, 2.0]).new_zeros(2, 3), f32(t, [1.0]).new_zeros((2,)),
                                     f32(t, [1.0]).new_ones(2, dtype=_dtype(t, "int64")),
                                     f64(t, [1.0]).new_full((2,), 3), f32(t, [1.0, 2.0]).new_tensor([1, 2]),
                                     i64(t, [1]).new_tensor([1.5, 2.5]), f32(t, [1.0]).new_tensor(3),
                                     f32(t, [1.0]).new_tensor([1, 2], dtype=_dtype(t, "float64")),
                                     f32(t, [1.0]).new_empty(2, 3).shape, f32(t, [1.0]).new_ones(2, requires_grad=True),
                                     f32(t, [1.0]).new_zeros(2).requires_grad)),
    "numpy_requires_grad": Case(lambda t: f32(t, [1.0], requires_grad=True).numpy()),
    "numpy_of_result_requires_grad": Case(lambda t: (f32(t, [1.0], requires_grad=True) * 2).numpy()),
    "numpy_detached": Case(lambda t: t.tensor(f32(t, [1.0], requires_grad=True).detach().numpy() * 2)),
    "item_tolist": Case(lambda t: (f32(t, [[2.5]]).item(), i64(t, 3).item(), f32(t, M).tolist(), i64(t, [1]).tolist())),
    "item_many": Case(lambda t: f32(t, [1.0, 2.0]).item()),
    "bool_one": Case(lambda t: (bool(f32(t, [0.0])), bool(f32(t, [[2.0]])), bool(i64(t, 0)),
                                "yes" if f32(t, 3.0) > 2 else "no")),
    "bool_many": Case(lambda t: bool(f32(t, [1.0, 2.0]))),
    "bool_empty": Case(lambda t: bool(f32(t, []))),
    "int_float_index": Case(lambda t: (int(f32(t, [3.7])), int(f32(t, -3.7)), float(i64(t, [[4]])),
                                       [10, 20, 30][i64(t, 1)], [10, 20, 30][i64(t, [2])], list(range(i64(t, 3))))),
    "int_of_many": Case(lambda t: int(f32(t, [3.0, 4.0]))),
    "index_of_float": Case(lambda t: [10, 20][f32(t, 1.0)]),
    "format": Case(_format),
    "format_spec_1d": Case(lambda t: f"{f32(t, [1.5]):.2f}"),
    # in place
    "inplace_arithmetic": Case(lambda t: (f32(t, [1.0, 2.0]).add_(1),
                                          f32(t, [1.0, 2.0]).add_(f32(t, [1.0, 2.0]), alpha=2),
                                          f32(t, [1.0, 2.0]).sub_(3), f32(t, [1.0, 2.0]).mul_(f32(t, [[1.0, 2.0]])[0]),
                                          f32(t, [1.0, 2.0]).div_(4), i64(t, [1, 2]).mul_(3),
                                          f32(t, [1.0, 2.0]).add_(f64(t, [0.1, 0.2])),
                                          i64(t, [1, 2]).add_(i64(t, [5, 5])),
                                          f32(t, [4.0, 9.0]).sqrt_(), f32(t, [4.0, -9.0]).abs_(),
                                          f32(t, [1.0, 5.0]).clamp_(max=2.0), f32(t, [1.0, 5.0]).clip_(2.5, 3.0),
                                          f32(t, [0.0, 1.0]).exp_(), f32(t, [1.0, 4.0]).log_(), i64(t, [4, 9]).pow_(2),
                                          f32(t, [-1.0, 2.0]).relu_(), f32(t, [1.0, -2.0]).neg_())),
    "inplace_int_add_float": Case(lambda t: i64(t, [1, 2]).add_(1.5)),
    "inplace_int_div": Case(lambda t: i64(t, [1, 2]).div_(2)),
    "inplace_int_sqrt": Case(lambda t: i64(t, [4, 9]).sqrt_()),
    "inplace_bool_neg": Case(lambda t: boolean(t, [True]).neg_()),
    "inplace_broadcast_grows": Case(lambda t: f32(t, [1.0, 2.0]).add_(f32(t, [[1.0, 2.0], [3.0, 4.0]]))),
    "inplace_clamp_none": Case(lambda t: f32(t, [1.0]).clamp_()),
    "inplace_on_leaf": Case(lambda t: f32(t, [1.0, 2.0], requires_grad=True).add_(1)),
    "inplace_on_view_of_leaf": Case(lambda t: f32(t, [1.0, 2.0], requires_grad=True)[0].mul_(2)),
    "iadd_on_leaf": Case(lambda t: f32(t, [1.0], requires_grad=True).__iadd__(1)),
    "inplace_on_nonleaf": Case(_inplace_on_nonleaf),
    "inplace_into_buffer": Case(_inplace_into_buffer),
    "iadd_nonleaf": Case(_iadd_nonleaf),
    "setitem_in_graph": Case(_setitem_in_graph),
    "setitem_values": Case(lambda t: [(lambda a: (a.__setitem__(key, value), a)[1])(f32(t, M)) for key, value in
                                      ((0, 9.0), ((1, 2), -1.0), (slice(None, None, 2), f32(t, [7.0, 8.0, 9.0])),
                                       (boolean(t, [[True, False, True], [False, False, True]]), 0.0))]),
    "exp_in_place_grad": Case(_exp_twice),
    "clamp_relu_sqrt_in_place_grads": Case(_clamp_and_friends),
    "fill_copy_zero_in_graph": Case(_fill_copy_zero),
    "fill_1d_value": Case(lambda t: f32(t, [1.0, 2.0]).fill_(f32(t, [3.0]))),
    "copy_cast_broadcast": Case(lambda t: (i64(t, [1, 2]).copy_(f32(t, [3.0, 4.5])),
                                           f32(t, [[1.0, 2.0], [3.0, 4.0]]).copy_(f32(t, [5.0, 6.0])))),
    "copy_bad_shape": Case(lambda t: f32(t, [1.0, 2.0]).copy_(f32(t, [3.0, 4.0, 5.0]))),
    "masked_fill_in_place": Case(_masked_fill_in_place),
    "masked_fill_in_place_grows": Case(lambda t: f32(t, [1.0, 2.0]).masked_fill_(boolean(t, [[True], [False]]), 0.0)),
    "inplace_under_no_grad": Case(_in_place_under_no_grad),
    "no_grad_in_place_keeps_history": Case(_no_grad_in_place_keeps_history),
    # version counters
    "version_counts": Case(_version_of_ops),
    "version_shared_by_views": Case(_view_changes_base_version),
    "saved_output_changed_raises": Case(_saved_output_changed),
    "saved_input_changed_raises": Case(_saved_input_changed),
    "unsaved_input_changed": Case(_unsaved_input_changed),
    "saved_view_then_base_changed_raises": Case(_view_saved_then_base_changed),
}
