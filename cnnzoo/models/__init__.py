"""The model zoo: build any registered architecture by name.

Example:
    >>> from cnnzoo import models
    >>> models.list_models("resnet*")[:2]
    ['resnet101', 'resnet152']
    >>> net = models.get("resnet18", num_classes=10, in_channels=1, small_input=True)
"""

from .base import ZooModel
from .registry import ModelInfo, get, get_model, info, list_models, register

__all__ = ["ModelInfo", "ZooModel", "get", "get_model", "info", "list_models", "register"]
