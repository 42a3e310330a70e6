"""Learning-rate schedulers with ``torch.optim.lr_scheduler``'s names, arguments, defaults and numbers.

Each scheduler writes ``lr`` (and, for ``CyclicLR``/``OneCycleLR``, ``momentum`` or ``betas[0]``)
into its optimizer's ``param_groups``, which optrs optimizers read at every step. The arithmetic is
torch 2.13's, operation for operation: the recursive ("chainable") forms in ``get_lr`` and the
closed forms used by ``step(epoch)``, so trajectories match torch's to the last bit or so.

They work with any object whose ``param_groups`` is a list of dicts (any optrs optimizer). Like
torch, ``state_dict()`` holds everything but the optimizer (it pickles); ``load_state_dict``
restores it. Unlike torch, ``optimizer.step`` is not wrapped, so there is no warning when the
scheduler is stepped before the optimizer.
"""

from ._base import EPOCH_DEPRECATION_WARNING as EPOCH_DEPRECATION_WARNING
from ._base import LRScheduler
from .composite import ChainedScheduler, SequentialLR
from .cyclic import CosineAnnealingWarmRestarts, CyclicLR, OneCycleLR
from .plateau import ReduceLROnPlateau
from .simple import (
    ConstantLR,
    CosineAnnealingLR,
    ExponentialLR,
    LambdaLR,
    LinearLR,
    MultiplicativeLR,
    MultiStepLR,
    PolynomialLR,
    StepLR,
)

__all__ = [
    "LRScheduler", "LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR", "ConstantLR", "LinearLR",
    "ExponentialLR", "SequentialLR", "CosineAnnealingLR", "ChainedScheduler", "ReduceLROnPlateau",
    "CyclicLR", "CosineAnnealingWarmRestarts", "OneCycleLR", "PolynomialLR",
]
