"""`Parameter`: a trainable `Tensor`, the object optimizers step when no grads are passed."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .autograd.tensor import Tensor


class Parameter(Tensor):
    """A trainable tensor: ``.data`` is the ndarray the optimizer updates in place (shared with
    the array it was made from, not copied), ``.grad`` its gradient (an ndarray of the same shape
    and dtype, or None to skip it in a step), filled by ``loss.backward()`` or set by hand.
    ``nn.Module`` registers the Parameters assigned to it as its parameters.

    Replacing ``.data`` with a new array is allowed between steps, as in torch: optimizers notice
    and point at the new array (it must keep the old one's dtype and size, since the optimizer's
    state for it is kept). Any array is accepted here; optimizers check dtype and layout when
    they register the param.
    """

    __slots__ = ()

    def __init__(self, data: Tensor | ArrayLike, requires_grad: bool = True) -> None:
        super().__init__(data._data if isinstance(data, Tensor) else np.asarray(data))
        # Set directly: the dtype is the optimizer's to check, with its own message.
        self._requires_grad = bool(requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()
