"""The layers of `optrs.nn`, one kind per file as in torch.nn.modules."""

from .activation import LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .container import ModuleList, Sequential
from .conv import Conv2d
from .dropout import Dropout, Dropout2d
from .flatten import Flatten
from .linear import Identity, Linear
from .loss import CrossEntropyLoss, MSELoss, NLLLoss
from .module import IncompatibleKeys, Module
from .normalization import BatchNorm2d, LayerNorm
from .pooling import AvgPool2d, MaxPool2d
from .sparse import Embedding

__all__ = [
    "Module", "IncompatibleKeys", "Sequential", "ModuleList", "Linear", "Identity", "Conv2d", "MaxPool2d",
    "AvgPool2d", "ReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "Dropout", "Dropout2d", "Flatten",
    "BatchNorm2d", "LayerNorm", "Embedding", "NLLLoss", "CrossEntropyLoss", "MSELoss",
]
