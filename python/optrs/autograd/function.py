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
from .dtypes import type_name
from .tensor import Tensor, VersionCounter

Meta = tuple[tuple[int, ...], np.dtype[Any]]
# A saved array's tensor: its counter, the version it had when saved, the array, and the class of
# the op that made the tensor (NoneType for a leaf) with the output's index, to name it.
SavedVersion = tuple[VersionCounter, int, NDArray[Any], type, int]
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
    # True for ops whose output may be a view of their first input (reshape, permute, indexing):
    # such an output shares the input's version counter, as torch's views do.
    may_view: ClassVar[bool] = False
    # The saved arrays that are (views of) input or output tensors, with their versions then.
    _saved_versions: tuple[SavedVersion, ...] = ()

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

    def _check_versions(self) -> None:
        """torch's check that no saved tensor was changed in place since ``forward`` saved it."""
        for counter, version, saved, producer, output_nr in self._saved_versions:
            if counter.version != version:
                which = "" if producer is type(None) else f", which is output {output_nr} of {producer.__name__}"
                shape = ", ".join(map(str, saved.shape))
                raise AutogradError(
                    "one of the variables needed for gradient computation has been modified by an inplace "
                    f"operation: [{type_name(saved.dtype)} [{shape}]]{which}, is at version "
                    f"{counter.version}; expected version {version} instead. Hint: enable anomaly detection to "
                    "find the operation that failed to compute its gradient, with "
                    "optrs.autograd.set_detect_anomaly(True, check_nan=False).")

    def _release(self) -> None:
        if self._saved:
            self._saved = None
            self._saved_versions = ()

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
        else:
            fn._edges = tuple(None if not need else _view_edge(a) if a._view is not None else
                              (a._node, a._output_nr) if a._node is not None else (a, 0)
                              for a, need in zip(args, needs))
            fn._input_meta = tuple((a._data.shape, a._data.dtype) if need else None for a, need in zip(args, needs))
            fn._output_meta = tuple((a.shape, a.dtype) for a in arrays)
            skip = cls.non_differentiable_outputs
            tensors = tuple(Tensor._wrap(a) if i in skip or a.dtype.kind not in "fc" else Tensor._wrap(a, fn, i)
                            for i, a in enumerate(arrays))
            if fn._saved:
                fn._saved_versions = _saved_versions(fn._saved, args, tensors)
        if cls.may_view and isinstance(args[0], Tensor):
            _share_counter(args[0], tensors)
        return tensors if multi else tensors[0]


def _view_edge(a: Tensor) -> Edge:
    """Where a view's gradient goes; refuses a view whose base got a new history after it was made."""
    view = a._view
    if view is not None and a._node is not None and a._counter is not None and a._counter.rebased != view[1]:
        raise AutogradError("this view was made before an in-place op changed its base tensor in the graph; torch "
                            "would give the view the base's new history, optrs cannot: take the view again after "
                            "the in-place op (or change the view out of place)")
    return (a._node, a._output_nr) if a._node is not None else (a, 0)


def _root(array: NDArray[Any]) -> Any:
    """The object at the end of ``array``'s chain of bases: equal for arrays sharing memory."""
    base = array.base
    while isinstance(base, np.ndarray):
        array, base = base, base.base
    return array if base is None else base


def _saved_versions(saved_values: tuple[Any, ...], args: tuple[Any, ...],
                    outputs: tuple[Tensor, ...]) -> tuple[SavedVersion, ...]:
    """The version, now, of each input or output tensor whose data an op saved (or a view of it)."""
    found: list[SavedVersion] = []
    for saved in saved_values:
        if type(saved) is not np.ndarray:
            continue
        owner = None
        for a in args:
            if isinstance(a, Tensor) and a._data is saved:
                owner = a
                break
        else:
            for out in outputs:
                if out._data is saved:
                    owner = out
                    break
            else:
                owner = _owner_by_root(saved, args, outputs)
                if owner is None:
                    continue
        counter = owner._counter or owner._version_counter()
        found.append((counter, counter.version, saved, type(owner._node), owner._output_nr))
    return tuple(found)


def _owner_by_root(saved: NDArray[Any], args: tuple[Any, ...], outputs: tuple[Tensor, ...]) -> Tensor | None:
    """The input or output tensor whose data shares memory with ``saved`` (a view of one)."""
    root = _root(saved)
    for t in (*(a for a in args if isinstance(a, Tensor)), *outputs):
        if _root(t._data) is root:
            return t
    return None


def _share_counter(source: Tensor, outputs: tuple[Tensor, ...]) -> None:
    """Views of ``source`` among ``outputs`` share its counter and have its base as theirs."""
    root = _root(source._data)
    for out in outputs:
        if _root(out._data) is root:
            base = source if source._view is None else source._view[0]
            out._counter = source._version_counter()
            out._view = (base, out._counter.rebased)


__all__ = ["Function", "FREED_MESSAGE"]
