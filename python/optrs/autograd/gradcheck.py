"""`gradcheck`: backward against central finite differences, like ``torch.autograd.gradcheck``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import GradcheckError, InvalidParamError, ParamDTypeError
from . import engine, grad_mode
from .tensor import Tensor


def _float_outputs(result: Any) -> list[Tensor]:
    items = result if isinstance(result, (tuple, list)) else (result,)
    return [t for t in items if isinstance(t, Tensor) and t.dtype.kind == "f"]


def _numerical(fn: Callable[..., Any], inputs: Sequence[Any], index: int, eps: float,
               sizes: list[int]) -> list[NDArray[np.float64]]:
    """d(output j)/d(input ``index``) as (output size, input size) matrices, one per output."""
    x = inputs[index].data
    columns: list[NDArray[np.float64]] = [np.zeros((size, x.size)) for size in sizes]

    def evaluate() -> list[NDArray[np.float64]]:
        with grad_mode.no_grad():
            return [np.array(o.data, dtype=np.float64).ravel() for o in _float_outputs(fn(*inputs))]

    for k, position in enumerate(np.ndindex(x.shape)):
        original = x[position]
        x[position] = original + eps
        plus = evaluate()
        x[position] = original - eps
        minus = evaluate()
        x[position] = original
        for column, p, m in zip(columns, plus, minus):
            column[:, k] = (p - m) / (2 * eps)
    return columns


def _analytical(outputs: list[Tensor], checked: list[Tensor]) -> list[list[NDArray[np.float64]]]:
    """The same matrices from backward, one pass per output element: [output][input]."""
    result = []
    for out in outputs:
        rows = [np.zeros((out.numel(), t.numel())) for t in checked]
        if out.requires_grad:
            for m in range(out.numel()):
                seed = np.zeros(out.numel(), out.dtype)
                seed[m] = 1
                grads = engine.grad(out, checked, seed.reshape(out.shape), retain_graph=True, allow_unused=True)
                for row, g in zip(rows, grads):
                    if g is not None:
                        row[m] = g.ravel()
        result.append(rows)
    return result


def _report(j: int, i: int, numerical: NDArray[np.float64], analytical: NDArray[np.float64], atol: float,
            rtol: float) -> str:
    excess = np.abs(analytical - numerical) - (atol + rtol * np.abs(numerical))
    m, k = np.unravel_index(int(np.argmax(excess)), excess.shape)
    with np.printoptions(precision=6, threshold=200, linewidth=120):
        return (f"Jacobian mismatch for output {j} with respect to input {i} (atol={atol}, rtol={rtol}): "
                f"the largest difference is at output element {m}, input element {k}: numerical "
                f"{numerical[m, k]:.10g}, analytical {analytical[m, k]:.10g} "
                f"({int(np.count_nonzero(excess > 0))} of {excess.size} entries differ)\n"
                f"numerical:\n{numerical}\nanalytical:\n{analytical}")


def gradcheck(fn: Callable[..., Any], inputs: Tensor | Sequence[Any], eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-3, raise_exception: bool = True) -> bool:
    """Checks the gradients that backward computes for ``fn(*inputs)`` against central
    differences ``(f(x + eps) - f(x - eps)) / (2 eps)``, element by element, for every input
    that requires grad (they must be float64) and every floating-point output.

    Returns True, or raises `optrs.GradcheckError` naming the output, input and worst element
    (returns False instead with ``raise_exception=False``). ``fn`` must be deterministic: the
    inputs' data is perturbed in place and restored.
    """
    args = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    checked_at = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad]
    if not checked_at:
        raise InvalidParamError("gradcheck: no input requires grad; make the inputs to check with "
                                "requires_grad=True")
    for i in checked_at:
        data = args[i].data
        if data.dtype != np.float64:
            raise ParamDTypeError(f"gradcheck: input {i} is {data.dtype}; finite differences need float64 "
                                  "(use x.double())")
        if not data.flags.writeable:
            raise InvalidParamError(f"gradcheck: input {i}'s data is read-only; pass a writeable copy")
    outputs = _float_outputs(fn(*args))
    if not outputs:
        raise InvalidParamError("gradcheck: fn returned no floating-point tensor to check")
    checked = [args[i] for i in checked_at]
    analytical = _analytical(outputs, checked)
    sizes = [o.numel() for o in outputs]
    for position, i in enumerate(checked_at):
        numerical = _numerical(fn, args, i, eps, sizes)
        for j, (num, out_rows) in enumerate(zip(numerical, analytical)):
            ana = out_rows[position]
            if not np.all(np.abs(ana - num) <= atol + rtol * np.abs(num)):
                if not raise_exception:
                    return False
                raise GradcheckError(_report(j, i, num, ana, atol, rtol))
    return True


__all__ = ["gradcheck"]
