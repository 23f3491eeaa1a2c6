"""The trainer's data feed: what users pass to fit/evaluate/predict, served batch by batch.

* :mod:`.sources` classifies the data (:func:`resolve`: in-memory tensors, a ``Dataset`` or a
  ``DataLoader``) and holds out a seeded validation share (:func:`split`);
* :mod:`.batches` serves one epoch at a time on the device (:func:`make_batches`): in-memory data
  by index on the device (:class:`DeviceBatches`), anything else through a ``DataLoader``
  (:class:`LoaderBatches`), in an order fixed by ``(seed, epoch)`` (:func:`epoch_order`) and
  sharded across ranks (:class:`Shard`).

Internal to :mod:`cnnzoo.training`; the public datasets are in :mod:`cnnzoo.data`.
"""

from .batches import Batches, DeviceBatches, LoaderBatches, Shard, epoch_order, make_batches
from .sources import InMemory, Source, resolve, split

__all__ = [
    "Batches",
    "DeviceBatches",
    "InMemory",
    "LoaderBatches",
    "Shard",
    "Source",
    "epoch_order",
    "make_batches",
    "resolve",
    "split",
]
