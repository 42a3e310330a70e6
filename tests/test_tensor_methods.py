"""Tensor methods and in-place ops beyond the torch_api cases: version-counter semantics, views,
error messages, nothing half-updated, and gradcheck of every new differentiable op in float64."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import optrs
from optrs.autograd import gradcheck

RNG = np.random.default_rng(11)


def leaf(*shape: int) -> optrs.Tensor:
    return optrs.Tensor(RNG.standard_normal(shape), requires_grad=True)


def distinct(*shape: int) -> optrs.Tensor:
    """float64 values far apart (sort and topk have no ties to flip under gradcheck's steps)."""
    values = RNG.permutation(int(np.prod(shape))).astype(np.float64).reshape(shape) * 0.5
    return optrs.Tensor(values, requires_grad=True)


def off_kinks() -> optrs.Tensor:
    """float64 values away from clamp's and relu's kinks at -0.5, 0 and 0.7."""
    return optrs.Tensor(np.array([-1.0, -0.3, 0.2, 0.45, 0.9, 1.3]), requires_grad=True)


GRADCHECKED: dict[str, tuple[Callable[..., optrs.Tensor], Callable[[], list[Any]]]] = {
    "gather": (lambda x: x.gather(1, optrs.tensor([[0, 0, 2], [1, 2, 1]])), lambda: [leaf(2, 3)]),
    "index_select": (lambda x: x.index_select(0, optrs.tensor([1, 1, 0])), lambda: [leaf(2, 3)]),
    "sort": (lambda x: x.sort(dim=0, descending=True).values, lambda: [distinct(3, 4)]),
    "topk": (lambda x: x.topk(2, dim=1, largest=False).values, lambda: [distinct(3, 4)]),
    "masked_fill": (lambda x, v: x.masked_fill(optrs.tensor([True, False, True]), v),
                    lambda: [leaf(2, 3), optrs.Tensor(np.array(0.5), requires_grad=True)]),
    "repeat": (lambda x: x.repeat(2, 1, 3), lambda: [leaf(2, 3)]),
    "norm2": (lambda x: x.norm(), lambda: [leaf(2, 3)]),
    "norm1_dim": (lambda x: x.norm(p=1, dim=1), lambda: [leaf(2, 3)]),
    "norm3_keepdim": (lambda x: x.norm(p=3, dim=0, keepdim=True), lambda: [leaf(2, 3)]),
    "norm_inf": (lambda x: x.norm(p=float("inf"), dim=1), lambda: [distinct(2, 3)]),
    "split": (lambda x: x.split([1, 2], dim=1)[1] * 2, lambda: [leaf(2, 3)]),
    "chunk": (lambda x: x.chunk(2)[1], lambda: [leaf(5)]),
    "std_unbiased_false": (lambda x: x.std(1, False), lambda: [leaf(2, 3)]),
    "add_": (lambda x, y: (x * 1).add_(y, alpha=3), lambda: [leaf(2, 3), leaf(3)]),
    "sub_mul_div_": (lambda x, y: (x * 1).sub_(y).mul_(y).div_(y * y + 1), lambda: [leaf(2, 3), leaf(2, 3)]),
    # One op each: an op that saves its output (sqrt_, exp_, sigmoid_, tanh_, relu_) refuses a
    # later in-place change of it, as in torch.
    "pow_": (lambda x: (x * 1).pow_(3), lambda: [leaf(4)]),
    "exp_": (lambda x: (x * 1).exp_(), lambda: [leaf(4)]),
    "sqrt_": (lambda x: (x * x + 1).sqrt_(), lambda: [leaf(4)]),
    "sigmoid_": (lambda x: (x * 1).sigmoid_(), lambda: [leaf(4)]),
    "tanh_": (lambda x: (x * 1).tanh_(), lambda: [leaf(4)]),
    "neg_abs_log_": (lambda x: (x * 1).neg_().abs_().log_(), lambda: [leaf(5)]),
    "clamp_relu_": (lambda x: (x * 1).clamp_(-0.5, 0.7).relu_(), lambda: [off_kinks()]),
    "masked_fill_": (lambda x, v: (x * 1).masked_fill_(optrs.tensor([[True], [False]]), v),
                     lambda: [leaf(2, 3), optrs.Tensor(np.array(2.0), requires_grad=True)]),
    "fill_": (lambda x, v: (x * 1).fill_(v) * x, lambda: [leaf(3), optrs.Tensor(np.array(2.0), requires_grad=True)]),
    "copy_": (lambda x, s: (x * 1).copy_(s) * x, lambda: [leaf(2, 3), leaf(3)]),
    "setitem": (lambda x, v: _set(x * 1, (slice(None), 1), v) * x, lambda: [leaf(2, 3), leaf(2)]),
    "setitem_mask": (lambda x, v: _set(x * 1, x.detach() > 0, v),
                     lambda: [leaf(2, 3), optrs.Tensor(np.array(3.0), requires_grad=True)]),
    "into_buffer": (lambda x: _buffer_add(x), lambda: [leaf(3)]),
    "iadd_imul": (lambda x, y: _iops(x * 1, y), lambda: [leaf(3), leaf(3)]),
}


def _set(t: optrs.Tensor, key: Any, value: Any) -> optrs.Tensor:
    t[key] = value
    return t


def _buffer_add(x: optrs.Tensor) -> optrs.Tensor:
    buf = optrs.Tensor(np.zeros(3))
    buf.add_(x)
    buf.mul_(x)
    return buf


def _iops(y: optrs.Tensor, z: optrs.Tensor) -> optrs.Tensor:
    y += z
    y *= z
    y -= 1
    y /= 3
    return y


@pytest.mark.parametrize("name", sorted(GRADCHECKED))
def test_gradcheck(name: str) -> None:
    fn, inputs = GRADCHECKED[name]
    assert gradcheck(fn, inputs())


# -- version counters ---------------------------------------------------------------------------

def test_every_in_place_op_bumps_the_version_once() -> None:
    ops: dict[str, Callable[[optrs.Tensor], Any]] = {
        "add_": lambda t: t.add_(1), "sub_": lambda t: t.sub_(1), "mul_": lambda t: t.mul_(2),
        "div_": lambda t: t.div_(2), "pow_": lambda t: t.pow_(2), "neg_": lambda t: t.neg_(),
        "exp_": lambda t: t.exp_(), "log_": lambda t: t.abs_(), "sqrt_": lambda t: t.sqrt_(),
        "relu_": lambda t: t.relu_(), "sigmoid_": lambda t: t.sigmoid_(), "tanh_": lambda t: t.tanh_(),
        "clamp_": lambda t: t.clamp_(0, 1), "masked_fill_": lambda t: t.masked_fill_(optrs.tensor([True, False]), 0),
        "fill_": lambda t: t.fill_(3), "zero_": lambda t: t.zero_(), "copy_": lambda t: t.copy_(np.ones(2)),
        "setitem": lambda t: t.__setitem__(0, 5), "iadd": lambda t: t.__iadd__(1),
    }
    for name, op in ops.items():
        t = optrs.tensor([1.0, 2.0])
        view = t[1:]
        op(t)
        assert (t._version, view._version) == (1, 1), name
        view.add_(1)
        assert t._version == 2, name


def test_views_share_the_counter_and_know_their_base() -> None:
    a = optrs.tensor(np.arange(6.0))
    views = [a.view(2, 3), a.reshape(3, 2), a[1:], a[2], a.unsqueeze(0), a.expand(2, 6), a.view(2, 3).T,
             a.view(2, 3).transpose(0, 1), a.flatten(), a.view(2, 3).permute(1, 0), a.split(3)[1], a.view_as(a)]
    for v in views:
        assert v._base is a
    copies = [a[[0, 1]], a[a.detach() > 2], a.clone(), a * 1, a.view(2, 3).T.reshape(6)]
    a.add_(1)
    assert all(v._version == 1 for v in views)
    assert all(c._version == 0 and c._base is None for c in copies)
    views[-1].mul_(2)
    assert a._version == 2 and a.detach()._version == 2 and a.detach()._base is None


def test_saved_tensor_changed_in_place_raises_torchs_message() -> None:
    x = optrs.Tensor(np.array([1.0, 2.0, 3.0], np.float32), requires_grad=True)
    y = x.exp()
    y.add_(1)
    with pytest.raises(RuntimeError, match=r"modified by an inplace operation: \[torch.FloatTensor \[3\]\], which is "
                       r"output 0 of Exp, is at version 1; expected version 0 instead"):
        y.sum().backward()


def test_changing_a_saved_leaf_under_no_grad_raises_and_optimizer_steps_do_not() -> None:
    w = optrs.Parameter(np.ones((2, 2), np.float32))
    x = optrs.Tensor(np.ones((3, 2), np.float32))
    loss = (x @ w).sum()
    with optrs.no_grad():
        w.mul_(2)
    with pytest.raises(optrs.AutogradError, match="is at version 1; expected version 0"):
        loss.backward()
    opt = optrs.optim.SGD([w], lr=0.1)
    for _ in range(2):  # the optimizer writes the arrays from Rust: no version change, no error
        opt.zero_grad()
        (x @ w).sum().backward()
        opt.step()
    assert w._version == 1


def test_view_of_saved_tensor_changed_raises() -> None:
    x = leaf(4)
    y = x * 1
    z = (y * x).sum()  # Mul saves y
    with optrs.no_grad():
        y[1:].mul_(3)
    with pytest.raises(optrs.AutogradError, match="inplace operation"):
        z.backward()


def test_in_place_on_leaf_and_views_of_leaves_raise_in_grad_mode_only() -> None:
    w = leaf(3)
    for op in (lambda: w.add_(1), lambda: w.zero_(), lambda: w.__setitem__(0, 1.0), lambda: w.copy_(np.ones(3))):
        with pytest.raises(optrs.AutogradError, match="a leaf Variable that requires grad is being used in an "
                                                      "in-place operation.*no_grad"):
            op()
    with pytest.raises(optrs.AutogradError, match="a view of a leaf Variable"):
        w[1:].mul_(2)
    with optrs.no_grad():
        w.zero_()
        w[1:].add_(1)
    assert np.array_equal(w.data, [0, 1, 1]) and w.is_leaf and w.grad_fn is None and w._version == 2


def test_in_place_on_a_view_in_the_graph_says_optrs_cannot() -> None:
    y = leaf(4) * 2
    with pytest.raises(optrs.AutogradError, match="optrs cannot record an in-place change of a view"):
        y[1:].mul_(2)
    buf = optrs.Tensor(np.zeros(4))
    with pytest.raises(optrs.AutogradError, match="optrs cannot record"):
        buf[1:].add_(leaf(3))
    assert np.array_equal(buf.data, np.zeros(4)) and buf._version == 0


def test_a_view_made_before_its_base_got_a_new_history_refuses_to_be_used() -> None:
    x = leaf(3)
    y = x * 2
    v = y[0]
    y.mul_(3)  # torch regenerates v's history from y's new one; optrs says so instead of a wrong gradient
    with pytest.raises(optrs.AutogradError, match="take the view again after the in-place op"):
        v * 1
    w = y[0] * 1  # a view taken after the in-place op is fine
    w.backward()
    assert np.allclose(x.grad, [6, 0, 0])


def test_in_place_records_graph_and_keeps_the_array() -> None:
    x = leaf(3)
    y = x * 2
    array = y.data
    y.add_(1)
    assert y.data is array and not y.is_leaf and y.grad_fn is not None and y._version == 1
    y.sum().backward()
    assert np.allclose(x.grad, 2)


def test_failed_in_place_ops_change_nothing() -> None:
    t = optrs.Tensor(np.array([1.0, 2.0], np.float32))
    i = optrs.Tensor(np.array([1, 2]))
    y = leaf(2) * 1
    before = y.data.copy()
    failures: list[Callable[[], Any]] = [
        lambda: t.add_(np.ones((2, 2))), lambda: i.add_(1.5), lambda: i.div_(2), lambda: i.sqrt_(),
        lambda: t.copy_(np.ones(3)), lambda: t.masked_fill_(np.array([1, 0]), 0), lambda: t.fill_(optrs.tensor([1.0])),
        lambda: t.clamp_(), lambda: y.add_(leaf(2, 2)), lambda: y.mul_(np.ones(3)), lambda: t.__setitem__(5, 1.0),
        lambda: t.masked_fill_(np.array([[True], [False]]), 0), lambda: optrs.tensor([True]).neg_(),
    ]
    for fail in failures:
        with pytest.raises((optrs.OptrsError, IndexError)):
            fail()
    assert np.array_equal(t.data, [1, 2]) and np.array_equal(i.data, [1, 2]) and np.array_equal(y.data, before)
    assert t._version == i._version == y._version == 0


def test_in_place_errors_are_optrs_errors_with_torchs_words() -> None:
    with pytest.raises(optrs.ParamDTypeError, match="result type float64 can't be cast to the desired output type "
                                                    "int64"):
        optrs.tensor([1, 2]).add_(leaf(2) * 1.5)
    with pytest.raises(optrs.InvalidParamError, match=r"output with shape \[2\] doesn't match the broadcast shape"):
        (leaf(2) * 1).add_(np.ones((3, 2)))


def test_float32_in_place_keeps_float32_and_accepts_float64_operands() -> None:
    t = optrs.Tensor(np.ones(3, np.float32))
    t.mul_(2.5).add_(np.ones(3))
    t += optrs.tensor([0.5, 0.5, 0.5])
    assert t.dtype == np.float32 and np.array_equal(t.data, [4, 4, 4])
    assert (t * 2.0).dtype == np.float32


# -- conversions and dunders --------------------------------------------------------------------

def test_scalar_conversions_raise_torchs_errors() -> None:
    many = optrs.tensor([1.0, 2.0])
    with pytest.raises(RuntimeError, match="Boolean value of Tensor with more than one value is ambiguous"):
        bool(many)
    with pytest.raises(ValueError, match="Boolean value of Tensor with no values is ambiguous"):
        bool(optrs.tensor([]))
    with pytest.raises(optrs.ScalarConversionError, match="only one element tensors"):
        float(many)
    with pytest.raises(optrs.ScalarConversionError, match="a Tensor with 2 elements cannot be converted to Scalar"):
        many.item()
    with pytest.raises(TypeError, match="only integer tensors of a single element can be converted to an index"):
        [1, 2][optrs.tensor(1.0)]
    assert np.arange(5)[optrs.tensor([1, 3])].tolist() == [1, 3]  # NumPy still indexes with index tensors


def test_numpy_refuses_tensors_that_require_grad() -> None:
    x = leaf(2)
    with pytest.raises(optrs.AutogradError, match=r"Can't call numpy\(\) on Tensor that requires grad. Use "
                                                  r"tensor.detach\(\).numpy\(\) instead."):
        x.numpy()
    assert x.numpy(force=True) is x.data and x.detach().numpy() is x.data


def test_format() -> None:
    loss = optrs.tensor(np.float32(0.123456))
    assert f"{loss:.4f}" == "0.1235" and f"{loss}" == format(loss.item(), "")
    many = optrs.tensor([1.0, 2.0])
    assert f"{many}" == repr(many)
    with pytest.raises(TypeError):
        f"{many:.2f}"


def test_comparison_methods_raise_for_non_numbers() -> None:
    t = optrs.tensor([1.0])
    assert (t == None) is False and (t != "x") is True  # noqa: E711 - torch's answer for foreign types
    with pytest.raises(TypeError, match="eq"):
        t.eq(None)  # type: ignore[arg-type]
    with pytest.raises(optrs.InvalidParamError, match="do not broadcast"):
        optrs.tensor([1.0, 2.0]).lt(optrs.tensor([1.0, 2.0, 3.0]))


def test_numpy_ufuncs_still_refused() -> None:
    assert optrs.Tensor.__array_ufunc__ is None
    with pytest.raises(TypeError):
        np.exp(optrs.tensor([1.0]))  # type: ignore[call-overload]


def test_new_factories_follow_self() -> None:
    t = optrs.Tensor(np.zeros(2, np.float32))
    assert t.new_zeros(2, 3).dtype == np.float32 and t.new_ones((1,), dtype=np.int64).dtype == np.int64
    assert t.new_full((2,), 7).tolist() == [7, 7] and t.new_empty(4).shape == (4,)
    made = t.new_tensor([1, 2], requires_grad=True)
    assert made.dtype == np.float32 and made.requires_grad and made.is_leaf
    with pytest.raises(optrs.InvalidParamError, match="CPU only"):
        t.new_zeros(2, device="cuda")
