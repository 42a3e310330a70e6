"""The identity ops that `optrs.nn.Module`'s full backward hooks hang on: they see the gradients
of a module's outputs and inputs and hand them to ``state["module"]._call_backward_hooks``."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from .function import Function
from .tensor import Tensor

Array = NDArray[Any]


class OutputTap(Function):
    """Identity on a module's outputs that records their gradients for the backward hooks; when
    no input needs a gradient it calls the hooks itself (with ``grad_input`` all None)."""

    def forward(self, *arrays: Array, state: dict[str, Any]) -> tuple[Array, ...]:
        self.state = state
        return arrays

    def backward(self, *grads: Array) -> tuple[Array, ...]:
        self.state["grad_output"] = tuple(None if g is None else Tensor._wrap(g) for g in grads)
        if not self.state["inputs"]:
            self.state["module"]._call_backward_hooks((None,) * self.state["n_inputs"], self.state["grad_output"])
        return grads


class InputTap(Function):
    """Identity on a module's inputs that require grad; its backward gets the module's
    ``grad_input`` and runs the backward hooks, which may replace it."""

    def forward(self, *arrays: Array, state: dict[str, Any]) -> tuple[Array, ...]:
        self.state = state
        return arrays

    def backward(self, *grads: Array) -> tuple[Any, ...]:
        grad_input = tuple(None if g is None else Tensor._wrap(g) for g in grads)
        replaced = self.state["module"]._call_backward_hooks(grad_input, self.state.get("grad_output", ()))
        if replaced is None:
            return grads
        return tuple(None if g is None else (g.data if isinstance(g, Tensor) else np.asarray(g)) for g in replaced)
