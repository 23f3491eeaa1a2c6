"""Fixtures shared by the test modules."""

from __future__ import annotations

import pytest
from _synthetic import RECIPE_LR
from torch import nn

from cnnzoo.models import TrainingRecipe, register
from cnnzoo.models import registry as registry_module


@pytest.fixture
def recipe_model():
    """A registered tiny model with its own recipe, removed from the registry afterwards."""

    @register("recipe_test_net", family="test", recipe=TrainingRecipe(RECIPE_LR, "a test"))
    def recipe_test_net(num_classes: int = 3, in_channels: int = 1) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(in_channels, 4, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
            nn.Flatten(),
            nn.Linear(16, num_classes),
        )

    yield "recipe_test_net"
    registry_module._REGISTRY.pop("recipe_test_net")
    registry_module.info.cache_clear()
