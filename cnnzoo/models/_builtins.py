"""Imports every built-in model module; each registers its models on import."""

from . import alexnet, densenet, googlenet, lenet, mini, resnet, tutorial, vgg  # noqa: F401
