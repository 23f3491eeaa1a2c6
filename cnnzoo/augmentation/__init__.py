"""Augmentation and regularisation for ``fit``: named policies, mixup, CutMix, stochastic depth.

- :func:`make_augment`: fit's ``augment`` argument, the per-image crop and flip of
  :mod:`cnnzoo.data.augment` and the named policies of :mod:`~cnnzoo.augmentation.policies`
  (TrivialAugment, RandAugment, random erasing), from torchvision's ``transforms.v2``.
- :class:`BatchMix`: fit's ``mixup`` and ``cutmix``, soft targets for the cross-entropy.
- :func:`stochastic_depth`: fit's ``drop_path_rate``, residual branches dropped while training.

Each works on the batches fit has put on the device and draws its randomness from the run's
seed, so seeded runs repeat exactly. Nothing here imports the models or the training loop.
"""

from .chain import AUGMENT_NAMES, make_augment
from .depth import (
    check_drop_path,
    check_drop_path_rate,
    check_regularisation,
    drop_path_sites,
    stochastic_depth,
)
from .mixing import BatchMix, check_alpha
from .policies import POLICIES, make_policy

__all__ = [
    "AUGMENT_NAMES",
    "POLICIES",
    "BatchMix",
    "check_alpha",
    "check_drop_path",
    "check_drop_path_rate",
    "check_regularisation",
    "drop_path_sites",
    "make_augment",
    "make_policy",
    "stochastic_depth",
]
