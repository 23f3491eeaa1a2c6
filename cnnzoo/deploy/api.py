"""``cnnzoo.export``: write a trained model as a deployable artifact, checked before it lands.

The road: capture the model (dynamic batch), optionally quantize it to int8, write the data
contract into it, load the artifact back and run it against the eager model, and only then put
it at ``path`` (atomically: a failed check leaves nothing, an interrupted write leaves the old
file).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .._files import kind_of
from .._progress import Counter
from ..data import DataConfig
from .contract import PixelInput, complete_config, contract
from .errors import ExportError, require_onnx
from .formats import check_format, load, serialize, trace
from .quantize import MIN_CALIBRATION, quantize
from .verify import accuracy, compare, run_batched

__all__ = ["ExportReport", "check_destination", "export"]

SAMPLE = 16  # random images the logits are compared on
HELD_OUT = 1000  # at most this many held-out images measure the int8 accuracy


@dataclass
class ExportReport:
    """What :func:`export` wrote and what its check found.

    Attributes:
        path: The artifact.
        format: "onnx", "torchscript" or "exported-program".
        int8: The model was quantized.
        max_abs_diff: Largest difference between the artifact's and the eager model's logits.
        top1_agreement: Share of the check's images whose most likely class agrees.
        samples: How many images the logits were compared on.
        accuracy: int8 only: ``{"fp32": ..., "int8": ..., "images": n, "on": ...}``.
        record: Everything written into the artifact (see :func:`read_metadata`).
    """

    path: Path
    format: str
    int8: bool
    max_abs_diff: float
    top1_agreement: float
    samples: int
    accuracy: dict[str, Any] | None = None
    record: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [
            f"wrote {self.path} ({self.format}{', int8' if self.int8 else ''})",
            f"check against the eager model on {self.samples} images: max abs logit diff "
            f"{self.max_abs_diff:.3g}, top-1 agreement {self.top1_agreement:.1%}",
        ]
        if self.accuracy is not None:
            a = self.accuracy
            lines.append(
                f"accuracy on {a['images']} {a['on']} images: fp32 {a['fp32']:.4f}, int8 "
                f"{a['int8']:.4f} ({(a['int8'] - a['fp32']) * 100:+.2f} points)"
            )
        return "\n".join(lines)


def export(
    model: nn.Module,
    path: str | os.PathLike,
    format: str = "onnx",
    *,
    bake_normalization: bool = False,
    int8: bool = False,
    calibration: Any = None,
    test: Any = None,
    calibration_images: int = 256,
    tolerance: float = 1e-4,
    max_accuracy_drop: float = 0.01,
    overwrite: bool = False,
    verbose: int = 1,
) -> ExportReport:
    """Export a trained model with its data contract, check it, and write it atomically.

    Args:
        model: A cnnzoo classifier whose ``pretrained_cfg`` knows its input size, mean and std
            (``fit`` records them).
        path: Where to write the artifact.
        format: "onnx" (ONNX Runtime and every other ONNX runner; needs the ``onnx`` extra),
            "torchscript" (``torch.jit.load``) or "exported-program" (``torch.export.load``).
        bake_normalization: Put the scaling and normalisation into the graph, so the artifact
            takes ``uint8`` pixels ``(N, C, H, W)`` as an image decoder gives them; otherwise
            it takes float32 normalised images.
        int8: Quantize to int8 (static, ONNX Runtime; ``format="onnx"`` only).
        calibration: int8: the calibration images: anything ``fit`` takes (an ``(images,
            labels)`` pair, a ``Dataset``, a ``DataLoader``...). Without ``test``, a share is
            held out to measure the accuracy of float32 and int8, so it needs labels.
        test: int8: labelled data to measure the accuracy on instead.
        calibration_images: int8: how many images calibrate (drawn at random, seeded).
        tolerance: float32 check: the largest logit difference allowed, relative to the
            largest logit (at least 1).
        max_accuracy_drop: int8 check: the most accuracy int8 may lose (0.01: one point).
        overwrite: Replace an existing file at ``path``.
        verbose: 1 shows the stages of an export that takes more than a few seconds (reading
            the int8 data, capturing the graph, quantizing, checking, writing): a bar on a
            terminal or in a notebook, else a line at each stage after 10 seconds; 0 nothing.

    Returns:
        An :class:`ExportReport` (``print`` it for the figures), also stored in the artifact.

    Raises:
        ExportError: An unknown format, a model without data contract, an existing ``path``,
            bad calibration data, or a check that failed (with its figures).
        MissingExtraError: ``format="onnx"`` or ``int8`` without the ``onnx`` extra.

    Example:
        >>> report = cnnzoo.export(model, "model.onnx", bake_normalization=True)  # doctest: +SKIP
        >>> print(report)  # doctest: +SKIP
    """
    from ..training.contract import check_classifier

    check_format(format)
    if int8:
        if format != "onnx":
            raise ExportError(
                f"int8 quantization is done with ONNX Runtime: use format='onnx', not {format!r}"
            )
        require_onnx("int8 quantization", quantization=True)
        if calibration is None:
            raise ExportError(
                "int8 needs calibration images: pass calibration= (--calibration DATA)"
            )
    if not tolerance > 0 or not 0 <= max_accuracy_drop <= 1:
        raise ExportError(
            f"tolerance must be > 0 and max_accuracy_drop in [0, 1], got {tolerance} and "
            f"{max_accuracy_drop}"
        )
    path = check_destination(path, overwrite)
    check_classifier(model, "export")
    config = complete_config(model, "export it")
    assert config.input_size is not None and config.mean is not None and config.std is not None
    eager = copy.deepcopy(model).cpu().eval()
    module = PixelInput(eager, config.mean, config.std).eval() if bake_normalization else eager
    pixels = torch.randint(
        0,
        256,
        (SAMPLE, *config.input_size),
        dtype=torch.uint8,
        generator=torch.Generator().manual_seed(0),
    )
    normalized = pixels.float().div(255).sub(_stat(config.mean)).div(_stat(config.std))
    example = torch.from_numpy(_feed(normalized[:2], config, bake_normalization))

    stages = 5 if int8 else 3
    with Counter(f"exporting {path.name}", stages, unit="stage", verbose=verbose) as progress:
        data = None
        if int8:
            data = _int8_data(eager, config.input_size, calibration, test, calibration_images)
            progress.update(1, "int8 data read")
        captured = trace(format, module, example)
        progress.update(1, f"{format} graph captured")
        what = format
        if data is not None:
            calib = _feed(data["calibration"], config, bake_normalization)
            captured = quantize(captured, calib, type(model).__name__)
            what = "onnx int8"
            progress.update(1, f"quantized on {len(calib)} images")
        record = contract(config, baked=bake_normalization, what=what)
        run = load(format, serialize(format, captured, record))
        with torch.inference_mode():
            inputs = normalized if data is None else data["held_out"]
            reference = torch.cat([eager(b) for b in inputs.split(64)]).float().numpy()
        got = run_batched(run, _feed(inputs, config, bake_normalization))
        figures = compare(reference, got)
        progress.update(1, f"checked on {len(inputs)} images")
        report = ExportReport(
            path,
            format,
            int8,
            figures["max_abs_diff"],
            figures["top1_agreement"],
            int(figures["samples"]),
        )
        record["verification"] = {
            **figures,
            "tolerance": tolerance,
            "max_accuracy_drop": max_accuracy_drop,
        }
        if data is None:
            _check_logits(figures, tolerance, format)
        else:
            report.accuracy = _check_accuracy(reference, got, data, max_accuracy_drop)
            record["quantization"] = {
                "toolchain": "onnxruntime static QDQ, per-channel int8 weights, uint8 activations",
                "calibration_images": len(data["calibration"]),
                "accuracy": report.accuracy,
            }
        report.record = record
        _write(path, serialize(format, captured, record))
        progress.update(1, "written")
    return report


def _check_logits(figures: dict[str, Any], tolerance: float, format: str) -> None:
    """Refuse a float artifact whose logits stray beyond ``tolerance`` (x the logit scale)."""
    scale = max(1.0, figures["logit_scale"])
    if not figures["max_abs_diff"] <= tolerance * scale:
        raise ExportError(
            f"the {format} artifact does not reproduce the model: max abs logit diff "
            f"{figures['max_abs_diff']:.3g} > {tolerance * scale:.3g} (tolerance {tolerance} x "
            f"logit scale {scale:.3g}), top-1 agreement {figures['top1_agreement']:.1%} on "
            f"{figures['samples']} images; nothing was written. Try another format, or a larger "
            "tolerance if the difference is acceptable"
        )


def _check_accuracy(
    reference: np.ndarray, got: np.ndarray, data: dict[str, Any], max_drop: float
) -> dict[str, Any]:
    """The accuracy of float32 and int8; refused when int8 loses more than ``max_drop``."""
    labels = data["labels"]
    fp32, int8 = accuracy(reference, labels), accuracy(got, labels)
    if fp32 - int8 > max_drop:
        raise ExportError(
            f"int8 loses too much accuracy: {fp32:.4f} in float32, {int8:.4f} in int8 on "
            f"{len(labels)} {data['on']} images ({(int8 - fp32) * 100:+.2f} points, more than "
            f"max_accuracy_drop={max_drop}); nothing was written. Calibrate on more (and more "
            "typical) images, or export in float32"
        )
    return {"fp32": fp32, "int8": int8, "images": len(labels), "on": data["on"]}


def check_destination(path: str | os.PathLike, overwrite: bool) -> Path:
    """``path`` as a ``Path``; refused when something stands there (a file: unless overwrite)."""
    path = Path(path)
    if path.exists() or path.is_symlink():
        if not path.is_file():
            raise ExportError(f"{path} is {kind_of(path)}; give a file name to write the model to")
        if not overwrite:
            raise ExportError(
                f"{path} exists; choose another path, or pass overwrite=True (--overwrite) to "
                "replace it"
            )
    return path


def _write(path: Path, data: bytes) -> None:
    from ..checkpoint._io import atomic_write

    with atomic_write(path, "wb") as f:
        f.write(data)


def _stat(values: tuple[float, ...]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32).view(1, -1, 1, 1)


def _feed(inputs: torch.Tensor, config: DataConfig, baked: bool) -> np.ndarray:
    """Model inputs (normalised floats) in the artifact's input form: the same, or the pixels."""
    if not baked:
        return inputs.float().numpy()
    assert config.mean is not None and config.std is not None
    pixels = inputs.mul(_stat(config.std)).add(_stat(config.mean)).mul(255)
    return pixels.round().clamp(0, 255).to(torch.uint8).numpy()


def _int8_data(
    model: nn.Module, size: tuple[int, ...], calibration: Any, test: Any, images: int
) -> dict[str, Any]:
    """The calibration images, and the labelled held-out (or test) images with their labels."""
    if not isinstance(images, int) or images < MIN_CALIBRATION:
        raise ExportError(
            f"calibration_images must be an integer >= {MIN_CALIBRATION}, got {images!r}"
        )
    need = images if test is not None else images + HELD_OUT
    inputs, labels = _read(model, size, calibration, need, "calibration data")
    if test is not None:
        held, held_labels = _read(model, size, test, HELD_OUT, "test data")
        on = "test"
        if held_labels is None:
            raise ExportError(
                "the test data has no labels: pass (images, labels) or a labelled dataset"
            )
    else:
        if labels is None:
            raise ExportError(
                "the calibration data has no labels, so no share of it can measure the int8 "
                "accuracy: pass labelled calibration data, or labelled test data (test=, --test)"
            )
        count = min(images, len(inputs) * 4 // 5)  # keep at least a fifth for the accuracy
        held, held_labels = inputs[count:], labels[count:]
        inputs, on = inputs[:count], "held-out calibration"
        if len(held) < MIN_CALIBRATION:
            count = len(held) + len(inputs)
            raise ExportError(
                f"the calibration data has {count} images: too few to calibrate on at least "
                f"{MIN_CALIBRATION} and measure the accuracy on at least {MIN_CALIBRATION} others "
                "(a fifth is held out); pass more images, or labelled test data (test=, --test)"
            )
    if len(inputs) < MIN_CALIBRATION:
        raise ExportError(
            f"int8 calibration needs at least {MIN_CALIBRATION} images (a few hundred is "
            f"better); the calibration data gives {len(inputs)}. Pass more images"
        )
    return {"calibration": inputs, "held_out": held, "labels": held_labels, "on": on}


def _read(
    model: nn.Module, size: tuple[int, ...], data: Any, limit: int, what: str
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``data`` as the model's inputs (``predict``'s reading), refused when it does not fit."""
    from ..training.inputs import sample_inputs

    try:
        inputs, labels = sample_inputs(model, data, limit)
    except (ValueError, TypeError) as error:
        message = str(error).removeprefix("data: ").removeprefix("data ")
        raise ExportError(f"{what}: {message}") from None
    expected = tuple(size)
    if tuple(inputs.shape[1:]) != expected:
        raise ExportError(
            f"{what}: the images are {'x'.join(map(str, inputs.shape[1:]))} (channels x height "
            f"x width) but the model takes {'x'.join(map(str, expected))}; give images with "
            f"{expected[0]} channel(s) at {expected[1]}x{expected[2]}"
        )
    return inputs, labels
