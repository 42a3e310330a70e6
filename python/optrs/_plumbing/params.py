"""The param protocol: what optim, the tools and checkpoints accept as a param, without knowing
about autograd's `Tensor` (which satisfies it)."""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

import numpy as np
from numpy.typing import NDArray

from ..errors import ParamDTypeError


class HasData(Protocol):
    """A param object: its values are the ndarray ``.data``, its gradient ``.grad``."""

    @property
    def data(self) -> NDArray[Any]: ...

    @property
    def grad(self) -> NDArray[Any] | None: ...


ParamLike = NDArray[Any] | HasData


class VersionedData:
    """Base of the param classes whose ``.data`` setter bumps ``data_version`` (autograd's Tensor).

    An optimizer holds its params' arrays; it re-reads them only when the counter moved since its
    last step, or on every step when some param is of a class that does not count (foreign objects).
    """

    __slots__ = ()
    data_version: ClassVar[int] = 0

    @staticmethod
    def data_replaced() -> None:
        VersionedData.data_version += 1


def is_param_object(value: Any) -> bool:
    """True for one param (an ndarray or an object with ``.data``) rather than a collection of them."""
    return isinstance(value, (np.ndarray, VersionedData)) or hasattr(value, "data")


def array_of(param: Any, where: str) -> NDArray[Any]:
    """The ndarray a param holds, or a ParamDTypeError naming ``where``."""
    if isinstance(param, np.ndarray):
        return param
    data = getattr(param, "data", None)
    if isinstance(data, np.ndarray):
        return data
    raise ParamDTypeError(
        f"{where} must be a numpy.ndarray or an object with an ndarray .data (optrs.Parameter), "
        f"got {type(param).__name__}"
    )
