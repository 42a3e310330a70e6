"""torch's Tensor methods beyond the arithmetic core (`Tensor` binds them): comparisons as
methods, logical operators on masks, ``view_as``/``reshape_as``, ``masked_fill``, ``gather``,
``index_select``, ``sort``/``topk``, ``all``/``any``, ``norm``, ``repeat``, ``chunk``/``split``,
the ``new_*`` factories, the dtype shortcuts ``int()``/``bool()``/... and ``type()``.

Arguments are checked here, with torch's rules and optrs's errors; the differentiable ones run
as ops of `ops` and `indexing`. Ties: ``sort`` is stable (equal elements keep their order, as
torch's CPU sort); ``topk`` takes the lower index first among equal values, where torch's order
is unspecified.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

# A cycle: tensor.py imports this module first, so Tensor is read at call time, and the ops (which
# import Tensor) are imported in the functions that apply them.
import optrs.autograd.tensor as _tensor

from ..errors import InvalidParamError, ParamDTypeError

if TYPE_CHECKING:
    from .tensor import Dims, Tensor, ValuesIndices


def _operand(value: Any) -> Any:
    return value._data if isinstance(value, _tensor.Tensor) else value


def _compared(t: Tensor, ufunc: Any, other: Any, name: str) -> Tensor:
    result = t._compare(ufunc, other)
    if result is NotImplemented:
        raise TypeError(f"{name}(): expected a tensor or a number as other, got {type(other).__name__}")
    assert isinstance(result, _tensor.Tensor)
    return result


def _index_array(index: Any, op: str) -> NDArray[Any]:
    array = np.asarray(_operand(index))
    if array.dtype.kind not in "iu":
        raise ParamDTypeError(f"{op}(): Expected dtype int32/int64 for index, got {array.dtype}; convert it with "
                              ".long()")
    return array


def _check_bounds(index: NDArray[Any], size: int, dim: int, op: str) -> None:
    if index.size and (index.min() < 0 or index.max() >= size):
        bad = index.min() if index.min() < 0 else index.max()
        raise InvalidParamError(f"{op}(): index {bad} is out of bounds for dimension {dim} with size {size}")


def _cpu_only(device: Any) -> None:
    if device is not None and str(device).split(":")[0] != "cpu":
        raise InvalidParamError(f"device={device!r}: optrs runs on the CPU only; pass device='cpu' or leave it out")


def _sizes(size: tuple[Any, ...]) -> tuple[builtins.int, ...]:
    """``new_zeros(2, 3)`` and ``new_zeros((2, 3))`` alike."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    return tuple(builtins.int(s) for s in size)


# -- comparisons and logic (bool tensors, outside the graph) ---------------------------------

def eq(self: Tensor, other: Tensor | ArrayLike) -> Tensor:
    return _compared(self, np.equal, other, "eq")

def ne(self: Tensor, other: Tensor | ArrayLike) -> Tensor:
    return _compared(self, np.not_equal, other, "ne")

def lt(self: Tensor, other: Tensor | ArrayLike) -> Tensor:
    return _compared(self, np.less, other, "lt")

def le(self: Tensor, other: Tensor | ArrayLike) -> Tensor:
    return _compared(self, np.less_equal, other, "le")

def gt(self: Tensor, other: Tensor | ArrayLike) -> Tensor:
    return _compared(self, np.greater, other, "gt")

def ge(self: Tensor, other: Tensor | ArrayLike) -> Tensor:
    return _compared(self, np.greater_equal, other, "ge")


def equal(self: Tensor, other: Tensor) -> builtins.bool:
    """True when ``other`` has this shape and these values (torch.equal)."""
    return self.shape == other.shape and builtins.bool(np.array_equal(self._data, _operand(other)))

def _logical(self: Tensor, ufunc: Any, other: Any) -> Tensor:
    operand = np.asarray(_operand(other))
    if self._data.dtype.kind not in "biu" or operand.dtype.kind not in "biu":
        raise ParamDTypeError(f"{ufunc.__name__} is only defined for bool and integer tensors, got "
                              f"{self._data.dtype} and {operand.dtype}")
    return _tensor.Tensor._wrap(np.asarray(ufunc(self._data, operand)))

def bitwise_and(self: Tensor, other: Tensor | ArrayLike) -> Tensor:
    return _logical(self, np.bitwise_and, other)

def bitwise_or(self: Tensor, other: Tensor | ArrayLike) -> Tensor:
    return _logical(self, np.bitwise_or, other)

def bitwise_xor(self: Tensor, other: Tensor | ArrayLike) -> Tensor:
    return _logical(self, np.bitwise_xor, other)


def invert(self: Tensor) -> Tensor:
    """``~mask``: logical not of a bool tensor, bitwise not of an integer one."""
    if self._data.dtype.kind not in "biu":
        raise ParamDTypeError(f"~ (bitwise_not) is only defined for bool and integer tensors, got {self.dtype}")
    return _tensor.Tensor._wrap(np.asarray(np.invert(self._data)))

def logical_not(self: Tensor) -> Tensor:
    return _tensor.Tensor._wrap(np.asarray(np.logical_not(self._data)))

def all_true(self: Tensor, dim: Dims = None, keepdim: builtins.bool = False) -> Tensor:
    """Whether every element (along ``dim``) is non-zero; bool (uint8 for uint8, as torch)."""
    return _reduce_truth(self, np.all, dim, keepdim)

def any_true(self: Tensor, dim: Dims = None, keepdim: builtins.bool = False) -> Tensor:
    """Whether some element (along ``dim``) is non-zero; bool (uint8 for uint8, as torch)."""
    return _reduce_truth(self, np.any, dim, keepdim)

def _reduce_truth(self: Tensor, reduce: Any, dim: Dims, keepdim: builtins.bool) -> Tensor:
    dims = _tensor.normalize_dims(dim, self.ndim)
    out = np.asarray(reduce(self._data, axis=dims, keepdims=keepdim))
    return _tensor.Tensor._wrap(out.astype(np.uint8) if self._data.dtype == np.uint8 else out)

# -- shapes like another tensor, pieces -----------------------------------------------------

def view_as(self: Tensor, other: Tensor) -> Tensor:
    return self.view(other.shape)

def reshape_as(self: Tensor, other: Tensor) -> Tensor:
    return self.reshape(other.shape)

def _slices(self: Tensor, dim: builtins.int, sizes: Sequence[builtins.int]) -> tuple[Tensor, ...]:
    lead = (slice(None),) * dim
    edges = np.cumsum([0, *sizes])
    return tuple(self[lead + (slice(builtins.int(a), builtins.int(b)),)] for a, b in zip(edges[:-1], edges[1:]))

def split(self: Tensor, split_size_or_sections: builtins.int | Sequence[builtins.int],
          dim: builtins.int = 0) -> tuple[Tensor, ...]:
    """Views of pieces along ``dim``: of ``split_size`` each (the last may be smaller), or
    of the given sizes, which must add up to the dimension."""
    if self.ndim == 0:
        raise InvalidParamError("split expects at least a 1-dimensional tensor")
    d = _tensor.normalize_dim(dim, self.ndim)
    size = self.shape[d]
    if isinstance(split_size_or_sections, (builtins.int, np.integer)):
        step = builtins.int(split_size_or_sections)
        if step < 0 or (step == 0 and size):
            raise InvalidParamError(f"split_size can only be 0 if dimension size is 0, but got {step} for a "
                                    f"dimension of size {size}")
        count = max(-(-size // step), 1) if step else 1
        return _slices(self, d, [min(step, size - i * step) for i in range(count)])
    sizes = [builtins.int(s) for s in split_size_or_sections]
    if sum(sizes) != size or any(s < 0 for s in sizes):
        raise InvalidParamError(f"split_with_sizes expects split_sizes to sum exactly to {size} (input tensor's "
                                f"size at dimension {d}), but got split_sizes={sizes}")
    return _slices(self, d, sizes)

def chunk(self: Tensor, chunks: builtins.int, dim: builtins.int = 0) -> tuple[Tensor, ...]:
    """At most ``chunks`` views along ``dim``, each of ceil(size / chunks) (the last smaller)."""
    if chunks <= 0:
        raise InvalidParamError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    if self.ndim == 0:
        raise InvalidParamError("chunk expects at least a 1-dimensional tensor")
    size = self.shape[_tensor.normalize_dim(dim, self.ndim)]
    return self.split(max(-(-size // chunks), 1) if size else 0, dim)

def unbind(self: Tensor, dim: builtins.int = 0) -> tuple[Tensor, ...]:
    """The slices along ``dim`` (views), that dimension removed."""
    d = _tensor.normalize_dim(dim, self.ndim)
    return tuple(self[(slice(None),) * d + (i,)] for i in range(self.shape[d]))

def repeat(self: Tensor, *repeats: Any) -> Tensor:
    """Tiled ``repeats`` times along each dimension (torch's repeat, NumPy's tile)."""
    from .ops import Repeat

    counts = _sizes(repeats)
    if not repeats or len(counts) < self.ndim:
        raise InvalidParamError("Number of dimensions of repeat dims can not be smaller than number of dimensions "
                                f"of tensor: {len(counts)} repeats for shape {self.shape}")
    if any(c < 0 for c in counts):
        raise InvalidParamError(f"repeat: the counts {counts} must not be negative")
    return Repeat.apply(self, counts)

# -- picking and ordering -------------------------------------------------------------------

def mask_operands(self: Tensor, op: str, mask: Any, value: Any) -> NDArray[Any]:
    mask_array = np.asarray(_operand(mask))
    if mask_array.dtype != np.bool_:
        raise ParamDTypeError(f"{op} only supports boolean masks, but got mask with dtype {mask_array.dtype}")
    if isinstance(value, _tensor.Tensor) and value.ndim:
        raise InvalidParamError(f"{op} only supports a 0-dimensional value tensor, but got tensor with "
                                f"{value.ndim} dimension(s).")
    try:
        np.broadcast_shapes(mask_array.shape, self.shape)
    except ValueError:
        raise InvalidParamError(f"{op}: the mask's shape {mask_array.shape} does not broadcast with the tensor's "
                                f"shape {self.shape}") from None
    return mask_array

def masked_fill(self: Tensor, mask: Tensor | ArrayLike, value: Tensor | builtins.float) -> Tensor:
    """``value`` where ``mask`` (bool, broadcast) is true, this tensor elsewhere; ``value`` is
    a number or a 0-d tensor (which gets the gradient of the filled elements)."""
    from .indexing import MaskedFill

    mask_array = mask_operands(self, "masked_fill", mask, value)
    return MaskedFill.apply(self, mask_array, value)

def gather(self: Tensor, dim: builtins.int, index: Tensor | ArrayLike) -> Tensor:
    """Values picked along ``dim`` by ``index`` (same number of dimensions, no larger than this
    tensor outside ``dim``): ``out[i][j] = self[i][index[i][j]]`` for dim 1."""
    from .indexing import Gather

    d = _tensor.normalize_dim(dim, self.ndim)
    array = _index_array(index, "gather")
    if array.ndim != max(self.ndim, 1) and array.size:
        raise InvalidParamError(f"gather(): Index tensor must have the same number of dimensions as input tensor "
                                f"({self.ndim}), got {array.ndim}")
    flat = self.reshape(1) if self.ndim == 0 else self
    for i, (n, m) in enumerate(zip(array.shape, flat.shape)):
        if i != d and n > m:
            raise InvalidParamError(f"gather(): Size does not match at dimension {i} expected index "
                                    f"{list(array.shape)} to be no larger than self {list(self.shape)} apart "
                                    f"from dimension {d}")
    _check_bounds(array, flat.shape[d], d, "gather")
    out = Gather.apply(flat, d, array)
    return out.reshape(()) if self.ndim == 0 else out

def index_select(self: Tensor, dim: builtins.int, index: Tensor | ArrayLike) -> Tensor:
    """The slices ``index`` (a 1-D or 0-d integer tensor) along ``dim``, in that order."""
    from .indexing import IndexSelect

    d = _tensor.normalize_dim(dim, self.ndim)
    array = _index_array(index, "index_select")
    if array.ndim > 1:
        raise IndexError("index_select(): Index is supposed to be a vector")
    flat = self.reshape(1) if self.ndim == 0 else self
    _check_bounds(array, flat.shape[d], d, "index_select")
    out = IndexSelect.apply(flat, d, array.reshape(-1))
    return out.reshape(()) if self.ndim == 0 else out

def sort(self: Tensor, dim: builtins.int = -1, descending: builtins.bool = False, *,
         stable: builtins.bool = False) -> ValuesIndices:
    """``(values, indices)`` sorted along ``dim``; NaN counts as the largest value. Always
    stable (``stable=True`` only says so), as torch's CPU sort."""
    from .indexing import Sort

    d = _tensor.normalize_dim(dim, self.ndim)
    size = self.shape[d] if self.ndim else 1
    values, indices = Sort.apply_multi(self, d, builtins.bool(descending), size)
    return _tensor.ValuesIndices(values, indices)

def argsort(self: Tensor, dim: builtins.int = -1, descending: builtins.bool = False, *,
            stable: builtins.bool = False) -> Tensor:
    from .indexing import sort_order

    d = _tensor.normalize_dim(dim, self.ndim)
    order = sort_order(self._data.reshape(1) if self.ndim == 0 else self._data, d, descending)
    return _tensor.Tensor._wrap(order.reshape(self.shape).astype(np.int64))

def topk(self: Tensor, k: builtins.int, dim: builtins.int = -1, largest: builtins.bool = True,
         sorted: builtins.bool = True) -> ValuesIndices:
    """The ``k`` largest (``largest=False``: smallest) values along ``dim`` and their indices,
    in sorted order (also with ``sorted=False``, which lets torch use any order)."""
    from .indexing import Sort

    d = _tensor.normalize_dim(dim, self.ndim)
    size = self.shape[d] if self.ndim else 1
    if not 0 <= k <= size:
        raise InvalidParamError(f"topk: selected index k out of range: k={k} for a dimension of size {size}")
    values, indices = Sort.apply_multi(self, d, builtins.bool(largest), builtins.int(k))
    return _tensor.ValuesIndices(values, indices)

# -- norms ----------------------------------------------------------------------------------

def norm(self: Tensor, p: builtins.float | str | None = "fro", dim: Dims = None, keepdim: builtins.bool = False,
         dtype: DTypeLike | None = None) -> Tensor:
    """The vector p-norm over ``dim`` (all elements by default): ``"fro"``/2, 1, inf, -inf, 0
    or any other number; differentiable (0 where the norm is 0)."""
    from .ops import Norm

    if self._data.dtype.kind not in "fc":
        raise ParamDTypeError(f"norm: expected a floating point tensor as input, got {self.dtype}; convert it "
                              "with .float()")
    if p is None or p == "fro":
        p = 2.0
    if isinstance(p, str):
        raise InvalidParamError(f"norm: p={p!r} is not supported by optrs (vector norms only: 'fro' or a number)")
    source = self if dtype is None else self.to(dtype)
    return Norm.apply(source, builtins.float(p), _tensor.normalize_dims(dim, self.ndim), keepdim)

# -- dtypes ---------------------------------------------------------------------------------

def as_int32(self: Tensor) -> Tensor:
    """This tensor as int32 (torch's ``int()``)."""
    return self.to(np.int32)

def as_bool(self: Tensor) -> Tensor:
    return self.to(np.bool_)


def short(self: Tensor) -> Tensor:
    return self.to(np.int16)

def byte(self: Tensor) -> Tensor:
    return self.to(np.uint8)

def char(self: Tensor) -> Tensor:
    return self.to(np.int8)


def is_contiguous(self: Tensor) -> builtins.bool:
    return builtins.bool(self._data.flags.c_contiguous)

def nelement(self: Tensor) -> builtins.int:
    return builtins.int(self._data.size)

def element_size(self: Tensor) -> builtins.int:
    return builtins.int(self._data.itemsize)

# -- new tensors like this one --------------------------------------------------------------

def _new(self: Tensor, array: NDArray[Any], requires_grad: builtins.bool) -> Tensor:
    return _tensor.Tensor(array, requires_grad=requires_grad)

def new_tensor(self: Tensor, data: Tensor | ArrayLike, dtype: DTypeLike | None = None, device: Any = None,
               requires_grad: builtins.bool = False) -> Tensor:
    """A new leaf holding a copy of ``data``, in this tensor's dtype unless ``dtype`` is given."""
    _cpu_only(device)
    return _new(self, np.array(_operand(data), dtype=self.dtype if dtype is None else dtype), requires_grad)

def new_full(self: Tensor, size: Sequence[builtins.int], fill_value: Any, *, dtype: DTypeLike | None = None,
             device: Any = None, requires_grad: builtins.bool = False) -> Tensor:
    _cpu_only(device)
    return _new(self, np.full(_sizes((size,)), fill_value, dtype=self.dtype if dtype is None else dtype),
                     requires_grad)

def new_zeros(self: Tensor, *size: Any, dtype: DTypeLike | None = None, device: Any = None,
              requires_grad: builtins.bool = False) -> Tensor:
    return self.new_full(_sizes(size), 0, dtype=dtype, device=device, requires_grad=requires_grad)

def new_ones(self: Tensor, *size: Any, dtype: DTypeLike | None = None, device: Any = None,
             requires_grad: builtins.bool = False) -> Tensor:
    return self.new_full(_sizes(size), 1, dtype=dtype, device=device, requires_grad=requires_grad)

def new_empty(self: Tensor, *size: Any, dtype: DTypeLike | None = None, device: Any = None,
              requires_grad: builtins.bool = False) -> Tensor:
    _cpu_only(device)
    return _new(self, np.empty(_sizes(size), dtype=self.dtype if dtype is None else dtype), requires_grad)


__all__ = ["mask_operands"]  # the rest are Tensor methods
