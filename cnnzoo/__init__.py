"""cnnzoo: the classic convolutional networks in PyTorch, exact and tested.

The public names are imported lazily so that ``import cnnzoo`` stays light: it pulls in no
plotting library, no Hub client and changes no global torch setting.

Example:
    >>> from cnnzoo import get_model
    >>> model = get_model("lenet5", num_classes=10)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

# public name -> module that defines it (relative to this package)
_LAZY_ATTRIBUTES: dict[str, str] = {
    "get_model": ".models",
    "list_models": ".models",
    "info": ".models",
    "register": ".models",
    "fit": ".training",
    "evaluate": ".training",
    "predict": ".training",
    "classify": ".training",
    "History": ".training",
    "ModelCheckpoint": ".training",
    "EarlyStopping": ".training",
    "BackupAndRestore": ".training",
    "lr_find": ".training",
    "save": ".checkpoint",
    "load": ".models",
    "load_weights": ".checkpoint",
    "save_pretrained": ".hub",
    "from_pretrained": ".hub",
    "push_to_hub": ".hub",
    "freeze": ".transfer",
    "unfreeze": ".transfer",
    "summary": ".summarize",
    "count_parameters": ".summarize",
    "compare": ".comparison",
    "Leaderboard": ".comparison",
    "export": ".deploy",
    "transforms": ".deploy",
}
_LAZY_MODULES = (
    "blocks",
    "comparison",
    "deploy",
    "models",
    "data",
    "training",
    "checkpoint",
    "hub",
    "summarize",
    "transfer",
)

__all__ = sorted([*_LAZY_ATTRIBUTES, *_LAZY_MODULES, "__version__"])

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from . import (
        blocks,
        checkpoint,
        comparison,
        data,
        deploy,
        hub,
        models,
        summarize,
        training,
        transfer,
    )
    from .checkpoint import load_weights, save
    from .comparison import Leaderboard, compare
    from .deploy import export, transforms
    from .hub import from_pretrained, push_to_hub, save_pretrained
    from .models import get_model, info, list_models, load, register
    from .summarize import count_parameters, summary
    from .training import (
        BackupAndRestore,
        EarlyStopping,
        History,
        ModelCheckpoint,
        classify,
        evaluate,
        fit,
        lr_find,
        predict,
    )
    from .transfer import freeze, unfreeze


def __getattr__(name: str) -> Any:
    if name in _LAZY_MODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _LAZY_ATTRIBUTES:
        module = importlib.import_module(_LAZY_ATTRIBUTES[name], __name__)
        value = getattr(module, name)
        globals()[name] = value  # cache: the next access skips __getattr__
        return value
    raise AttributeError(f"module 'cnnzoo' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
