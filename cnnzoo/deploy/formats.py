"""The three formats: trace a module into one, serialise it with its record, and run it back.

* ``onnx``: ``torch.onnx.export(..., dynamo=True)``; the record goes into ``metadata_props``;
  run back in ONNX Runtime.
* ``torchscript``: ``torch.jit.script``; the record is an ``extra_files`` entry.
* ``exported-program``: ``torch.export.export`` saved by ``torch.export.save`` (a ``.pt2``
  archive); the record is an ``extra_files`` entry.

Each is traced with a dynamic batch dimension, so one artifact serves batches of any size.
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from .contract import EXTRA_FILE, INPUT_NAME, KEY, OUTPUT_NAME
from .errors import ExportError, require_onnx

__all__ = ["FORMATS", "Runner", "check_format", "load", "serialize", "trace"]

FORMATS = ("onnx", "torchscript", "exported-program")
SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt", "exported-program": ".pt2"}

# Runs an artifact on a batch (a NumPy array in the artifact's input dtype), giving logits.
Runner = Callable[[np.ndarray], np.ndarray]


def check_format(format: str) -> str:
    """The format, or an error listing the known ones."""
    if format not in FORMATS:
        raise ExportError(f"unknown export format {format!r}; choose one of {', '.join(FORMATS)}")
    if format == "onnx":
        require_onnx("format='onnx'")
    return format


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    # The exporters warn about their own internals (deprecations, opset choices) that a user
    # can do nothing about; cnnzoo checks the result itself instead.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def trace(format: str, module: nn.Module, example: torch.Tensor) -> Any:
    """Capture ``module`` (in eval mode, on the CPU) in ``format``, batch dimension dynamic.

    Returns:
        An ONNX ``ModelProto``, a ``torch.jit.ScriptModule`` or a ``torch.export``
        ``ExportedProgram``.

    Raises:
        ExportError: The exporter refused the model (its message included).
    """
    batch = torch.export.Dim("batch")
    try:
        with _quiet(), torch.no_grad():
            if format == "torchscript":
                return torch.jit.script(module)
            if format == "exported-program":
                return torch.export.export(module, (example,), dynamic_shapes=({0: batch},))
            program = torch.onnx.export(
                module,
                (example,),
                dynamic_shapes=({0: batch},),
                dynamo=True,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                verbose=False,
            )
            assert program is not None
            return program.model_proto
    except ExportError:
        raise
    except Exception as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ExportError(
            f"{format} cannot capture this model ({type(error).__name__}: {first}); try another "
            f"--format (onnx, torchscript or exported-program)"
        ) from error


def serialize(format: str, captured: Any, record: dict[str, Any]) -> bytes:
    """The artifact's bytes, with ``record`` (the data contract, the checks) inside."""
    text = json.dumps(record, sort_keys=True)
    if format == "onnx":
        del captured.metadata_props[:]
        entry = captured.metadata_props.add()
        entry.key, entry.value = KEY, text
        return bytes(captured.SerializeToString())
    buffer = io.BytesIO()
    with _quiet():  # torch.jit.save warns that TorchScript is deprecated: the user chose it
        _save_archive(format, captured, buffer, text)
    return buffer.getvalue()


def _save_archive(format: str, captured: Any, buffer: io.BytesIO, text: str) -> None:
    if format == "torchscript":
        torch.jit.save(captured, buffer, _extra_files={EXTRA_FILE: text})
    else:
        torch.export.save(captured, buffer, extra_files={EXTRA_FILE: text})


def load(format: str, data: bytes, threads: int | None = None) -> Runner:
    """Load an artifact back from its bytes, the way a serving app would, as a :data:`Runner`."""
    if format == "onnx":
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        session = onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])

        def run_onnx(batch: np.ndarray) -> np.ndarray:
            return np.asarray(session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0])

        return run_onnx
    with _quiet():
        if format == "torchscript":
            module = torch.jit.load(io.BytesIO(data), map_location="cpu")
        else:
            module = torch.export.load(io.BytesIO(data)).module()

    def run_torch(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(batch)).float().numpy()

    return run_torch
