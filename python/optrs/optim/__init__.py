"""Optimizers with ``torch.optim``'s names, arguments, defaults and numbers.

Each module of this package but the shared ones (``optimizer``, ``lr_scheduler``, ``swa_utils``,
``averaging`` and private ``_*`` modules) holds an optimizer class (or two, such as Adam's AdamW
beside it), which is exported from here: adding an optimizer is adding its module. Type checkers
read the explicit imports below; the loop at the end finds the same classes at run time, and any
optimizer added since.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

from . import lr_scheduler as lr_scheduler
from . import swa_utils as swa_utils
from .optimizer import Optimizer

if TYPE_CHECKING:
    from .adadelta import Adadelta as Adadelta
    from .adafactor import Adafactor as Adafactor
    from .adagrad import Adagrad as Adagrad
    from .adam import Adam as Adam
    from .adamax import Adamax as Adamax
    from .adamw import AdamW as AdamW
    from .adopt import ADOPT as ADOPT
    from .asgd import ASGD as ASGD
    from .lamb import LAMB as LAMB
    from .lbfgs import LBFGS as LBFGS
    from .lion import Lion as Lion
    from .muon import Muon as Muon
    from .nadam import NAdam as NAdam
    from .radam import RAdam as RAdam
    from .rmsprop import RMSprop as RMSprop
    from .rprop import Rprop as Rprop
    from .schedule_free_adamw import ScheduleFreeAdamW as ScheduleFreeAdamW
    from .sgd import SGD as SGD

_SHARED = {"optimizer", "lr_scheduler", "swa_utils", "averaging"}


def _optimizers() -> dict[str, type[Optimizer]]:
    """Every optimizer class the package's modules define, by name, in module order."""
    found: dict[str, type[Optimizer]] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
        if info.name.startswith("_") or info.name in _SHARED:
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for name, value in vars(module).items():
            if (isinstance(value, type) and issubclass(value, Optimizer) and value is not Optimizer
                    and value.__module__ == module.__name__ and not name.startswith("_")):
                found[name] = value
    return found


_FOUND = _optimizers()
globals().update(_FOUND)
__all__ = ["Optimizer", *_FOUND]
