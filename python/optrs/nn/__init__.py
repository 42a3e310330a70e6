"""torch.nn on `optrs.Tensor`: `Module` and the common layers, the losses, ``functional`` and
``init``. Layers create parameters in the default dtype (float32 unless
``optrs.set_default_dtype``; ``dtype=optrs.float64`` for double), on the CPU (``device``), with
torch's default initialisations drawn from ``optrs.manual_seed``'s generator.

    import optrs, optrs.nn as nn, optrs.nn.functional as F

    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = optrs.optim.Adam(model.parameters(), lr=1e-3)
    loss = F.cross_entropy(model(optrs.Tensor(images)), labels)
    opt.zero_grad(); loss.backward(); opt.step()
"""

from ..parameter import Parameter
from . import functional, init
from .modules import (
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    CrossEntropyLoss,
    Dropout,
    Dropout2d,
    Embedding,
    Flatten,
    Identity,
    IncompatibleKeys,
    LayerNorm,
    Linear,
    LogSoftmax,
    MaxPool2d,
    Module,
    ModuleList,
    MSELoss,
    NLLLoss,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
)

__all__ = [
    "Parameter", "functional", "init", "Module", "IncompatibleKeys", "Sequential", "ModuleList", "Linear",
    "Identity", "Conv2d", "MaxPool2d", "AvgPool2d", "ReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "Dropout",
    "Dropout2d", "Flatten", "BatchNorm2d", "LayerNorm", "Embedding", "NLLLoss", "CrossEntropyLoss", "MSELoss",
]
