"""Samplers, registered by name: ``SAMPLERS[name](train_labels, **recipe_params) -> Sampler``.

A sampler gives each epoch's order of training indices (positions into the labels it was built
from) from a ``numpy.random.Generator`` seeded per (seed, epoch); ``loader.Loader`` pads and strides
it over ranks.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..registry import Registry

Sampler = Callable[[np.random.Generator], np.ndarray]
SAMPLERS: Registry[Callable[..., Sampler]] = Registry("sampler")
#: ``@register_sampler`` registers a sampler factory under its function name.
register_sampler = SAMPLERS.decorator(lambda fn: fn.__name__)


@register_sampler
def random(labels: np.ndarray) -> Sampler:
    """Every training sample once per epoch, shuffled."""
    return lambda rng: rng.permutation(len(labels))


def inverse_frequency(labels: np.ndarray) -> np.ndarray:
    """Per-sample weight 1/N_c (N_c = the count of the sample's class)."""
    return 1.0 / np.bincount(labels)[labels]


@register_sampler
def class_balanced(labels: np.ndarray, *, replacement: bool = True, epoch_factor: float = 1.0) -> Sampler:
    """``epoch_factor`` × as many draws as samples, each sample weighted 1/N_c, so every class is
    equally likely; oversamples rare classes (report 000: epoch_factor 2, as PyTorch's
    WeightedRandomSampler with num_samples = 2 × the training set)."""
    p = inverse_frequency(labels)
    p = p / p.sum()
    size = max(1, round(epoch_factor * len(labels)))
    return lambda rng: rng.choice(len(labels), size=size, replace=replacement, p=p)


@register_sampler
def sequential(labels: np.ndarray) -> Sampler:
    """Manifest order, every epoch (for debugging and benchmarks)."""
    return lambda rng: np.arange(len(labels))
