"""The backward pass: one topological sort of the graph, then each node once, in reverse order.

Gradients meeting at a node are summed in a buffer the engine owns, in place after the first
addition (never in arrays an op returned, which may be shared or read-only views). Leaf tensors
receive their total once the graph is done: the first ``.grad`` is a fresh C-contiguous array,
later passes add into it in place, so gradients accumulate across ``backward`` calls as in torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._plumbing import hooks
from ..errors import AutogradError, InvalidParamError
from . import anomaly_mode, grad_mode
from .function import Function, Meta
from .tensor import Tensor


def sum_to(grad: NDArray[Any], shape: tuple[int, ...]) -> NDArray[Any]:
    """Sums ``grad`` over the axes along which an array of ``shape`` was broadcast to its shape."""
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    if lead < 0 or any(s != 1 and s != g for s, g in zip(shape, grad.shape[lead:])):
        raise ValueError(f"a gradient of shape {grad.shape} cannot be summed to shape {shape}")
    axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape) if s == 1 and grad.shape[lead + i] != 1)
    return np.asarray(grad.sum(axis=axes, keepdims=True)).reshape(shape)


def _conform(grad: Any, meta: Meta, where: str) -> NDArray[Any]:
    """A gradient as its input expects it: an ndarray of the input's shape and dtype."""
    if type(grad) is not np.ndarray:
        grad = np.asarray(grad)
    shape, dtype = meta
    if grad.shape != shape:
        try:
            grad = sum_to(grad, shape)
        except ValueError:
            raise AutogradError(f"{where} is a gradient of shape {grad.shape} for a value of shape {shape}; "
                                "backward must return gradients of its inputs' shapes") from None
    if grad.dtype != dtype:
        grad = grad.astype(dtype)
    return grad


class _Slots:
    """The gradients gathered so far for a node's outputs (or a leaf), and for each whether the
    engine made it (then later contributions are added into it in place)."""

    __slots__ = ("grads", "owned")

    def __init__(self, n: int) -> None:
        self.grads: list[NDArray[Any] | None] = [None] * n
        self.owned = [False] * n

    def add(self, i: int, grad: NDArray[Any]) -> None:
        current = self.grads[i]
        if current is None:
            self.grads[i] = grad
        elif self.owned[i]:
            np.add(current, grad, out=current)
        else:
            self.grads[i] = np.asarray(current + grad)
            self.owned[i] = True


def _dependencies(roots: list[Function]) -> dict[Function, int]:
    """For each node reachable from ``roots``: how many edges lead into it."""
    deps: dict[Function, int] = {}
    seen = set(roots)
    stack = list(seen)
    while stack:
        for edge in stack.pop()._edges:
            if edge is not None and isinstance(edge[0], Function):
                node = edge[0]
                deps[node] = deps.get(node, 0) + 1
                if node not in seen:
                    seen.add(node)
                    stack.append(node)
    return deps


def _backward(node: Function, grads: list[NDArray[Any] | None]) -> Any:
    return node.backward(*grads)


def _call(node: Function, grads: list[NDArray[Any] | None]) -> tuple[Any, ...]:
    if node._saved_versions:
        node._check_versions()
    for i, meta in enumerate(node._output_meta):
        if grads[i] is None and i not in node.non_differentiable_outputs:
            grads[i] = np.zeros(meta[0], meta[1])
    run = anomaly_mode.run_backward if anomaly_mode._flag.enabled else _backward
    result = run(node, grads) if hooks.active is None else hooks.active.backward(node, grads, run)
    if not isinstance(result, tuple):
        result = (result,)
    if len(result) != len(node._edges):
        raise AutogradError(f"{node.name()}: backward returned {len(result)} gradients for {len(node._edges)} "
                            "forward arguments; return one per argument (None where there is none)")
    return result


def _run_hooks(hooks: Sequence[tuple[int, Any]], slots: _Slots, metas: tuple[Meta, ...], where: str) -> None:
    for nr, hook in hooks:
        grad = slots.grads[nr]
        if grad is not None:
            replaced = hook(grad)
            if replaced is not None:
                slots.grads[nr] = _conform(replaced, metas[nr], f"the value returned by a hook on {where}")
                slots.owned[nr] = False


def _execute(roots: Sequence[Tensor], seeds: Sequence[NDArray[Any]], retain_graph: bool,
             capture: Sequence[Tensor] | None) -> dict[tuple[int, int], NDArray[Any]]:
    """Runs the backward pass. Without ``capture`` it accumulates into the leaves' ``.grad``; with
    it, it returns the total gradient of each captured tensor (keyed by its node or leaf id and
    output index) and leaves every ``.grad`` alone."""
    root_nodes = list(dict.fromkeys(r._node for r in roots if r._node is not None))
    deps = _dependencies(root_nodes)
    node_slots: dict[Function, _Slots] = {}
    leaf_slots: dict[int, tuple[Tensor, _Slots]] = {}
    captured: dict[tuple[int, int], NDArray[Any]] = {}
    wanted = {(id(t._node) if t._node is not None else id(t), t._output_nr) for t in capture or ()}
    for root, seed in zip(roots, seeds):
        if root._node is None:
            leaf_slots.setdefault(id(root), (root, _Slots(1)))[1].add(0, seed)
        else:
            node_slots.setdefault(root._node, _Slots(len(root._node._output_meta))).add(root._output_nr, seed)
    ready = [n for n in root_nodes if n not in deps]
    while ready:
        node = ready.pop()
        slots = node_slots.pop(node, None)
        grads_in: tuple[Any, ...] | None = None
        if slots is not None:
            if node._hooks:
                _run_hooks(node._hooks, slots, node._output_meta, f"the output of {node.name()}")
            for nr, grad in enumerate(slots.grads):
                if grad is not None and (id(node), nr) in wanted:
                    captured[id(node), nr] = grad
            grads_in = _call(node, slots.grads)
            if not retain_graph:
                node._release()
        for i, edge in enumerate(node._edges):
            if edge is None:
                continue
            target, nr = edge
            grad = grads_in[i] if grads_in is not None else None
            if grad is not None:
                meta = node._input_meta[i]
                assert meta is not None
                grad = _conform(grad, meta, f"{node.name()}'s gradient for argument {i}")
            if isinstance(target, Function):
                if grad is not None:
                    node_slots.setdefault(target, _Slots(len(target._output_meta))).add(nr, grad)
                deps[target] -= 1
                if deps[target] == 0:
                    ready.append(target)
            elif grad is not None:
                leaf_slots.setdefault(id(target), (target, _Slots(1)))[1].add(0, grad)
    for leaf, slots in leaf_slots.values():
        if leaf._hooks:
            _run_hooks([(0, h) for h in leaf._hooks], slots, ((leaf.shape, leaf.dtype),), "a leaf tensor")
        grad = slots.grads[0]
        assert grad is not None
        if capture is not None:
            if (id(leaf), 0) in wanted:
                captured[id(leaf), 0] = grad
        else:
            _accumulate(leaf, grad, slots.owned[0])
    return captured


def _accumulate(leaf: Tensor, grad: NDArray[Any], owned: bool) -> None:
    current = leaf.grad
    if current is None:
        fresh = owned and grad.flags.c_contiguous and grad.flags.writeable
        leaf.grad = grad if fresh else np.array(grad, dtype=leaf.dtype, order="C", copy=True)
    elif current.shape == grad.shape and current.dtype == grad.dtype and current.flags.writeable:
        current += grad
    else:
        leaf.grad = np.asarray(current + grad)


def _seed(root: Tensor, grad: Tensor | ArrayLike | None, index: int) -> NDArray[Any]:
    if not root.requires_grad:
        raise AutogradError(f"element {index} of the tensors does not require grad and has no grad_fn: it was "
                            "computed under no_grad() or only from tensors without requires_grad=True")
    if grad is None:
        if root.numel() != 1:
            raise AutogradError(f"grad can be created implicitly only for scalar outputs, and output {index} has "
                                f"shape {root.shape}: pass the gradient of the output, e.g. "
                                "y.backward(np.ones_like(y.data)), or reduce it first (y.sum().backward())")
        return np.ones(root.shape, root.dtype)
    array = grad._data if isinstance(grad, Tensor) else np.asarray(grad)
    if array.shape != root.shape:
        raise InvalidParamError(f"Mismatch in shape: the gradient for output {index} has shape {array.shape} "
                                f"and the output has shape {root.shape}; they must be equal")
    return array.astype(root.dtype, copy=False)


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def backward(tensors: Tensor | Sequence[Tensor], grad_tensors: Any = None, retain_graph: bool | None = None,
             create_graph: bool = False, inputs: Tensor | Sequence[Tensor] | None = None) -> None:
    """Accumulates into the leaves' ``.grad`` the gradient of ``tensors`` (weighted by
    ``grad_tensors``: one per tensor, None for scalars), like ``torch.autograd.backward``. With
    ``inputs``, only those tensors' ``.grad`` change (non-leaf ones included)."""
    if create_graph:
        raise AutogradError("create_graph=True (higher-order gradients) is not supported by optrs")
    roots = _as_list(tensors)
    grads = [None] * len(roots) if grad_tensors is None else _as_list(grad_tensors)
    if len(grads) != len(roots):
        raise InvalidParamError(f"got {len(grads)} gradients for {len(roots)} tensors; pass one per tensor")
    seeds = [_seed(r, g, i) for i, (r, g) in enumerate(zip(roots, grads))]
    with grad_mode.no_grad():
        if inputs is None:
            _execute(roots, seeds, bool(retain_graph), None)
            return
        targets = _as_list(inputs)
        captured = _execute(roots, seeds, bool(retain_graph), targets)
        for t in targets:
            grad = captured.get(_key(t))
            if grad is not None:
                _accumulate(t, grad, False)


def _key(t: Tensor) -> tuple[int, int]:
    return (id(t._node) if t._node is not None else id(t), t._output_nr)


def grad(outputs: Tensor | Sequence[Tensor], inputs: Tensor | Sequence[Tensor], grad_outputs: Any = None,
         retain_graph: bool | None = None, create_graph: bool = False,
         allow_unused: bool = False) -> tuple[NDArray[Any] | None, ...]:
    """The gradients of ``outputs`` with respect to ``inputs`` (fresh arrays), without touching
    any ``.grad``; like ``torch.autograd.grad``. An input that ``outputs`` do not depend on is an
    error unless ``allow_unused=True``, which gives None for it."""
    if create_graph:
        raise AutogradError("create_graph=True (higher-order gradients) is not supported by optrs")
    roots = _as_list(outputs)
    targets = _as_list(inputs)
    grads = [None] * len(roots) if grad_outputs is None else _as_list(grad_outputs)
    if len(grads) != len(roots):
        raise InvalidParamError(f"got {len(grads)} grad_outputs for {len(roots)} outputs; pass one per output")
    for i, t in enumerate(targets):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise AutogradError(f"inputs[{i}] does not require grad: only tensors with requires_grad=True "
                                "(or computed from them) have gradients")
    seeds = [_seed(r, g, i) for i, (r, g) in enumerate(zip(roots, grads))]
    with grad_mode.no_grad():
        captured = _execute(roots, seeds, bool(retain_graph), targets)
    result: list[NDArray[Any] | None] = []
    for i, t in enumerate(targets):
        found = captured.get(_key(t))
        if found is None and not allow_unused:
            raise AutogradError(f"inputs[{i}] was not used to compute the outputs; pass allow_unused=True "
                                "to get None for it")
        result.append(None if found is None else np.array(found, order="C", copy=True))
    return tuple(result)


__all__ = ["backward", "grad", "sum_to"]
