"""`Tensor`: a NumPy array with torch's reverse-mode autograd.

``.data`` is the ndarray (shared, not copied, when a Tensor wraps one), ``.grad`` an ndarray of the
same shape and dtype, or None. Ops follow NumPy's dtype rules, Python scalars included (NEP 50:
``float32_tensor * 2.0`` stays float32). Results of ops on tensors that require grad record the
graph (unless inside ``optrs.no_grad()``); ``backward()`` fills the leaves' ``.grad``.
"""

from __future__ import annotations

import builtins
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, overload

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from .._plumbing.params import VersionedData
from ..errors import AutogradError, InvalidParamError, NotSupportedError, ParamDTypeError, ScalarConversionError
from . import devices as _devices
from . import dtypes as _dtypes
from . import in_place as _in_place
from . import tensor_methods as _methods

if TYPE_CHECKING:
    from .function import Function

Dims = int | Sequence[int] | None


class ValuesIndices(NamedTuple):
    """``max(dim)``/``min(dim)``'s result, as torch's: the values and their int64 indices."""

    values: Tensor
    indices: Tensor


class RemovableHandle:
    """Returned by ``register_hook``: ``remove()`` takes the hook out (also on leaving a ``with``)."""

    def __init__(self, hooks: list[Any], entry: Any) -> None:
        self._hooks, self._entry = hooks, entry

    def remove(self) -> None:
        if any(h is self._entry for h in self._hooks):
            self._hooks.remove(self._entry)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()


def _shape_args(shape: tuple[Any, ...]) -> tuple[int, ...]:
    """``reshape(2, 3)`` and ``reshape((2, 3))`` alike."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(int(s) for s in shape[0])
    return tuple(int(s) for s in shape)


def normalize_dim(dim: int, ndim: int) -> int:
    """``dim`` in ``[0, ndim)``, or an IndexError in torch's words."""
    if not -max(ndim, 1) <= dim < max(ndim, 1):
        raise IndexError(f"Dimension out of range (expected to be in range of [{-max(ndim, 1)}, "
                         f"{max(ndim, 1) - 1}], but got {dim})")
    return dim % max(ndim, 1)


def normalize_dims(dim: Dims, ndim: int) -> tuple[int, ...] | None:
    if dim is None:
        return None
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    return tuple(sorted(normalize_dim(int(d), ndim) for d in dims))


def index_key(key: Any) -> Any:
    """An indexing key with Tensors replaced by their arrays."""
    if isinstance(key, Tensor):
        return key._data
    if isinstance(key, tuple):
        return tuple(k._data if isinstance(k, Tensor) else k for k in key)
    return key


class VersionCounter:
    """torch's version counter, shared by a tensor and its views: ``version`` counts the in-place
    changes of their data; ``rebased`` those recorded in the graph, each of which gives the
    changed tensor a new history that views made before it do not see."""

    __slots__ = ("version", "rebased")

    def __init__(self) -> None:
        self.version = 0
        self.rebased = 0


class Tensor(VersionedData):
    """An ndarray with autograd; see the module docstring.

    ``Tensor(array)`` wraps ``array`` without copying (``optrs.tensor(data)`` copies). It is a
    leaf; ``requires_grad=True`` makes backward fill its ``.grad``.
    """

    __slots__ = ("_data", "grad", "_requires_grad", "_node", "_output_nr", "_hooks", "_counter", "_view",
                 "__weakref__")

    # NumPy defers binary operators to Tensor (ndarray * tensor is a tensor) and refuses ufuncs,
    # which would silently drop the graph: call the tensor methods, or ufuncs on .data.
    __array_ufunc__ = None
    __hash__ = object.__hash__

    def __init__(self, data: Tensor | ArrayLike, requires_grad: bool = False) -> None:
        self._data: NDArray[Any] = data._data if isinstance(data, Tensor) else np.asarray(data)
        self.grad: NDArray[Any] | None = None
        self._requires_grad = False
        self._node: Function | None = None
        self._output_nr = 0
        self._hooks: list[Callable[[NDArray[Any]], NDArray[Any] | None]] | None = None
        self._counter: VersionCounter | None = None
        # (base, base's counter.rebased when this view was made) for the results of view ops
        self._view: tuple[Tensor, int] | None = None
        if requires_grad:
            self.requires_grad = True

    @classmethod
    def _wrap(cls, data: NDArray[Any], node: Function | None = None, output_nr: int = 0) -> Tensor:
        """An op's result (skips ``__init__``'s checks: ``data`` is an ndarray already)."""
        t = object.__new__(Tensor)
        t._data, t.grad, t._requires_grad, t._node, t._output_nr, t._hooks = data, None, False, node, output_nr, None
        t._counter = t._view = None
        return t

    def _version_counter(self) -> VersionCounter:
        """The counter (made on first use: most tensors are never changed in place or saved)."""
        counter = self._counter
        if counter is None:
            counter = self._counter = VersionCounter()
        return counter

    @property
    def _version(self) -> int:
        """How many in-place ops changed this tensor's data (or that of a view sharing it)."""
        return 0 if self._counter is None else self._counter.version

    @property
    def _base(self) -> Tensor | None:
        """The tensor this one is a view of (made by view, reshape, indexing, transpose, expand...)."""
        return None if self._view is None else self._view[0]

    # -- data and graph -------------------------------------------------------------------------

    @property
    def data(self) -> NDArray[Any]:
        """The ndarray. Replacing it (``t.data = array``) changes no graph, as in torch."""
        return self._data

    @data.setter
    def data(self, value: Tensor | ArrayLike) -> None:
        self._data = value._data if isinstance(value, Tensor) else np.asarray(value)
        VersionedData.data_replaced()  # optimizers re-read their params only then

    @property
    def requires_grad(self) -> bool:
        return self._requires_grad or self._node is not None

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        if self._node is not None:
            if value:
                return
            raise AutogradError("requires_grad can only be changed on leaf tensors; use y = x.detach() for a "
                                "tensor that shares x's data outside the graph")
        if value and self._data.dtype.kind not in "fc":
            raise ParamDTypeError(f"only floating-point tensors can require gradients, this one is "
                                  f"{self._data.dtype}; convert it first, e.g. t.float()")
        self._requires_grad = bool(value)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        self.requires_grad = requires_grad
        return self

    @property
    def is_leaf(self) -> bool:
        """True for tensors made by the user (and op results that do not require grad)."""
        return self._node is None

    @property
    def grad_fn(self) -> Function | None:
        return self._node

    def detach(self) -> Tensor:
        """A leaf sharing this tensor's data (and version counter), outside the graph."""
        out = Tensor._wrap(self._data)
        out._counter = self._version_counter()
        return out

    def retain_grad(self) -> None:
        """Makes backward fill ``.grad`` of this non-leaf tensor too (leaves always get one)."""
        if self._node is None:
            return
        ref = weakref.ref(self)

        def keep(grad: NDArray[Any]) -> None:
            owner = ref()
            if owner is not None:
                owner.grad = np.array(grad, order="C", copy=True) if owner.grad is None else owner.grad + grad

        self.register_hook(keep)

    def register_hook(self, hook: Callable[[NDArray[Any]], NDArray[Any] | None]) -> RemovableHandle:
        """Calls ``hook(grad)`` with this tensor's gradient in each backward pass; a returned array
        replaces the gradient. Returns a handle whose ``remove()`` undoes it."""
        if not self.requires_grad:
            raise AutogradError("cannot register a hook on a tensor that does not require grad")
        if self._node is None:
            if self._hooks is None:
                self._hooks = []
            self._hooks.append(hook)
            return RemovableHandle(self._hooks, hook)
        if self._node._hooks is None:
            self._node._hooks = []
        entry = (self._output_nr, hook)
        self._node._hooks.append(entry)
        return RemovableHandle(self._node._hooks, entry)

    def backward(self, gradient: Tensor | ArrayLike | None = None, retain_graph: bool | None = None,
                 create_graph: bool = False, inputs: Sequence[Tensor] | None = None, *,
                 grad: Tensor | ArrayLike | None = None) -> None:
        """Accumulates d(self)/d(leaf) into each leaf's ``.grad``.

        ``gradient`` (``grad=`` is accepted too) is d(loss)/d(self), needed unless this tensor has
        one element. The graph's saved buffers are freed unless ``retain_graph=True``.
        """
        from .engine import backward

        if grad is not None:
            if gradient is not None:
                raise TypeError("pass the gradient once, as gradient= or grad=")
            gradient = grad
        backward(self, None if gradient is None else [gradient], retain_graph, create_graph, inputs)

    # -- shape and conversions ------------------------------------------------------------------

    @property
    def shape(self) -> tuple[int, ...]:
        return self._data.shape

    @property
    def dtype(self) -> np.dtype[Any]:
        return self._data.dtype

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def dim(self) -> int:
        return self._data.ndim

    def size(self, dim: int | None = None) -> Any:
        """The shape (torch's ``size()``), or one dimension of it; ``numel()`` counts elements."""
        return self._data.shape if dim is None else self._data.shape[normalize_dim(dim, self.ndim)]

    def numel(self) -> int:
        return int(self._data.size)

    def numpy(self, *, force: bool = False) -> NDArray[Any]:
        """The ndarray itself (shared, as torch's ``numpy()``). As in torch, a tensor that requires
        grad refuses (its array would leave the graph unseen) unless ``force=True``."""
        if self.requires_grad and not force:
            raise AutogradError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")
        return self._data

    def item(self) -> Any:
        """The one element as a Python number."""
        if self._data.size != 1:
            raise ScalarConversionError(f"a Tensor with {self._data.size} elements cannot be converted to Scalar")
        return self._data.item()

    def tolist(self) -> Any:
        return self._data.tolist()

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> NDArray[Any]:
        if dtype is None and not copy:
            return self._data
        return np.array(self._data, dtype=dtype, copy=True)

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self._data)

    def __iter__(self) -> Iterator[Tensor]:
        """The slices along the first dimension (views, as torch's ``unbind``)."""
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self._data)))

    def __bool__(self) -> bool:
        if self._data.size != 1:
            count = "no values" if self._data.size == 0 else "more than one value"
            raise ScalarConversionError(f"Boolean value of Tensor with {count} is ambiguous")
        return bool(self._data.reshape(-1)[0])

    def _scalar(self) -> Any:
        if self._data.size != 1:
            raise ScalarConversionError("only one element tensors can be converted to Python scalars")
        return self._data.reshape(-1)[0].item()

    def __float__(self) -> float:
        return float(self._scalar())

    def __int__(self) -> int:
        return int(self._scalar())

    def __index__(self) -> int:
        """As an index (``lst[t]``, ``range(t)``): integer tensors of one element only, as torch."""
        if self._data.dtype.kind not in "biu" or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self._data.reshape(-1)[0])

    def __format__(self, format_spec: str) -> str:
        """``f"{loss:.4f}"``: a 0-d tensor formats as its number; others as ``object`` does (their
        repr with an empty spec, a TypeError otherwise), as torch."""
        if self._data.ndim == 0:
            return format(self._data.item(), format_spec)
        return object.__format__(self, format_spec)

    def __repr__(self) -> str:
        body = np.array2string(self._data, separator=", ", prefix="tensor(")
        extras = [] if self._data.dtype in (np.float32, np.int64, np.bool_) else [f"dtype={self._data.dtype}"]
        if self._node is not None:
            extras.append(f"grad_fn={self._node!r}")
        elif self._requires_grad:
            extras.append("requires_grad=True")
        return f"tensor({', '.join([body, *extras])})"

    # -- devices and dtypes (torch's conversions; optrs computes on the CPU) ----------------------

    @property
    def device(self) -> _devices.device:
        """Always ``device(type='cpu')``: optrs computes on the CPU."""
        return _devices.CPU

    @property
    def is_cuda(self) -> builtins.bool:
        return False

    @property
    def is_cpu(self) -> builtins.bool:
        return True

    @property
    def is_mps(self) -> builtins.bool:
        return False

    @property
    def is_meta(self) -> builtins.bool:
        return False

    @property
    def is_sparse(self) -> builtins.bool:
        return False

    @property
    def is_quantized(self) -> builtins.bool:
        return False

    @property
    def layout(self) -> _devices.Layout:
        return _devices.strided

    def is_floating_point(self) -> builtins.bool:
        """True for float16/32/64 and bfloat16 tensors."""
        return _dtypes.is_floating(self._data.dtype)

    def is_complex(self) -> builtins.bool:
        return self._data.dtype.kind == "c"

    def to(self, *args: Any, **kwargs: Any) -> Tensor:
        """torch's ``to``: ``to(dtype)``, ``to(device)``, ``to(device, dtype)``, ``to(other)``
        (its dtype), each with ``non_blocking`` (ignored) and ``copy``, positionally or by
        keyword. A device other than the CPU raises ``optrs.DeviceError``. Differentiable; the
        tensor itself when nothing changes (unless ``copy=True``)."""
        target = _devices.parse_to("to", args, kwargs)
        if target.dtype is not None and target.dtype != self._data.dtype:
            return _ops.Cast.apply(self, target.dtype)
        return _ops.Clone.apply(self) if target.copy else self

    def cpu(self, memory_format: Any = None) -> Tensor:
        """The tensor itself (it is on the CPU)."""
        return self

    def cuda(self, device: Any = None, non_blocking: builtins.bool = False, memory_format: Any = None) -> Tensor:
        """Raises ``optrs.DeviceError``: optrs has no CUDA device."""
        raise _devices.not_available("cuda", "Tensor.cuda()")

    def pin_memory(self, device: Any = None) -> Tensor:
        raise _devices.not_available("cuda", "Tensor.pin_memory() (pinned memory is for copies to a GPU)")

    def is_pinned(self, device: Any = None) -> builtins.bool:
        return False

    def to_dense(self, dtype: DTypeLike | None = None, *, masked_grad: builtins.bool | None = None) -> Tensor:
        """The tensor itself (optrs's tensors are dense), in ``dtype`` if given."""
        return self if dtype is None else self.to(dtype)

    def to_sparse(self, *args: Any, **kwargs: Any) -> Tensor:
        """Raises ``optrs.NotSupportedError``: optrs has dense tensors only."""
        raise NotSupportedError("Tensor.to_sparse(): optrs has dense tensors only (no sparse layouts); keep the "
                                "dense tensor")

    to_sparse_coo = to_sparse_csr = to_sparse_csc = to_sparse

    def type(self, dtype: Any = None, non_blocking: builtins.bool = False) -> Any:
        """Without ``dtype``, torch's type name (``"torch.FloatTensor"``, the strings scripts
        compare with); with one (a dtype or such a name), ``to(dtype)``."""
        if dtype is None:
            return _dtypes.type_name(self._data.dtype)
        return self.to(_dtypes.from_type_name(dtype) if isinstance(dtype, str) else dtype)

    def type_as(self, other: Tensor) -> Tensor:
        """This tensor in ``other``'s dtype (and device, the CPU)."""
        return self.to(other.dtype)

    def float(self) -> Tensor:
        return self.to(np.float32)

    def double(self) -> Tensor:
        return self.to(np.float64)

    def half(self) -> Tensor:
        return self.to(np.float16)

    def bfloat16(self) -> Tensor:
        return self.to(_dtypes.bfloat16())

    def long(self) -> Tensor:
        return self.to(np.int64)

    def clone(self) -> Tensor:
        """A copy of the data; gradients flow through it."""
        return _ops.Clone.apply(self)

    def contiguous(self) -> Tensor:
        return self if self._data.flags.c_contiguous else _ops.Clone.apply(self)

    # -- arithmetic -----------------------------------------------------------------------------

    def __add__(self, other: Tensor | ArrayLike) -> Tensor:
        return _ops.Add.apply(self, other)

    def __radd__(self, other: Tensor | ArrayLike) -> Tensor:
        return _ops.Add.apply(other, self)

    def __sub__(self, other: Tensor | ArrayLike) -> Tensor:
        return _ops.Sub.apply(self, other)

    def __rsub__(self, other: Tensor | ArrayLike) -> Tensor:
        return _ops.Sub.apply(other, self)

    def __mul__(self, other: Tensor | ArrayLike) -> Tensor:
        return _ops.Mul.apply(self, other)

    def __rmul__(self, other: Tensor | ArrayLike) -> Tensor:
        return _ops.Mul.apply(other, self)

    def __truediv__(self, other: Tensor | ArrayLike) -> Tensor:
        return _ops.Div.apply(self, other)

    def __rtruediv__(self, other: Tensor | ArrayLike) -> Tensor:
        return _ops.Div.apply(other, self)

    def __pow__(self, exponent: Tensor | ArrayLike) -> Tensor:
        return _ops.Pow.apply(self, exponent)

    def __rpow__(self, base: Tensor | ArrayLike) -> Tensor:
        return _ops.Pow.apply(base, self)

    def __matmul__(self, other: Tensor | ArrayLike) -> Tensor:
        return _ops.MatMul.apply(self, other)

    def __rmatmul__(self, other: Tensor | ArrayLike) -> Tensor:
        return _ops.MatMul.apply(other, self)

    def __neg__(self) -> Tensor:
        return _ops.Neg.apply(self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return _ops.Abs.apply(self)

    add, sub, mul, div, pow, matmul, neg, abs = __add__, __sub__, __mul__, __truediv__, __pow__, __matmul__, \
        __neg__, __abs__

    # Comparisons give bool tensors outside the graph, as torch's; the methods (eq, lt, ...) are
    # in tensor_methods.
    def _compare(self, ufunc: Any, other: object) -> Any:
        if other is None or isinstance(other, str):
            return NotImplemented
        operand: Any = other._data if isinstance(other, Tensor) else other
        try:
            return Tensor._wrap(np.asarray(ufunc(self._data, operand)))
        except TypeError:
            return NotImplemented
        except ValueError as e:
            raise InvalidParamError(f"{ufunc.__name__}: shapes {self.shape} and {np.shape(operand)} do not "
                                    "broadcast together (trailing dimensions must be equal or 1)") from e

    def __eq__(self, other: object) -> Any:
        return self._compare(np.equal, other)

    def __ne__(self, other: object) -> Any:
        return self._compare(np.not_equal, other)

    def __lt__(self, other: object) -> Any:
        return self._compare(np.less, other)

    def __le__(self, other: object) -> Any:
        return self._compare(np.less_equal, other)

    def __gt__(self, other: object) -> Any:
        return self._compare(np.greater, other)

    def __ge__(self, other: object) -> Any:
        return self._compare(np.greater_equal, other)

    # -- elementwise functions ------------------------------------------------------------------

    def exp(self) -> Tensor:
        return _ops.Exp.apply(self)

    def log(self) -> Tensor:
        return _ops.Log.apply(self)

    def sqrt(self) -> Tensor:
        return _ops.Sqrt.apply(self)

    def sigmoid(self) -> Tensor:
        return _ops.Sigmoid.apply(self)

    def tanh(self) -> Tensor:
        return _ops.Tanh.apply(self)

    def relu(self) -> Tensor:
        return _nn_ops.ReLU.apply(self)

    def clamp(self, min: builtins.float | None = None, max: builtins.float | None = None) -> Tensor:
        """Limits values to ``[min, max]``; the gradient passes where the input is inside."""
        if min is None and max is None:
            raise ValueError("clamp needs min or max (or both)")
        return _ops.Clamp.apply(self, min, max)

    clip = clamp

    def softmax(self, dim: int) -> Tensor:
        return _nn_ops.Softmax.apply(self, normalize_dim(dim, self.ndim))

    def log_softmax(self, dim: int) -> Tensor:
        return _nn_ops.LogSoftmax.apply(self, normalize_dim(dim, self.ndim))

    # -- reductions -----------------------------------------------------------------------------

    def sum(self, dim: Dims = None, keepdim: bool = False) -> Tensor:
        return _ops.Sum.apply(self, normalize_dims(dim, self.ndim), keepdim)

    def mean(self, dim: Dims = None, keepdim: bool = False) -> Tensor:
        return _ops.Mean.apply(self, normalize_dims(dim, self.ndim), keepdim)

    def var(self, dim: Dims | bool = None, unbiased: bool | None = None, keepdim: bool = False, *,
            correction: int | None = None) -> Tensor:
        """Variance with Bessel's ``correction`` (1: unbiased, as torch's default; 0: biased);
        torch's older ``var(unbiased)`` and ``var(dim, unbiased, keepdim)`` forms too."""
        if isinstance(dim, bool):  # var(False): the unbiased flag, as torch reads it
            dim, unbiased = None, dim
        if unbiased is not None and correction is not None:
            raise TypeError("pass unbiased or correction, not both")
        if correction is None:
            correction = 0 if unbiased is False else 1
        dims = normalize_dims(dim, self.ndim)
        count = self.numel() if dims is None else int(np.prod([self.shape[d] for d in dims]))
        centered = self - self.mean(dims, keepdim=True)
        return (centered * centered).sum(dims, keepdim) / max(count - correction, 0)

    def std(self, dim: Dims | bool = None, unbiased: bool | None = None, keepdim: bool = False, *,
            correction: int | None = None) -> Tensor:
        """The square root of ``var`` (same arguments)."""
        return self.var(dim, unbiased, keepdim, correction=correction).sqrt()

    @overload
    def max(self, dim: None = None, keepdim: bool = False) -> Tensor: ...

    @overload
    def max(self, dim: int, keepdim: bool = False) -> ValuesIndices: ...

    def max(self, dim: int | None = None, keepdim: bool = False) -> Tensor | ValuesIndices:
        """The largest value (ties share the gradient, as torch), or with ``dim`` the largest
        along it and where it is: ``(values, indices)``."""
        return self._extreme(dim, keepdim, True)

    @overload
    def min(self, dim: None = None, keepdim: bool = False) -> Tensor: ...

    @overload
    def min(self, dim: int, keepdim: bool = False) -> ValuesIndices: ...

    def min(self, dim: int | None = None, keepdim: bool = False) -> Tensor | ValuesIndices:
        """As ``max``, for the smallest."""
        return self._extreme(dim, keepdim, False)

    def _extreme(self, dim: int | None, keepdim: bool, largest: bool) -> Tensor | ValuesIndices:
        if dim is None:
            return _ops.Extreme.apply(self, largest)
        values, indices = _ops.ExtremeAlong.apply_multi(self, normalize_dim(dim, self.ndim), keepdim, largest)
        return ValuesIndices(values, indices)

    def argmax(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        axis = None if dim is None else normalize_dim(dim, self.ndim)
        return Tensor._wrap(np.asarray(np.argmax(self._data, axis=axis, keepdims=keepdim)))

    def argmin(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        axis = None if dim is None else normalize_dim(dim, self.ndim)
        return Tensor._wrap(np.asarray(np.argmin(self._data, axis=axis, keepdims=keepdim)))

    # -- shape ----------------------------------------------------------------------------------

    def reshape(self, *shape: Any) -> Tensor:
        """The data in a new shape (a view when NumPy can make one); one size may be -1."""
        return _ops.Reshape.apply(self, _shape_args(shape), False)

    def view(self, *shape: Any) -> Tensor:
        """As ``reshape``, but always a view: an error where the data would have to be copied."""
        return _ops.Reshape.apply(self, _shape_args(shape), True)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        if self.ndim == 0:
            return self.reshape(1)
        start, end = normalize_dim(start_dim, self.ndim), normalize_dim(end_dim, self.ndim)
        if start > end:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
        shape = self.shape
        return self.reshape(shape[:start] + (-1 if 0 not in shape else 0,) + shape[end + 1:])

    def unflatten(self, dim: int, sizes: Sequence[int]) -> Tensor:
        d = normalize_dim(dim, self.ndim)
        return self.reshape(self.shape[:d] + tuple(sizes) + self.shape[d + 1:])

    def permute(self, *dims: Any) -> Tensor:
        order = tuple(normalize_dim(d, self.ndim) for d in _shape_args(dims))
        if sorted(order) != list(range(self.ndim)):
            raise ValueError(f"permute: {order} is not an ordering of the {self.ndim} dimensions")
        return _ops.Permute.apply(self, order)

    def transpose(self, dim0: int, dim1: int) -> Tensor:
        order = list(range(self.ndim))
        a, b = normalize_dim(dim0, self.ndim), normalize_dim(dim1, self.ndim)
        order[a], order[b] = order[b], order[a]
        return _ops.Permute.apply(self, tuple(order))

    def t(self) -> Tensor:
        if self.ndim > 2:
            raise ValueError(f"t() expects a tensor with at most 2 dimensions, this one has shape {self.shape}; "
                             "use transpose(dim0, dim1)")
        return self if self.ndim < 2 else self.transpose(0, 1)

    @property
    def T(self) -> Tensor:
        """All dimensions reversed (NumPy's ``.T``)."""
        return _ops.Permute.apply(self, tuple(reversed(range(self.ndim))))

    @property
    def mT(self) -> Tensor:
        """The last two dimensions swapped (a batch of matrices transposed)."""
        return self.transpose(-2, -1)

    def unsqueeze(self, dim: int) -> Tensor:
        d = normalize_dim(dim, self.ndim + 1)
        return self.reshape(self.shape[:d] + (1,) + self.shape[d:])

    def squeeze(self, dim: Dims = None) -> Tensor:
        dims = normalize_dims(dim, self.ndim)
        keep = [s for i, s in enumerate(self.shape) if s != 1 or (dims is not None and i not in dims)]
        return self if len(keep) == self.ndim else self.reshape(tuple(keep))

    def expand(self, *sizes: Any) -> Tensor:
        """A broadcast view to ``sizes`` (-1 keeps a dimension); the gradient is summed back."""
        target = _shape_args(sizes)
        lead = len(target) - self.ndim
        if lead < 0:
            raise ValueError(f"expand: the {len(target)} sizes {target} are fewer than the tensor's dimensions "
                             f"{self.shape}")
        shape = tuple(self.shape[i - lead] if s == -1 and i >= lead else s for i, s in enumerate(target))
        return _ops.Expand.apply(self, shape)

    def expand_as(self, other: Tensor) -> Tensor:
        return self.expand(other.shape)

    def __getitem__(self, key: Any) -> Tensor:
        return _ops.Index.apply(self, index_key(key))

    # -- in place (in_place.py: version counting, recording in the graph) -----------------------

    add_, sub_, mul_, div_, pow_, neg_ = (_in_place.add_, _in_place.sub_, _in_place.mul_, _in_place.div_,
                                          _in_place.pow_, _in_place.neg_)
    exp_, log_, sqrt_, abs_, relu_, sigmoid_, tanh_ = (_in_place.exp_, _in_place.log_, _in_place.sqrt_,
                                                      _in_place.abs_, _in_place.relu_, _in_place.sigmoid_,
                                                      _in_place.tanh_)
    clamp_ = clip_ = _in_place.clamp_
    masked_fill_, fill_, zero_, copy_ = _in_place.masked_fill_, _in_place.fill_, _in_place.zero_, _in_place.copy_
    __setitem__ = _in_place.setitem
    __iadd__, __isub__, __imul__, __itruediv__, __ipow__ = (_in_place.iadd, _in_place.isub, _in_place.imul,
                                                            _in_place.itruediv, _in_place.ipow)

    # -- torch's other methods (tensor_methods.py) ----------------------------------------------

    eq = _methods.eq
    ne = not_equal = _methods.ne
    lt = less = _methods.lt
    le = less_equal = _methods.le
    gt = greater = _methods.gt
    ge = greater_equal = _methods.ge
    equal = _methods.equal
    __and__ = __rand__ = _methods.bitwise_and
    __or__ = __ror__ = _methods.bitwise_or
    __xor__ = __rxor__ = _methods.bitwise_xor
    __invert__ = bitwise_not = _methods.invert
    logical_not = _methods.logical_not
    view_as, reshape_as = _methods.view_as, _methods.reshape_as
    split, chunk, unbind, repeat = _methods.split, _methods.chunk, _methods.unbind, _methods.repeat
    masked_fill, gather, index_select = _methods.masked_fill, _methods.gather, _methods.index_select
    sort, argsort, topk, norm = _methods.sort, _methods.argsort, _methods.topk, _methods.norm
    short, byte, char = _methods.short, _methods.byte, _methods.char
    is_contiguous = _methods.is_contiguous
    nelement, element_size = _methods.nelement, _methods.element_size
    new_tensor, new_full, new_zeros = _methods.new_tensor, _methods.new_full, _methods.new_zeros
    new_ones, new_empty = _methods.new_ones, _methods.new_empty
    # Last: from here on these names are methods in the class body, not the builtins.
    all, any = _methods.all_true, _methods.any_true
    int, bool = _methods.as_int32, _methods.as_bool


def tensor(data: Tensor | ArrayLike, dtype: DTypeLike | None = None, *, device: Any = None,
           requires_grad: bool = False, pin_memory: bool = False) -> Tensor:
    """A new leaf tensor holding a copy of ``data`` (torch.tensor), in ``dtype`` if given; else
    Python floats take the default dtype (float32 unless ``optrs.set_default_dtype`` changed it),
    Python ints int64 and bools bool, and arrays and tensors keep theirs (a float64 ndarray stays
    float64). ``device`` must be the CPU."""
    _devices.check(device, f"tensor(device={device!r})")
    if pin_memory:
        raise _devices.not_available("cuda", "tensor(pin_memory=True)")
    return Tensor(_dtypes.new_array(data._data if isinstance(data, Tensor) else data, dtype),
                  requires_grad=requires_grad)


def from_numpy(array: NDArray[Any]) -> Tensor:
    """A leaf tensor sharing ``array``'s memory (torch.from_numpy)."""
    if not isinstance(array, np.ndarray):
        raise ParamDTypeError(f"from_numpy expects a numpy.ndarray, got {type(array).__name__}")
    return Tensor(array)


# The ops subclass Function, which needs Tensor: imported last to close the cycle.
from . import nn_ops as _nn_ops  # noqa: E402
from . import ops as _ops  # noqa: E402

__all__ = ["Tensor", "tensor", "from_numpy", "ValuesIndices", "RemovableHandle", "VersionCounter", "normalize_dim",
           "normalize_dims", "index_key"]
