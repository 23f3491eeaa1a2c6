"""The model zoo: build any registered architecture by name.

Importing the package imports every family module, each of which registers its models as it
loads (as in torchvision and timm); ``factory`` builds them by name.

Example:
    >>> from cnnzoo import models
    >>> models.list_models("resnet*")[:2]
    ['resnet18', 'resnet34']
    >>> net = models.get("resnet18", num_classes=10, in_channels=1, small_input=True)
"""

from . import alexnet, densenet, googlenet, lenet, resnet, tutorial, vgg  # noqa: F401 (register)
from .base import ZooModel
from .describe import info
from .factory import get, get_model, load
from .registry import ModelInfo, ShortRunRecipe, TrainingRecipe, list_models, register

__all__ = [
    "ModelInfo",
    "ShortRunRecipe",
    "TrainingRecipe",
    "ZooModel",
    "get",
    "get_model",
    "info",
    "list_models",
    "load",
    "register",
]
