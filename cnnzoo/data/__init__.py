"""Public datasets for cnnzoo: datasets in memory, augmentations and a model's data contract.

Named datasets and image folders load into memory (:func:`load_dataset`), image folders too
large for it stream from disk (:class:`StreamedImageFolder`); :class:`DataConfig`
is what a model expects of its images, :class:`Normalized` marks data normalised already and
:func:`read_image` reads any image file the way cnnzoo does everywhere and
:func:`resize_pixels` resizes pixels the way ``predict`` resizes an image file.

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
from .budget import BUDGET_ENV, Placement
from .config import DataConfig, channel_stats
from .datasets import DATASETS, DatasetSpec, load_dataset, read_idx, search_paths
from .images import read_image, resize_pixels
from .normalized import Normalized
from .streamed import FolderImageError, StreamedImageFolder
from .tensors import ImageTensorDataset, as_grey

__all__ = [
    "AUGMENTATIONS",
    "BUDGET_ENV",
    "DATASETS",
    "BatchAugment",
    "DataConfig",
    "DatasetSpec",
    "FolderImageError",
    "ImageTensorDataset",
    "Normalized",
    "Placement",
    "StreamedImageFolder",
    "as_grey",
    "channel_stats",
    "hflip",
    "load_dataset",
    "make_augment",
    "random_crop",
    "read_idx",
    "read_image",
    "resize_pixels",
    "search_paths",
]
