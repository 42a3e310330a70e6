"""Reverse-mode automatic differentiation on NumPy arrays, with torch's API.

``Tensor`` (and ``optrs.Parameter``, its trainable subclass) records the ops applied to it;
``loss.backward()`` fills ``.grad`` of the leaves. ``Function`` defines new ops, ``grad`` computes
gradients without touching ``.grad``, ``gradcheck`` checks an op's backward against finite
differences, ``no_grad`` turns recording off, and ``detect_anomaly`` finds the op that made a
NaN or an infinity.
"""

from .tensor import RemovableHandle, Tensor, ValuesIndices, from_numpy, tensor  # isort: skip (defines Tensor first)
from .anomaly_mode import detect_anomaly, is_anomaly_check_nan_enabled, is_anomaly_enabled, set_detect_anomaly
from .engine import backward, grad
from .function import Function
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .gradcheck import gradcheck
from .ops import cat, stack

__all__ = [
    "Tensor",
    "tensor",
    "from_numpy",
    "Function",
    "ValuesIndices",
    "RemovableHandle",
    "backward",
    "grad",
    "gradcheck",
    "no_grad",
    "enable_grad",
    "set_grad_enabled",
    "is_grad_enabled",
    "cat",
    "stack",
    "detect_anomaly",
    "set_detect_anomaly",
    "is_anomaly_enabled",
    "is_anomaly_check_nan_enabled",
]
