"""`Parameter`: a NumPy array with a `.grad`, the object optimizers step when no grads are passed."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray


class Parameter:
    """A trainable array: ``.data`` is the ndarray the optimizer updates in place, ``.grad`` its
    gradient (an ndarray of the same shape and dtype, or None to skip it in a step).

    Replacing ``.data`` with a new array is allowed between steps, as in torch: optimizers notice
    and point at the new array (it must keep the old one's dtype and size, since the optimizer's
    state for it is kept).
    """

    __slots__ = ("_data", "grad", "requires_grad", "__weakref__")

    # Bumped whenever any Parameter's .data is replaced, so optimizers re-read their params only
    # then instead of on every step.
    data_version: ClassVar[int] = 0

    def __init__(self, data: ArrayLike, requires_grad: bool = True) -> None:
        self._data: NDArray[Any] = np.asarray(data)
        self.grad: NDArray[Any] | None = None
        self.requires_grad = requires_grad

    @property
    def data(self) -> NDArray[Any]:
        return self._data

    @data.setter
    def data(self, value: ArrayLike) -> None:
        self._data = np.asarray(value)
        Parameter.data_version += 1

    @property
    def shape(self) -> tuple[int, ...]:
        return self._data.shape

    @property
    def dtype(self) -> np.dtype[Any]:
        return self._data.dtype

    @property
    def size(self) -> int:
        return self._data.size

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def numpy(self) -> NDArray[Any]:
        return self._data

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> NDArray[Any]:
        if dtype is None and not copy:
            return self._data
        return np.array(self._data, dtype=dtype, copy=True)

    def __repr__(self) -> str:
        body = np.array2string(self._data, separator=", ", prefix="Parameter(")
        return f"Parameter({body}, dtype={self._data.dtype})"
