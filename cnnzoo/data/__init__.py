"""Public datasets for cnnzoo: named datasets and image folders in memory, batch augmentations.

How ``fit`` feeds them to the device (validation splits, on-device batches, DataLoaders) is the
trainer's business, not this package's.

Example:
    >>> from cnnzoo.data import load_dataset
    >>> train = load_dataset("fashion-mnist", "train")
    >>> test = load_dataset("fashion-mnist", "test")
    >>> train.classes[:2], train.mean, train.std
    (['T-shirt/top', 'Trouser'], (0.286,), (0.353,))
"""

from .augment import AUGMENTATIONS, BatchAugment, hflip, make_augment, random_crop
from .datasets import DATASETS, DatasetSpec, load_dataset, read_idx, search_paths
from .tensors import ImageTensorDataset

__all__ = [
    "AUGMENTATIONS",
    "DATASETS",
    "BatchAugment",
    "DatasetSpec",
    "ImageTensorDataset",
    "hflip",
    "load_dataset",
    "make_augment",
    "random_crop",
    "read_idx",
    "search_paths",
]
