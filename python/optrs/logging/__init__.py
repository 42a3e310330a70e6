"""TensorBoard logging with ``torch.utils.tensorboard``'s API: ``SummaryWriter`` writes real
TensorBoard event files (through ``tensorboardX``) and takes Python numbers, NumPy arrays and
``optrs.Tensor``s; ``log_model_stats`` logs a model's weights and gradients in one call.

Needs the ``tensorboard`` extra: ``pip install 'optrs-numpy[tensorboard]'``.

    from optrs.logging import SummaryWriter, log_model_stats
    with SummaryWriter() as writer:          # runs/<date>_<host>, as torch
        writer.add_scalar("loss/train", loss, step)
        log_model_stats(writer, model, step)
"""

from .model_stats import log_model_stats
from .writer import SummaryWriter

__all__ = ["SummaryWriter", "log_model_stats"]
