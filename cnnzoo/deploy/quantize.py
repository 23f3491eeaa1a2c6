"""int8 static post-training quantization with ONNX Runtime (QDQ, per-channel weights).

The toolchain was chosen by measurement (see docs/deploy.md and ``benchmarks/deploy.py``): on
an AVX2 CPU, ONNX Runtime's static quantization ran ResNet-18 3.8x faster than eager float32
at batch 64, PyTorch's FX graph mode 1.8x; the PT2E flow now lives in ``torchao``, outside
PyTorch. Weights are int8 per output channel, activations uint8 per tensor (``QUInt8`` /
``QInt8``: the pairing ONNX Runtime's CPU kernels are fastest with), calibrated by MinMax on
the calibration images, in the QDQ format (``QuantizeLinear``/``DequantizeLinear`` pairs
around each quantized operator, which every ONNX Runtime execution provider reads).
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ExportError

__all__ = ["MIN_CALIBRATION", "quantize"]

# Fewer images than this give activation ranges that one unusual image can set.
MIN_CALIBRATION = 32
_BATCH = 32
# Operators whose presence makes quantization worth it: the convolutions and linear layers.
_QUANTIZABLE = {"Conv", "Gemm", "MatMul"}


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    # onnxruntime's quantizer logs advice on the root logger and warns about its own internals.
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def quantize(fp32: Any, calibration: np.ndarray, what: str) -> Any:
    """The int8 version of an ONNX model, calibrated on ``calibration``.

    Args:
        fp32: The float32 ``onnx.ModelProto``.
        calibration: The calibration images in the model's input form ``(N, C, H, W)``.
        what: The model's name, for messages.

    Returns:
        The quantized ``onnx.ModelProto``.

    Raises:
        ExportError: Too few calibration images, a model with nothing to quantize, or one the
            quantizer refuses (its message included).
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if len(calibration) < MIN_CALIBRATION:
        raise ExportError(
            f"int8 calibration needs at least {MIN_CALIBRATION} images (a few hundred is "
            f"better); the calibration data gives {len(calibration)}. Pass more images"
        )
    operators = {node.op_type for node in fp32.graph.node}
    if not operators & _QUANTIZABLE:
        raise ExportError(
            f"{what} has no convolution or linear layer ({', '.join(sorted(_QUANTIZABLE))}) "
            "for int8 to speed up; export it in float32 (without int8)"
        )
    name = fp32.graph.input[0].name

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(range(0, len(calibration), _BATCH))

        def get_next(self) -> dict[str, np.ndarray] | None:
            start = next(self.batches, None)
            return None if start is None else {name: calibration[start : start + _BATCH]}

    with tempfile.TemporaryDirectory(prefix="cnnzoo-int8-") as folder, _quiet():
        source, prepared, target = (Path(folder) / n for n in ("f.onnx", "p.onnx", "q.onnx"))
        onnx.save(fp32, str(source))
        try:
            # Shape inference and graph optimisation first, as onnxruntime recommends: BatchNorm
            # folds into the convolutions, so it is quantized with them.
            quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
            quantize_static(
                str(prepared),
                str(target),
                Reader(),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
            )
        except Exception as error:
            raise ExportError(
                f"ONNX Runtime cannot quantize {what} ({type(error).__name__}: {error}); export "
                "it in float32 (without int8)"
            ) from error
        return onnx.load(str(target))
