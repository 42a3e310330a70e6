"""In-place ops (``add_``, ``mul_``, ``clamp_``, ``x[i] = v``, ``x += y``, ...) as torch runs them.

Each bumps the version counter that a tensor shares with its views; an op that saved a tensor
for backward recorded its version, and backward raises if it moved (`Function._check_versions`).
In grad mode an in-place op on a tensor in the graph (or with an operand that requires grad) is
recorded: the op runs out of place on a copy of the old values, the result is written into the
tensor's array (so views and aliases see it), and the tensor takes the op's node as its history.
As in torch, a leaf that requires grad may change in place only under ``no_grad``. Unlike torch,
a view of a tensor in the graph may not change in place in grad mode (torch rewrites its base's
history; optrs raises and says so).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..errors import AutogradError, InvalidParamError, ParamDTypeError
from . import grad_mode

# A cycle: tensor.py imports this module first, so Tensor is read at call time, and the ops (which
# import Tensor) are imported in the functions that apply them.
from . import tensor as _t
from .tensor_methods import mask_operands

if TYPE_CHECKING:
    from .tensor import Tensor

def _requires_grad(value: Any) -> bool:
    return isinstance(value, _t.Tensor) and value.requires_grad


def _records(t: Tensor, op: str, operands: tuple[Any, ...]) -> bool:
    """Whether the in-place op goes into the graph; raises where torch refuses it."""
    if not grad_mode._flag.enabled:
        return False
    if t._node is None and t._requires_grad:
        raise AutogradError(f"{op}: a leaf Variable that requires grad is being used in an in-place operation. "
                            "Change it under `with optrs.no_grad():` (as optimizers and nn.init do)")
    others = any(_requires_grad(v) for v in operands)
    view = t._view
    if view is None:
        return t.requires_grad or others
    base = view[0]
    if base._node is None and base._requires_grad:
        raise AutogradError(f"{op}: a view of a leaf Variable that requires grad is being used in an in-place "
                            "operation. Change it under `with optrs.no_grad():`")
    if t.requires_grad or base.requires_grad or others:
        raise AutogradError(f"{op}: optrs cannot record an in-place change of a view of a tensor in the autograd "
                            "graph (torch rewrites the base's history): change the base tensor itself, or compute "
                            "out of place (v = v * 2)")
    return False


def _fits(t: Tensor, result: NDArray[Any], op: str) -> None:
    if result.shape != t.shape:
        raise InvalidParamError(f"{op}: output with shape {list(t.shape)} doesn't match the broadcast shape "
                                f"{list(result.shape)}; an in-place op cannot change the tensor's shape")
    if not np.can_cast(result.dtype, t.dtype, "same_kind"):
        raise ParamDTypeError(f"{op}: result type {result.dtype} can't be cast to the desired output type "
                              f"{t.dtype}; use the out-of-place op (x = x + y) or convert the tensor first")


def _run(t: Tensor, op: str, operands: tuple[Any, ...], compute: Callable[[Tensor], Tensor],
         fast: Callable[[NDArray[Any]], Any] | None = None) -> Tensor:
    """Runs an in-place op: ``compute`` is its out-of-place form applied to the tensor (one op),
    ``fast`` (optional) writes the result straight into the array when nothing is recorded."""
    if _records(t, op, operands):
        old = _t.Tensor._wrap(np.array(t._data, copy=True), t._node, t._output_nr)
        result = compute(old)
        _fits(t, result._data, op)
        np.copyto(t._data, result._data, casting="unsafe")
        counter = t._version_counter()
        counter.version += 1
        counter.rebased += 1
        node = result._node
        t._node, t._output_nr = node, result._output_nr
        if node is not None and result._counter is not None:
            # The op saved its output, which is now this tensor: a later in-place change must raise.
            node._saved_versions = tuple((counter, counter.version, *saved[2:]) if saved[0] is result._counter
                                         else saved for saved in node._saved_versions)
        return t
    if fast is not None:
        try:
            fast(t._data)  # NumPy checks casting and broadcasting before it writes
        except TypeError as e:
            raise ParamDTypeError(f"{op}: {e}; use the out-of-place op or convert the tensor first") from None
        except ValueError as e:
            raise InvalidParamError(f"{op}: {e}; an in-place op cannot change the tensor's shape") from None
    else:
        result = compute(t)
        _fits(t, result._data, op)
        np.copyto(t._data, result._data, casting="unsafe")
    t._version_counter().version += 1
    return t


def _array(value: Any) -> Any:
    return value._data if isinstance(value, _t.Tensor) else value


def _scaled(other: Any, alpha: Any) -> Any:
    return other if alpha == 1 else other * alpha


def add_(self: Tensor, other: Tensor | ArrayLike, *, alpha: Any = 1) -> Tensor:
    other = _scaled(other, alpha)
    return _run(self, "add_", (other,), lambda t: t + other,
                lambda a: np.add(a, _array(other), out=a, casting="same_kind"))

def sub_(self: Tensor, other: Tensor | ArrayLike, *, alpha: Any = 1) -> Tensor:
    other = _scaled(other, alpha)
    return _run(self, "sub_", (other,), lambda t: t - other,
                lambda a: np.subtract(a, _array(other), out=a, casting="same_kind"))

def mul_(self: Tensor, other: Tensor | ArrayLike) -> Tensor:
    return _run(self, "mul_", (other,), lambda t: t * other,
                lambda a: np.multiply(a, _array(other), out=a, casting="same_kind"))

def div_(self: Tensor, other: Tensor | ArrayLike, *, rounding_mode: str | None = None) -> Tensor:
    if rounding_mode is not None:
        raise InvalidParamError(f"div_: rounding_mode={rounding_mode!r} is not supported by optrs; compute "
                                "(x / y).floor() or .trunc() on the data")
    return _run(self, "div_", (other,), lambda t: t / other,
                lambda a: np.true_divide(a, _array(other), out=a, casting="same_kind"))

def pow_(self: Tensor, exponent: Tensor | ArrayLike) -> Tensor:
    return _run(self, "pow_", (exponent,), lambda t: t**exponent)

def neg_(self: Tensor) -> Tensor:
    if self.dtype == np.bool_:
        raise ParamDTypeError("neg_: negation of a bool tensor is not supported; to invert a mask use ~mask")
    return _run(self, "neg_", (), lambda t: -t)

def exp_(self: Tensor) -> Tensor:
    return _run(self, "exp_", (), lambda t: t.exp())

def log_(self: Tensor) -> Tensor:
    return _run(self, "log_", (), lambda t: t.log())

def sqrt_(self: Tensor) -> Tensor:
    return _run(self, "sqrt_", (), lambda t: t.sqrt())

def abs_(self: Tensor) -> Tensor:
    return _run(self, "abs_", (), lambda t: t.abs())

def relu_(self: Tensor) -> Tensor:
    return _run(self, "relu_", (), lambda t: t.relu())

def sigmoid_(self: Tensor) -> Tensor:
    return _run(self, "sigmoid_", (), lambda t: t.sigmoid())

def tanh_(self: Tensor) -> Tensor:
    return _run(self, "tanh_", (), lambda t: t.tanh())

def clamp_(self: Tensor, min: builtins.float | None = None, max: builtins.float | None = None) -> Tensor:
    if min is None and max is None:
        raise InvalidParamError("clamp_: at least one of 'min' or 'max' must not be None")
    return _run(self, "clamp_", (), lambda t: t.clamp(min, max))

clip_ = clamp_

def masked_fill_(self: Tensor, mask: Tensor | ArrayLike, value: Tensor | builtins.float) -> Tensor:
    """``value`` where ``mask`` (bool, broadcast to this tensor's shape) is true."""
    from .indexing import MaskedFill

    mask_array = mask_operands(self, "masked_fill_", mask, value)
    return _run(self, "masked_fill_", (value,), lambda t: MaskedFill.apply(t, mask_array, value))

def fill_(self: Tensor, value: Tensor | builtins.float) -> Tensor:
    """Every element set to ``value`` (a number or a 0-d tensor)."""
    from .indexing import Fill

    if isinstance(value, _t.Tensor) and value.ndim:
        raise InvalidParamError(f"fill_ only supports 0-dimension value tensor but got tensor with {value.ndim} "
                                "dimensions.")
    return _run(self, "fill_", (value,), lambda t: Fill.apply(t, value),
                lambda a: np.copyto(a, _array(value), casting="unsafe"))

def zero_(self: Tensor) -> Tensor:
    return self.fill_(0)

def copy_(self: Tensor, src: Tensor | ArrayLike, non_blocking: bool = False) -> Tensor:
    """``src``'s values (broadcast to this tensor's shape, converted to its dtype)."""
    from .indexing import Copy

    shape = np.shape(_array(src))
    try:
        fits = np.broadcast_shapes(shape, self.shape) == self.shape
    except ValueError:
        fits = False
    if not fits:
        raise InvalidParamError(f"copy_: a source of shape {list(shape)} does not broadcast to the tensor's "
                                f"shape {list(self.shape)}")
    return _run(self, "copy_", (src,), lambda t: Copy.apply(t, src),
                lambda a: np.copyto(a, _array(src), casting="unsafe"))

def setitem(self: Tensor, key: Any, value: Tensor | ArrayLike) -> None:
    from .indexing import IndexPut

    index = _t.index_key(key)

    def write(a: NDArray[Any]) -> None:
        a[index] = _array(value)

    _run(self, "item assignment", (value,), lambda t: IndexPut.apply(t, index, value), write)

# ``x += y`` changes x in place, as in torch (a leaf that requires grad refuses it in grad mode).
def iadd(self: Tensor, other: Tensor | ArrayLike) -> Tensor:
    return self.add_(other)

def isub(self: Tensor, other: Tensor | ArrayLike) -> Tensor:
    return self.sub_(other)

def imul(self: Tensor, other: Tensor | ArrayLike) -> Tensor:
    return self.mul_(other)

def itruediv(self: Tensor, other: Tensor | ArrayLike) -> Tensor:
    return self.div_(other)

def ipow(self: Tensor, other: Tensor | ArrayLike) -> Tensor:
    return self.pow_(other)


__all__: list[str] = []  # Tensor binds the functions above as its methods
