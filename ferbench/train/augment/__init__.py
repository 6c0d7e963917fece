"""Batch augmentations, registered by name in ``AUGMENTATIONS`` (``base``).

They act on whole batches on the training device, after scaling to [0, 1] and before
normalisation, on all channels at once (so a geometric transform moves RGB and depth alike; colour
changes touch the colour channels only). ``basic``: hflip, affine, color, erasing; ``extra``:
randaugment, resized_crop. A module registers its augmentations by being imported here.
"""

from __future__ import annotations

from . import basic, extra  # noqa: F401  (register the augmentations)
from .base import AUGMENTATIONS, Augment, build_augment, register_augmentation

__all__ = ["AUGMENTATIONS", "Augment", "build_augment", "register_augmentation"]
