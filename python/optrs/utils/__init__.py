"""Helpers from ``torch.nn.utils`` and ``torch.optim.swa_utils`` for NumPy params and grads:
gradient clipping (norm and value), the total norm, params to and from one vector, weight
averaging (SWA, EMA); names, arguments and numbers follow torch. ``check_finite`` finds the
params and grads that hold a NaN or an infinity. ``optrs.utils.data`` is torch.utils.data
(datasets, samplers, DataLoader)."""

from ..optim.averaging import AveragedParams, get_ema_avg_fn, get_swa_avg_fn
from . import averaged_model as _averaged_model  # noqa: F401  (puts AveragedModel in optim.swa_utils)
from . import data as data
from .clip_grad import clip_grad_norm_, clip_grad_value_, clip_grads_norm_, clip_grads_with_norm_, get_total_norm
from .convert_parameters import parameters_to_vector, vector_to_parameters
from .finite import check_finite

__all__ = [
    "clip_grad_norm_",
    "clip_grads_norm_",
    "clip_grad_value_",
    "get_total_norm",
    "clip_grads_with_norm_",
    "parameters_to_vector",
    "vector_to_parameters",
    "AveragedParams",
    "get_swa_avg_fn",
    "get_ema_avg_fn",
    "check_finite",
]
