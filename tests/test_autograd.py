"""optrs.Tensor's autograd: every op's backward against finite differences (gradcheck, float64),
the engine's semantics as torch's (accumulation, no_grad, retain_graph, hooks, deep graphs), and
Parameter as the Tensor that optimizers step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import optrs
from optrs.autograd import Function, gradcheck

RNG = np.random.default_rng(7)


def leaf(*shape: int, low: float | None = None) -> optrs.Tensor:
    data = RNG.standard_normal(shape)
    if low is not None:
        data = np.abs(data) + low
    return optrs.Tensor(data, requires_grad=True)


# -- every op through gradcheck -----------------------------------------------------------------

UNARY: dict[str, tuple[Callable[[optrs.Tensor], optrs.Tensor], float | None]] = {
    "neg": (lambda x: -x, None),
    "exp": (lambda x: x.exp(), None),
    "log": (lambda x: x.log(), 0.5),
    "sqrt": (lambda x: x.sqrt(), 0.5),
    "abs": (lambda x: abs(x), 0.1),
    "relu": (lambda x: x.relu(), None),
    "sigmoid": (lambda x: x.sigmoid(), None),
    "tanh": (lambda x: x.tanh(), None),
    "clamp": (lambda x: x.clamp(-0.5, 0.7), None),
    "pow_scalar": (lambda x: x**3, None),
    "pow_fractional": (lambda x: x**1.5, 0.5),
    "rpow": (lambda x: 2.0**x, None),
    "softmax": (lambda x: x.softmax(-1), None),
    "log_softmax": (lambda x: x.log_softmax(0), None),
    "var": (lambda x: x.var(1), None),
    "std_biased": (lambda x: x.std(correction=0), None),
    "clone": (lambda x: x.clone() * 2, None),
    "to_float32_and_back": (lambda x: x.float().double(), None),
}


@pytest.mark.parametrize("name", UNARY)
def test_unary_ops_gradcheck(name: str) -> None:
    op, low = UNARY[name]
    x = leaf(3, 4, low=low)
    if name == "relu":  # keep away from the kink, where finite differences straddle it
        x.data[np.abs(x.data) < 0.05] = 0.3
    if name == "clamp":
        x.data[np.abs(np.abs(x.data - 0.1) - 0.6) < 0.05] = 0.0
    if name == "to_float32_and_back":
        assert gradcheck(op, [x], atol=1e-5, rtol=1e-2, eps=1e-3)
        return
    assert gradcheck(op, [x])


BINARY: dict[str, Callable[[Any, Any], optrs.Tensor]] = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "pow": lambda a, b: a**b,
}


@pytest.mark.parametrize("name", BINARY)
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 4), (3, 1)), ((), (2, 3))])
def test_binary_ops_broadcast_gradcheck(name: str, shapes: tuple[tuple[int, ...], tuple[int, ...]]) -> None:
    positive = name in ("div", "pow")
    a, b = leaf(*shapes[0], low=0.5 if positive else None), leaf(*shapes[1], low=0.5 if positive else None)
    assert gradcheck(BINARY[name], [a, b])


@pytest.mark.parametrize("name", BINARY)
def test_binary_ops_with_scalars_and_reversed(name: str) -> None:
    op = BINARY[name]
    x = leaf(2, 3, low=0.5)
    assert gradcheck(lambda t: op(t, 1.7), [x])
    assert gradcheck(lambda t: op(1.7, t), [x])
    assert gradcheck(lambda t: op(np.full(3, 1.3), t), [x])  # an ndarray on the left defers to Tensor
    y = op(np.full(3, 1.3), x)
    assert isinstance(y, optrs.Tensor) and y.requires_grad


@pytest.mark.parametrize("shapes", [((3, 4), (4, 2)), ((4,), (4, 2)), ((3, 4), (4,)), ((4,), (4,)),
                                    ((2, 3, 4), (4, 5)), ((2, 1, 3, 4), (5, 4, 2))])
def test_matmul_gradcheck(shapes: tuple[tuple[int, ...], tuple[int, ...]]) -> None:
    a, b = leaf(*shapes[0]), leaf(*shapes[1])
    assert gradcheck(lambda x, y: x @ y, [a, b])
    assert np.allclose((a @ b).data, a.data @ b.data)


SHAPE_OPS: dict[str, Callable[[optrs.Tensor], Any]] = {
    "reshape": lambda x: x.reshape(4, 6),
    "reshape_tuple": lambda x: x.reshape((-1, 3)),
    "view": lambda x: x.view(2, 12),
    "flatten": lambda x: x.flatten(),
    "flatten_1": lambda x: x.flatten(1),
    "flatten_0_1": lambda x: x.flatten(0, 1),
    "transpose": lambda x: x.transpose(0, 2),
    "permute": lambda x: x.permute(2, 0, 1),
    "T": lambda x: x.T,
    "unsqueeze_squeeze": lambda x: x.unsqueeze(1).squeeze(1) * x,
    "expand": lambda x: x[:, :1].expand(2, 3, 4),
    "index_int": lambda x: x[1],
    "index_slices": lambda x: x[:, 1:3, ::2],
    "index_negative_step_ellipsis": lambda x: x[..., ::-1][None],
    "index_int_array": lambda x: x[np.array([1, 0, 1])],
    "index_int_array_pair": lambda x: x[np.array([0, 1, 1]), :, np.array([3, 2, 3])],
    "index_tensor": lambda x: x[optrs.Tensor(np.array([0, 0]))],
    "index_bool_mask": lambda x: x[x.data > 0],
    "sum_all": lambda x: x.sum(),
    "sum_dim": lambda x: x.sum(1),
    "sum_dims_keepdim": lambda x: x.sum((0, 2), keepdim=True),
    "mean_all": lambda x: x.mean(),
    "mean_dim_keepdim": lambda x: x.mean(-1, keepdim=True),
    "max_all": lambda x: x.max(),
    "max_dim": lambda x: x.max(1).values,
    "max_dim_keepdim": lambda x: x.max(dim=2, keepdim=True)[0],
    "min_dim": lambda x: x.min(0).values,
    "cat": lambda x: optrs.cat([x, x * 2], dim=1),
    "stack": lambda x: optrs.stack([x, x.exp()], dim=-1),
}


@pytest.mark.parametrize("name", SHAPE_OPS)
def test_shape_index_and_reduction_ops_gradcheck(name: str) -> None:
    x = leaf(2, 3, 4)
    assert gradcheck(SHAPE_OPS[name], [x])


def test_forward_values_match_numpy() -> None:
    x = leaf(2, 3, 4)
    d = x.data
    assert np.array_equal(x.flatten(1).data, d.reshape(2, 12))
    assert np.array_equal(x.permute(2, 0, 1).data, d.transpose(2, 0, 1))
    assert np.array_equal(x.T.data, d.T)
    assert np.array_equal(x[np.array([1, 0]), 2].data, d[np.array([1, 0]), 2])
    assert np.allclose(x.sum(1, keepdim=True).data, d.sum(1, keepdims=True))
    values, indices = x.max(dim=1)
    assert np.array_equal(values.data, d.max(1)) and np.array_equal(indices.data, d.argmax(1))
    assert indices.dtype == np.int64 and not indices.requires_grad
    assert np.array_equal(x.argmax(dim=1).data, d.argmax(1))
    assert x.max().item() == d.max()


def test_max_ties_share_the_gradient_as_torch() -> None:
    x = optrs.Tensor(np.array([1.0, 3.0, 3.0, 2.0]), requires_grad=True)
    x.max().backward()
    assert np.array_equal(x.grad, [0, 0.5, 0.5, 0])
    y = optrs.Tensor(np.array([[3.0, 3.0]]), requires_grad=True)
    y.max(dim=1).values.sum().backward()
    assert np.array_equal(y.grad, [[1, 0]])  # max(dim) sends it to the index it returns


def test_repeated_integer_indices_accumulate() -> None:
    x = optrs.Tensor(np.zeros(3), requires_grad=True)
    x[np.array([0, 2, 0, 0])].sum().backward()
    assert np.array_equal(x.grad, [3, 0, 1])


# -- engine semantics ---------------------------------------------------------------------------

def test_scalar_backward_and_accumulation() -> None:
    x = optrs.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (x * x).sum().backward()
    assert np.array_equal(x.grad, [2, 4])
    (x * 3).sum().backward()
    assert np.array_equal(x.grad, [5, 7])  # accumulates, as torch


def test_non_scalar_backward_needs_a_gradient() -> None:
    x = leaf(3)
    y = x * 2
    with pytest.raises(optrs.AutogradError, match="scalar"):
        y.backward()
    y.backward(np.array([1.0, 0.0, 2.0]))
    assert np.array_equal(x.grad, [2, 0, 4])
    z = x * 3
    z.backward(grad=optrs.Tensor(np.ones(3)))
    assert np.array_equal(x.grad, [5, 3, 7])
    with pytest.raises(optrs.InvalidParamError, match="shape"):
        (x * 1).backward(np.ones(4))


def test_backward_twice_needs_retain_graph() -> None:
    x = leaf(3)
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.copy()
    y.backward()
    assert np.allclose(x.grad, 2 * first)
    with pytest.raises(optrs.AutogradError, match="second time"):
        y.backward()


def test_no_grad_enable_grad_and_set_grad_enabled() -> None:
    x = leaf(2)
    with optrs.no_grad():
        y = x * 2
        with optrs.enable_grad():
            z = x * 2
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad
    with optrs.set_grad_enabled(False):
        assert not (x + 1).requires_grad
    assert (x + 1).requires_grad

    @optrs.no_grad()
    def evaluate(t: optrs.Tensor) -> optrs.Tensor:
        return t * 3

    assert not evaluate(x).requires_grad
    with pytest.raises(optrs.AutogradError, match="does not require grad"):
        y.sum().backward()


def test_detach_item_shape_dtype_numpy() -> None:
    data = np.arange(6, dtype=np.float32).reshape(2, 3)
    x = optrs.Tensor(data, requires_grad=True)
    assert x.data is data and x.detach().numpy() is data  # wrapped, not copied
    assert x.shape == (2, 3) and x.dtype == np.float32 and x.ndim == 2 and x.numel() == 6
    d = (x * 2).detach()
    assert d.is_leaf and not d.requires_grad
    assert x.sum().item() == 15.0 and isinstance(x.sum().item(), float)
    assert optrs.tensor([1.0, 2.0]).dtype == np.float32  # the default dtype, as torch's
    copied = optrs.tensor(data)
    assert copied.data is not data


def test_float32_stays_float32() -> None:
    x = optrs.Tensor(RNG.standard_normal((4, 3)).astype(np.float32), requires_grad=True)
    w = optrs.Tensor(RNG.standard_normal((3, 2)).astype(np.float32), requires_grad=True)
    y = ((x @ w) * 2.0 + 1).exp().mean() / 3 - 0.5
    assert y.dtype == np.float32
    y.backward()
    assert x.grad.dtype == np.float32 and w.grad.dtype == np.float32


def test_deep_graph_has_no_recursion_limit() -> None:
    x = optrs.Tensor(np.array(1.0), requires_grad=True)
    y = x
    for _ in range(20000):
        y = y * 1.0001
    y.backward()
    assert np.isclose(x.grad, 1.0001**20000)


def test_diamond_graph_sums_both_paths() -> None:
    x = leaf(3)
    a = x * 2
    y = (a * a + a.exp()).sum()
    assert gradcheck(lambda t: ((t * 2) * (t * 2) + (t * 2).exp()).sum(), [x])
    y.backward()
    assert np.allclose(x.grad, 8 * x.data + 2 * np.exp(2 * x.data))


def test_requires_grad_rules() -> None:
    with pytest.raises(optrs.ParamDTypeError, match="floating-point"):
        optrs.Tensor(np.arange(3), requires_grad=True)
    x = leaf(2)
    with pytest.raises(optrs.AutogradError, match="leaf"):
        (x * 2).requires_grad = False
    with pytest.raises(optrs.AutogradError, match="no_grad"):
        x.zero_()
    with optrs.no_grad():
        x.zero_()
    assert np.array_equal(x.data, [0, 0])


def test_hooks_and_retain_grad() -> None:
    x = leaf(3)
    seen: list[np.ndarray] = []
    x.register_hook(lambda g: seen.append(g.copy()))
    y = x * 2
    y.retain_grad()
    handle = y.register_hook(lambda g: g * 10)
    y.sum().backward()
    assert np.array_equal(y.grad, np.ones(3))
    assert np.array_equal(x.grad, np.full(3, 20.0)) and np.array_equal(seen[0], np.full(3, 20.0))
    handle.remove()


def test_autograd_grad_leaves_dot_grad_alone() -> None:
    x, w = leaf(3), leaf(3)
    (gx,) = optrs.autograd.grad((x * w).sum(), [x])
    assert np.allclose(gx, w.data) and x.grad is None and w.grad is None
    with pytest.raises(optrs.AutogradError, match="allow_unused"):
        optrs.autograd.grad((x * 2).sum(), [x, w])


def test_custom_function_and_gradcheck_catches_wrong_backward() -> None:
    class Cube(Function):
        def forward(self, x: np.ndarray) -> np.ndarray:
            self.save_for_backward(x)
            return x**3

        def backward(self, grad: np.ndarray) -> np.ndarray:
            (x,) = self.saved_tensors
            return 3 * x * x * grad

    class WrongCube(Cube):
        def backward(self, grad: np.ndarray) -> np.ndarray:
            (x,) = self.saved_tensors
            return 2.9 * x * x * grad

    x = leaf(4, low=0.5)
    assert gradcheck(Cube.apply, [x])
    with pytest.raises(optrs.GradcheckError, match="Jacobian mismatch for output 0 with respect to input 0"):
        gradcheck(WrongCube.apply, [x])
    assert not gradcheck(WrongCube.apply, [x], raise_exception=False)


def test_gradcheck_input_checks() -> None:
    with pytest.raises(optrs.ParamDTypeError, match="float64"):
        gradcheck(lambda t: t * 2, [optrs.Tensor(np.ones(2, np.float32), requires_grad=True)])
    with pytest.raises(optrs.InvalidParamError, match="requires grad"):
        gradcheck(lambda t: t * 2, [optrs.Tensor(np.ones(2))])


def test_bad_operands_name_the_shapes() -> None:
    with pytest.raises(optrs.InvalidParamError, match=r"\(2, 3\) and \(4,\)"):
        leaf(2, 3) + leaf(4)
    with pytest.raises(optrs.InvalidParamError, match="cannot be multiplied"):
        leaf(2, 3) @ leaf(4, 2)
    with pytest.raises(optrs.InvalidParamError, match="reshape"):
        leaf(2, 3).reshape(4, 2)
    with pytest.raises(IndexError, match="Dimension out of range"):
        leaf(2, 3).sum(2)
    with pytest.raises(optrs.InvalidParamError, match="view"):
        leaf(2, 3).T.view(6)
    with pytest.raises(ValueError, match="ordering"):
        leaf(2, 3).permute(0, 0)


# -- Parameter and the optimizers ---------------------------------------------------------------

def test_parameter_is_a_tensor_that_optimizers_step() -> None:
    w = optrs.Parameter(np.array([1.0, -2.0]))
    assert isinstance(w, optrs.Tensor) and w.requires_grad and w.is_leaf
    assert "Parameter containing" in repr(w)
    opt = optrs.optim.SGD([w], lr=0.1)
    loss = (w * w).sum()
    loss.backward()
    opt.step()
    assert np.allclose(w.data, [0.8, -1.6])
    opt.zero_grad()
    assert w.grad is None


def test_adam_on_tensors_matches_adam_on_arrays() -> None:
    data = RNG.standard_normal(5)
    w = optrs.Parameter(data.copy())
    plain = data.copy()
    opt_t, opt_a = optrs.optim.Adam([w], lr=0.05), optrs.optim.Adam([plain], lr=0.05)
    for _ in range(5):
        opt_t.zero_grad()
        loss = ((w - 1.0) ** 2).sum()
        loss.backward()
        opt_t.step()
        opt_a.step([2 * (plain - 1.0)])
    assert np.allclose(w.data, plain, rtol=1e-12, atol=0)
