"""Data for cnnzoo: in-memory datasets, splits, on-device batches and batch augmentation.

Example:
    >>> from cnnzoo.data import load_dataset
    >>> train = load_dataset("fashion-mnist", "train")
    >>> test = load_dataset("fashion-mnist", "test")
    >>> train.classes[:2], train.mean, train.std
    (['T-shirt/top', 'Trouser'], (0.286,), (0.353,))
"""

from .augment import AUGMENTATIONS, hflip, make_augment, random_crop
from .batches import Batches, DeviceBatches, LoaderBatches, Shard, epoch_order, make_batches
from .datasets import (
    DATASETS,
    DatasetSpec,
    ImageTensorDataset,
    load_dataset,
    read_idx,
    search_paths,
)
from .sources import InMemory, resolve, split

__all__ = [
    "AUGMENTATIONS",
    "DATASETS",
    "Batches",
    "DatasetSpec",
    "DeviceBatches",
    "ImageTensorDataset",
    "InMemory",
    "LoaderBatches",
    "Shard",
    "epoch_order",
    "hflip",
    "load_dataset",
    "make_augment",
    "make_batches",
    "random_crop",
    "read_idx",
    "resolve",
    "search_paths",
    "split",
]
