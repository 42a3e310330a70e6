"""``log_model_stats``: a model's weights and gradients to TensorBoard in one call."""

from __future__ import annotations

from typing import Any

from numpy.typing import NDArray

from ..nn import Module
from ..utils import get_total_norm
from .writer import SummaryWriter


def log_model_stats(writer: SummaryWriter, model: Module, step: int, histograms: bool = True) -> float:
    """Logs, at ``step``, for each parameter ``name`` of ``model`` (``model.named_parameters()``):

    - ``weight_norm/<name>``: the L2 norm of its values, and with ``histograms`` their
      histogram ``weights/<name>``;
    - when its ``.grad`` is not None, ``grad_norm/<name>`` and the histogram ``grads/<name>``;
    - ``total_grad_norm``: the L2 norm of all the grads together, the number
      ``optrs.utils.clip_grad_norm_`` compares with ``max_norm`` (0 when no param has a grad).

    Call it after ``loss.backward()`` (and before ``zero_grad``) to see the grads of that step.
    Returns the total grad norm. Norms are ``optrs.utils.get_total_norm``'s (float64 sums in a fixed
    order, as ``clip_grad_norm_``); NaN and inf are logged as they are.
    """
    grads: list[NDArray[Any]] = []
    for name, param in model.named_parameters():
        writer.add_scalar(f"weight_norm/{name}", get_total_norm(param.data), step)
        if histograms:
            writer.add_histogram(f"weights/{name}", param.data, step)
        if param.grad is None:
            continue
        grads.append(param.grad)
        writer.add_scalar(f"grad_norm/{name}", get_total_norm(param.grad), step)
        if histograms:
            writer.add_histogram(f"grads/{name}", param.grad, step)
    total_grad_norm = float(get_total_norm(grads))
    writer.add_scalar("total_grad_norm", total_grad_norm, step)
    return total_grad_norm
