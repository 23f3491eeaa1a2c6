"""Checkpoints without pickle: model weights, rebuildable models and resumable training state.

- ``save`` / ``load_weights``: safetensors files holding a model's weights and the
  configuration that rebuilds it (``cnnzoo.load``, which rebuilds through the registry, lives
  in ``cnnzoo.models``: this file layer imports nothing of the models).
- ``save_training_state`` / ``load_training_state``: everything ``fit`` needs to resume an
  interrupted run exactly.
- ``exclusive_lock``: one writer at a time for a folder or file (``FolderInUseError`` names the
  other).

Every reader validates files before use and raises ``FileNotFoundError`` or ``ValueError``
naming the file and the problem; ``torch.load`` is only ever called with ``weights_only=True``.
"""

from ..devices import resolve_device
from ._io import read_state_dict
from ._lock import FolderInUseError, exclusive_lock
from ._state import (
    TrainingState,
    load_training_state,
    peek_training_state,
    save_training_state,
)
from ._tensors import LoadResult
from ._weights import load_weights, model_config, save

__all__ = [
    "FolderInUseError",
    "LoadResult",
    "TrainingState",
    "exclusive_lock",
    "load_training_state",
    "load_weights",
    "model_config",
    "peek_training_state",
    "read_state_dict",
    "resolve_device",
    "save",
    "save_training_state",
]
