"""Losses, registered by name: ``LOSSES[name](num_classes, class_counts, **recipe_params) -> nn.Module``.

The first two arguments come from the run (number of classes, training-set count per class);
the keyword-only ones are what a recipe's ``loss:`` section may set. Cross-entropy lives here;
focal, center and island loss in ``losses_metric``. A loss that needs the model's deep features
has an ``attach(model)`` method, which the loop calls before training.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from ..errors import FerbenchError
from ..registry import Registry

#: Loss factories; the metric-learning ones (focal, center, island) register from ``losses_metric``
#: on the first lookup.
LOSSES: Registry[Callable[..., nn.Module]] = Registry("loss", populate=("ferbench.train.losses_metric",))
#: ``@register_loss`` registers a loss factory under its function name.
register_loss = LOSSES.decorator(lambda fn: fn.__name__)


def weights_for(spec: str | Sequence[float] | None, class_counts: Sequence[int]) -> torch.Tensor | None:
    """Per-class loss weights: None, ``inverse`` (1/N_c), ``inverse_sqrt`` (1/sqrt N_c), or explicit values.

    Inverse weights are scaled to mean 1 over the classes present in training.
    """
    if spec is None:
        return None
    counts = torch.tensor(list(class_counts), dtype=torch.float64)
    if isinstance(spec, str):
        power = {"inverse": 1.0, "inverse_sqrt": 0.5}.get(spec)
        if power is None:
            raise FerbenchError(f"loss.class_weights={spec!r}: use inverse, inverse_sqrt, a list, or null")
        present = counts > 0
        w = torch.zeros_like(counts)
        w[present] = counts[present].pow(-power)
        w = w / w[present].mean()
    else:
        w = torch.tensor(list(spec), dtype=torch.float64)
        if len(w) != len(counts):
            raise FerbenchError(f"loss.class_weights has {len(w)} values for {len(counts)} classes")
    return w.float()


@register_loss
def ce(num_classes: int, class_counts: Sequence[int], *, label_smoothing: float = 0.0,
       class_weights: str | list[float] | None = None) -> nn.Module:
    """Cross-entropy, optionally label-smoothed and class-weighted."""
    return nn.CrossEntropyLoss(weight=weights_for(class_weights, class_counts), label_smoothing=label_smoothing)

