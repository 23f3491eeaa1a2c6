"""The errors of the deployment road, and the check for the ``onnx`` extra."""

from __future__ import annotations

import importlib

__all__ = ["ExportError", "MissingExtraError", "require_onnx"]

ONNX_EXTRA = 'pip install "cnnzoo[onnx]"'


class ExportError(ValueError):
    """An export, its check or its quantization was refused; the message says why and the fix."""


class MissingExtraError(ImportError):
    """A format needs a package of an optional extra; the message names the ``pip install``."""


def require_onnx(what: str, *, quantization: bool = False) -> None:
    """Refuse early, with the ``pip install`` to run, when the ``onnx`` extra is missing.

    Args:
        what: What needs it, for the message ("--format onnx").
        quantization: Also need onnxruntime's quantization tools (they import ``onnx``).

    Raises:
        MissingExtraError: onnx, onnxruntime or onnxscript cannot be imported.
    """
    names = ["onnx", "onnxruntime", "onnxscript"]
    if quantization:
        names.append("onnxruntime.quantization")
    missing = []
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise MissingExtraError(
            f"{what} needs {', '.join(missing)}, which is not installed: run {ONNX_EXTRA}"
        )
