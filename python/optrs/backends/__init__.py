"""torch.backends' flags and questions that training scripts touch: ``backends.mps.is_available()``
is False, and ``backends.cudnn``'s flags (``deterministic``, ``benchmark``) may be set, changing
nothing: optrs's results never depend on them (they are the same on any thread count)."""

from . import cudnn, mps

__all__ = ["cudnn", "mps"]
