"""The data contract an artifact carries: what its input is, and how pixels become it.

An exported model is only as good as the preprocessing of the app that serves it, so the
artifact says what it wants: the model's ``pretrained_cfg`` (input size, mean, std,
interpolation, class names) and the form of its input. With ``bake_normalization`` the
scaling and normalisation are part of the graph (:class:`PixelInput`), and a serving app feeds
``uint8`` pixels as they come from an image decoder.

Every format has a place for the record, as one JSON text under the key :data:`KEY`: ONNX's
``metadata_props``, and an ``extra_files`` entry of TorchScript and ``torch.export`` archives.
:func:`read_metadata` reads it back from any of them without running the model.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._version import __version__
from ..data import DataConfig
from .errors import ExportError, require_onnx

__all__ = ["EXTRA_FILE", "KEY", "PixelInput", "complete_config", "contract", "read_metadata"]

KEY = "cnnzoo"
EXTRA_FILE = "cnnzoo.json"  # TorchScript's and torch.export's extra_files entry
INPUT_NAME, OUTPUT_NAME = "input", "logits"


class PixelInput(nn.Module):
    """A model that takes ``uint8`` pixels ``(N, C, H, W)``: the normalisation in the graph.

    The arithmetic is cnnzoo's own (``x / 255``, then ``(x - mean) / std``), so the exported
    graph gives what ``predict`` gives for the same pixels.

    Args:
        model: The classifier, which takes normalised float images.
        mean: Per-channel mean of pixels in [0, 1].
        std: Per-channel standard deviation.
    """

    def __init__(self, model: nn.Module, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.model = model
        self.mean: torch.Tensor
        self.std: torch.Tensor
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Logits for ``uint8`` pixels."""
        x = pixels.to(torch.float32).div(255.0)
        return self.model(x.sub(self.mean).div(self.std))


def complete_config(model: nn.Module, what: str) -> DataConfig:
    """The model's data configuration, refused unless it knows its input size, mean and std.

    Args:
        model: The model.
        what: What needs it, for the message ("export it", "build its transforms").

    Raises:
        ExportError: No configuration, or one without input size or normalisation.
        ValueError: An invalid configuration (:func:`model_data_config` names the problem).
    """
    from ..training.contract import model_data_config

    config = model_data_config(model)
    if config is None or config.input_size is None or config.mean is None or config.std is None:
        raise ExportError(
            "the model has no complete data contract (model.pretrained_cfg with input_size, "
            f"mean and std) to {what}: train it with cnnzoo.fit, load it from a cnnzoo "
            "checkpoint, or set model.pretrained_cfg"
        )
    return config


def contract(config: DataConfig, *, baked: bool, what: str) -> dict[str, Any]:
    """The record an artifact carries (before its verification figures are added).

    Args:
        config: The model's data configuration, with input size, mean and std.
        baked: The normalisation is in the graph (the input is ``uint8`` pixels).
        what: How the model was exported ("onnx", "onnx int8", ...).
    """
    assert config.input_size is not None and config.mean is not None and config.std is not None
    if baked:
        form = {"dtype": "uint8", "values": "pixels 0-255; the graph scales and normalises them"}
    else:
        form = {
            "dtype": "float32",
            "values": "normalised pixels: (pixels / 255 - mean) / std, per channel",
        }
    return {
        "cnnzoo_version": __version__,
        "format": what,
        "input": {
            "name": INPUT_NAME,
            "layout": "NCHW",
            "shape": ["batch", *config.input_size],
            **form,
        },
        "output": {"name": OUTPUT_NAME, "values": "logits; softmax gives probabilities"},
        "data_config": config.to_dict(),
    }


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The record cnnzoo wrote into an exported model: data contract, input form, checks.

    Reads ONNX files (``metadata_props``) and TorchScript or ``torch.export`` archives (their
    ``extra_files`` entry) without running or unpickling anything.

    Args:
        path: An artifact written by :func:`cnnzoo.export`.

    Returns:
        The record: ``data_config``, ``input``, ``output``, ``verification`` and, for int8
        models, ``quantization``.

    Raises:
        FileNotFoundError: No file at ``path``.
        ExportError: The file carries no cnnzoo record (not written by cnnzoo.export).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no exported model at {path}")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith(f"extra/{EXTRA_FILE}")]
            raw = archive.read(names[0]).decode("utf-8") if names else None
    else:
        require_onnx("reading an ONNX model's metadata")
        import onnx

        try:
            model = onnx.load(str(path), load_external_data=False)
        except Exception as error:  # onnx raises DecodeError and others for a file of another kind
            raise ExportError(
                f"{path} is neither an ONNX model nor a TorchScript or torch.export archive "
                f"({type(error).__name__})"
            ) from None
        raw = next((p.value for p in model.metadata_props if p.key == KEY), None)
    if raw is None:
        raise ExportError(
            f"{path} carries no cnnzoo record: it was not written by cnnzoo.export (or "
            "`cnnzoo export`); export the checkpoint with cnnzoo to get one"
        )
    record = json.loads(raw)
    if not isinstance(record, dict):
        raise ExportError(f"{path}: its cnnzoo record is not a JSON object")
    return record
