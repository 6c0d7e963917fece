"""The checks of a recipe that span several keys (``check_semantics``), run after its types were checked."""

from __future__ import annotations

from typing import Any

from ..metrics import SCALARS
from .recipe_yaml import RecipeError

#: per-class metrics a reported figure may name as ``<metric>:<class>``; ``accuracy_without:<class>``
#: is the accuracy of the full argmax on the rows of every other class (report 002's "7-class accuracy")
PER_CLASS_METRICS = ("precision", "recall", "f1", "accuracy_without")
#: model figures a report may give, compared in their own units: millions of parameters (all or
#: trainable) and 10^9 multiply-accumulates of one forward pass at the run's input size
MODEL_FIGURES = ("params_m", "trainable_params_m", "gmacs")

_CHANNELS = {"rgb": (1, 3), "depth": (1,), "rgbd": (2, 4)}


def check_semantics(r: Any) -> None:
    """What the types alone do not say: one protocol source, channels that fit the modality, positive
    sizes, a normalisation without fixed statistics, known reported metrics, SAM without accumulation.
    ``r`` is a ``recipe.Recipe`` (not imported: that module imports this one)."""
    from ..devices import DeviceError, parse_device

    try:
        r.runtime.device = parse_device(r.runtime.device)
    except DeviceError as exc:
        raise RecipeError(f"runtime.device: {exc}", "runtime.device") from None
    if (r.protocol.name is None) == (r.protocol.manifest is None):
        raise RecipeError("protocol: set exactly one of protocol.name (materialise) and protocol.manifest (a file)")
    if r.protocol.name is not None and not r.data.dirs:
        raise RecipeError("data.dirs is required to materialise protocol.name", "protocol.name")
    if r.input.channels is not None and r.input.channels not in _CHANNELS[r.input.modality]:
        raise RecipeError(f"input.channels={r.input.channels} does not fit modality {r.input.modality} (allowed {_CHANNELS[r.input.modality]})", "input.channels")
    for key in ("epochs", "batch_size", "accum_steps"):
        if getattr(r.train, key) < 1:
            raise RecipeError(f"train.{key} must be at least 1", f"train.{key}")
    if not r.seeds:
        raise RecipeError("seeds must list at least one seed", "seeds")
    if r.input.normalize == "train" and (r.input.mean is not None or r.input.std is not None):
        raise RecipeError("input.normalize=train computes mean/std per fold: leave input.mean and input.std null", "input.normalize")
    if r.hard_samples is not None and (r.hard_samples.epochs < 0 or r.hard_samples.augment_epochs < 1):
        raise RecipeError("hard_samples: epochs must be at least 0 and augment_epochs at least 1", "hard_samples")
    if r.train.val_every is not None and not 0 < r.train.val_every < 1:
        raise RecipeError(f"train.val_every={r.train.val_every}: a fraction of an epoch, between 0 and 1", "train.val_every")
    _check_reported(r.figures(), isinstance(r.reported, list))
    if r.optimizer["name"] == "sam" and r.train.accum_steps != 1:
        raise RecipeError("optimizer sam takes two passes per batch and does not support train.accum_steps > 1", "train.accum_steps")


def _check_reported(figures: list[Any], listed: bool) -> None:
    """Each published figure names a known metric, once per (metric, role)."""
    seen: set[tuple[str, str]] = set()
    for i, fig in enumerate(figures):
        where = f"reported[{i}]" if listed else "reported"
        kind, _, cls = fig.metric.partition(":")
        if fig.metric not in SCALARS + MODEL_FIGURES and not (kind in PER_CLASS_METRICS and cls):
            raise RecipeError(f"{where}.metric: {fig.metric!r} is not one of {list(SCALARS)} nor "
                              f"precision:<class> / recall:<class> / f1:<class> / accuracy_without:<class> / {' / '.join(MODEL_FIGURES)}", f"{where}.metric")
        if (fig.metric, fig.role) in seen:
            raise RecipeError(f"{where}: a second figure for {fig.metric} on {fig.role}", where)
        seen.add((fig.metric, fig.role))
