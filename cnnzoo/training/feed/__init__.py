"""The trainer's data feed: what users pass to fit/evaluate/predict, served batch by batch.

* :mod:`.sources` classifies the data (:func:`resolve`: in-memory tensors, or a ``Dataset`` or
  ``DataLoader`` streamed) and holds out a seeded validation share (:func:`split`);
  :mod:`.forms` reads what is not a tensor yet (NumPy arrays, PIL images, image files);
* :mod:`.pixels` holds the one rule that turns pixels into model inputs (:class:`ModelInput`);
* :mod:`.batches` serves one epoch at a time on the device (:func:`make_batches`): in-memory data
  by index on the device (:class:`DeviceBatches`), anything else through a ``DataLoader``
  (:class:`LoaderBatches`), in an order fixed by ``(seed, epoch)`` (:func:`epoch_order`) and
  sharded across ranks (:class:`Shard`).

Internal to :mod:`cnnzoo.training`; the public datasets are in :mod:`cnnzoo.data`.
"""

from .batches import Batches, DeviceBatches, LoaderBatches, Shard, epoch_order, make_batches
from .forms import ImageReading
from .pixels import DataFacts, ModelInput, Stats
from .sources import InMemory, Source, Streamed, resolve, split, streamed

__all__ = [
    "Batches",
    "DataFacts",
    "DeviceBatches",
    "ImageReading",
    "InMemory",
    "LoaderBatches",
    "ModelInput",
    "Shard",
    "Source",
    "Stats",
    "Streamed",
    "epoch_order",
    "make_batches",
    "resolve",
    "split",
    "streamed",
]
