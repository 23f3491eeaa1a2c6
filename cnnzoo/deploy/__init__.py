"""From a trained model to a deployed one: export, int8 quantization, and its preprocessing.

* :func:`export`: a model as ONNX, TorchScript or a ``torch.export`` program, with a dynamic
  batch, its data contract written inside (:func:`read_metadata` reads it back), optionally
  its normalisation baked in (``uint8`` pixels in) and int8 weights (ONNX Runtime's static
  quantization); loaded back and checked against the eager model before it is written.
* :func:`transforms`: the model's preprocessing as a torchvision ``transforms.v2`` pipeline,
  for a user's own ``DataLoader`` or serving code.

The ``onnx`` format and int8 need the ``onnx`` extra: ``pip install "cnnzoo[onnx]"``.
"""

from .api import ExportReport, export
from .contract import read_metadata
from .errors import ExportError, MissingExtraError
from .formats import FORMATS
from .preprocess import transforms

__all__ = [
    "FORMATS",
    "ExportError",
    "ExportReport",
    "MissingExtraError",
    "export",
    "read_metadata",
    "transforms",
]
