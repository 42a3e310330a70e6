"""`Function`: one differentiable op (tinygrad's shape; torch's ``autograd.Function`` contract).

A subclass defines ``forward`` on NumPy arrays and ``backward`` from the gradients of its outputs
to one gradient per forward argument::

    class Square(Function):
        def forward(self, x):
            self.save_for_backward(x)
            return x * x

        def backward(self, grad):
            (x,) = self.saved_tensors
            return 2 * x * grad

    y = Square.apply(t)      # Tensor in, Tensor out; Tensors arrive in forward as their .data

``apply`` records the call as a node of the graph only when grad mode is on and some input
requires grad; otherwise nothing is kept. The node holds the edges to its inputs' nodes (or to
the leaf tensors themselves), never the intermediate tensors, so memory is what ``forward``
saves. Differences from torch: ``forward``/``backward`` are instance methods and the instance is
the context; ``backward`` returns one value per positional argument of ``forward`` (``None`` for
non-tensors and inputs that need no gradient); gradients are ndarrays. The engine sums a
returned gradient over broadcast axes and casts it to its input's dtype, as torch's does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from .._plumbing import hooks
from ..errors import AutogradError
from . import anomaly_mode, grad_mode
from .tensor import Tensor

Meta = tuple[tuple[int, ...], np.dtype[Any]]
Edge = tuple["Function | Tensor", int]
GradHook = Callable[[NDArray[Any]], "NDArray[Any] | None"]

FREED_MESSAGE = (
    "Trying to backward through the graph a second time (or to read saved values after they were freed): "
    "a backward pass frees the buffers its graph saved. Call .backward(retain_graph=True) the first time "
    "if you need to backward through the same graph again.")


class Function:
    """Base class of the ops; see the module docstring."""

    # Outputs (by position) that carry no gradient, such as max_pool2d's indices.
    non_differentiable_outputs: ClassVar[frozenset[int]] = frozenset()

    needs_input_grad: tuple[bool, ...]
    _edges: tuple[Edge | None, ...]
    _input_meta: tuple[Meta | None, ...]
    _output_meta: tuple[Meta, ...]

    def __init__(self) -> None:
        self._saved: tuple[Any, ...] | None = ()
        self._hooks: list[tuple[int, GradHook]] | None = None

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Computes the output array (or a tuple of them) from arrays and options."""
        raise NotImplementedError(f"{type(self).__name__} must define forward")

    def backward(self, *grad_outputs: Any) -> Any:
        """One gradient (or None) per positional forward argument, from one per output."""
        raise NotImplementedError(f"{type(self).__name__} must define backward")

    def save_for_backward(self, *values: Any) -> None:
        """Keeps arrays for ``backward``; a backward pass without ``retain_graph`` frees them."""
        self._saved = values

    @property
    def saved_tensors(self) -> tuple[Any, ...]:
        if self._saved is None:
            raise AutogradError(FREED_MESSAGE)
        return self._saved

    def _release(self) -> None:
        if self._saved:
            self._saved = None

    def name(self) -> str:
        return f"{type(self).__name__}Backward"

    @property
    def next_functions(self) -> tuple[Edge | None, ...]:
        """Where each input's gradient goes: (node, output index), (leaf tensor, 0) or None."""
        return self._edges

    def __repr__(self) -> str:
        return f"<{self.name()}>"

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Tensor:
        """Runs the op on one output; Tensors among ``args`` are its differentiable inputs."""
        out = cls._run(args, kwargs) if hooks.active is None else hooks.active.forward(cls, args, kwargs)
        if not isinstance(out, Tensor):
            raise TypeError(f"{cls.__name__}.forward returned {len(out)} outputs: call apply_multi")
        return out

    @classmethod
    def apply_multi(cls, *args: Any, **kwargs: Any) -> tuple[Tensor, ...]:
        """``apply`` for a ``forward`` that returns a tuple of arrays."""
        out = cls._run(args, kwargs) if hooks.active is None else hooks.active.forward(cls, args, kwargs)
        return out if isinstance(out, tuple) else (out,)

    @classmethod
    def _run(cls, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Tensor | tuple[Tensor, ...]:
        fn = cls()
        needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        record = grad_mode._flag.enabled and any(needs)
        fn.needs_input_grad = needs if record else (False,) * len(args)
        out = fn.forward(*[a._data if isinstance(a, Tensor) else a for a in args], **kwargs)
        multi = isinstance(out, tuple)
        arrays = [o if type(o) is np.ndarray else np.asarray(o) for o in (out if multi else (out,))]
        if anomaly_mode._flag.enabled:
            anomaly_mode.on_forward(fn, arrays, record)
        if not record:
            tensors = tuple(Tensor._wrap(a) for a in arrays)
            return tensors if multi else tensors[0]
        fn._edges = tuple(((a._node, a._output_nr) if a._node is not None else (a, 0)) if need else None
                          for a, need in zip(args, needs))
        fn._input_meta = tuple((a._data.shape, a._data.dtype) if need else None for a, need in zip(args, needs))
        fn._output_meta = tuple((a.shape, a.dtype) for a in arrays)
        skip = cls.non_differentiable_outputs
        tensors = tuple(Tensor._wrap(a) if i in skip or a.dtype.kind not in "fc" else Tensor._wrap(a, fn, i)
                        for i, a in enumerate(arrays))
        return tensors if multi else tensors[0]


__all__ = ["Function", "FREED_MESSAGE"]
