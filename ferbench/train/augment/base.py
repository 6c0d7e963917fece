"""The augmentation registry and what every augmentation shares.

``AUGMENTATIONS[name](**recipe_params) -> Augment``; an ``Augment`` maps a float batch in [0, 1]
(B, C, H, W) whose first ``n_color`` channels are colour and the rest depth, with a
``torch.Generator`` for every random draw, to the augmented batch.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch

from ...params import component
from ...registry import Registry

Augment = Callable[[torch.Tensor, torch.Generator, int], torch.Tensor]
AUGMENTATIONS: Registry[Callable[..., Augment]] = Registry("augmentation", populate=("ferbench.train.augment",))
#: ``@register_augmentation`` registers an augmentation factory under its function name.
register_augmentation = AUGMENTATIONS.decorator(lambda fn: fn.__name__)


def _rand(g: torch.Generator, n: int, like: torch.Tensor) -> torch.Tensor:
    return torch.rand(n, generator=g).to(like.device, like.dtype)


def build_augment(specs: Sequence[dict[str, Any]]) -> list[Augment]:
    """The augmentations of a recipe's ``augment`` list, in order."""

    return [AUGMENTATIONS[name](**params) for name, params in map(component, specs)]
