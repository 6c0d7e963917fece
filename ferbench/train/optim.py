"""Optimisers and LR schedules, registered by name.

``OPTIMIZERS[name](model, **recipe_params) -> torch.optim.Optimizer``; weight decay is applied to
weight matrices and kernels only (not to biases and normalisation parameters). ``lr_groups`` gives
parameters their own learning rate by name prefix, e.g. ``{"trunks.": 1.0e-4}`` (backbone) beside
the optimiser's ``lr`` (head); the longest matching prefix wins. SAM (``sam``) lives in ``sam.py``.
``SCHEDULERS[name](optimizer, epochs, steps_per_epoch, **recipe_params) -> Schedule``: a schedule
steps after every optimiser step (``interval="step"``) or after every epoch (``"epoch"``, given the
monitored validation value, higher = better; ``Schedule.monitor`` names another val metric).
A schedule scales each parameter group from its own learning rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
import typing
from typing import Any, Callable, Literal

import torch
from torch import nn
from torch.optim import lr_scheduler

from ..errors import FerbenchError
from ..registry import Registry

MONITORS = Literal["balanced_accuracy", "accuracy", "macro_f1", "loss"]
#: Optimiser factories; ``sam`` registers from its own module on the first lookup.
OPTIMIZERS: Registry[Callable[..., torch.optim.Optimizer]] = Registry("optimizer", populate=("ferbench.train.sam",))
SCHEDULERS: Registry[Callable[..., "Schedule"]] = Registry("scheduler")
#: ``@register_optimizer`` / ``@register_scheduler`` register a factory under its function name.
register_optimizer = OPTIMIZERS.decorator(lambda fn: fn.__name__)
register_scheduler = SCHEDULERS.decorator(lambda fn: fn.__name__)


def param_groups(model: nn.Module, weight_decay: float, lr_groups: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """Decayed (ndim ≥ 2) and not decayed (biases, norms, tokens of ndim < 2) groups, once for the
    optimiser's own lr and once per ``lr_groups`` prefix (with that lr); empty groups are left out."""
    prefixes = sorted(lr_groups or {}, key=len, reverse=True)
    groups: dict[tuple[str | None, bool], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            prefix = next((x for x in prefixes if name.startswith(x)), None)
            groups.setdefault((prefix, p.ndim >= 2), []).append(p)
    unused = [x for x in prefixes if not any(key[0] == x for key in groups)]
    if unused:
        raise FerbenchError(f"optimizer.lr_groups: {unused} match no trainable parameter name")
    out = []
    for (prefix, decay), params in sorted(groups.items(), key=lambda kv: (kv[0][0] or "", not kv[0][1])):
        group: dict[str, Any] = {"params": params, "weight_decay": weight_decay if decay else 0.0}
        if prefix is not None:
            group["lr"] = float(lr_groups[prefix])
        out.append(group)
    return out


@register_optimizer
def adamw(model: nn.Module, *, lr: float = 1e-3, weight_decay: float = 0.05, beta1: float = 0.9,
          beta2: float = 0.999, eps: float = 1e-8, lr_groups: dict[str, float] | None = None) -> torch.optim.Optimizer:
    return torch.optim.AdamW(param_groups(model, weight_decay, lr_groups), lr=lr, betas=(beta1, beta2), eps=eps)


@register_optimizer
def sgd(model: nn.Module, *, lr: float = 0.01, momentum: float = 0.9, weight_decay: float = 5e-4,
        nesterov: bool = True, lr_groups: dict[str, float] | None = None) -> torch.optim.Optimizer:
    return torch.optim.SGD(param_groups(model, weight_decay, lr_groups), lr=lr, momentum=momentum,
                           nesterov=nesterov and momentum > 0)


@dataclass
class Schedule:
    scheduler: Any
    interval: str  # "step" or "epoch"
    monitor: str | None = None  # the val metric an epoch schedule follows; None = the recipe's train.monitor

    def step(self, monitored: float | None = None) -> None:
        if isinstance(self.scheduler, lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(monitored)
        else:
            self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scheduler.load_state_dict(state)


@register_scheduler
def constant(optimizer, epochs: int, steps_per_epoch: int) -> Schedule:
    return Schedule(lr_scheduler.LambdaLR(optimizer, lambda _: 1.0), "epoch")


@register_scheduler
def cosine(optimizer, epochs: int, steps_per_epoch: int, *, warmup_epochs: float = 0.0,
           min_lr_ratio: float = 0.0) -> Schedule:
    """Linear warm-up, then cosine decay to ``min_lr_ratio`` × lr at the last step."""
    total = max(1, epochs * steps_per_epoch)
    warm = int(round(warmup_epochs * steps_per_epoch))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        t = min(1.0, (step - warm) / max(1, total - warm))
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t))

    return Schedule(lr_scheduler.LambdaLR(optimizer, factor), "step")


@register_scheduler
def step(optimizer, epochs: int, steps_per_epoch: int, *, step_epochs: int = 30, gamma: float = 0.1) -> Schedule:
    """Multiply the LR by ``gamma`` every ``step_epochs`` epochs."""
    return Schedule(lr_scheduler.StepLR(optimizer, step_epochs, gamma), "epoch")


@register_scheduler
def plateau(optimizer, epochs: int, steps_per_epoch: int, *, factor: float = 0.1, patience: int = 5,
            min_lr: float = 0.0, monitor: MONITORS | None = None) -> Schedule:
    """Multiply the LR by ``factor`` when the val ``monitor`` (null = ``train.monitor``) has not improved
    for ``patience`` epochs."""
    if monitor not in (None, *typing.get_args(MONITORS)):
        raise FerbenchError(f"scheduler plateau: monitor must be one of {typing.get_args(MONITORS)} or null, got {monitor!r}")
    sched = lr_scheduler.ReduceLROnPlateau(optimizer, "max", factor=factor, patience=patience, min_lr=min_lr)
    return Schedule(sched, "epoch", monitor)


@register_scheduler
def onecycle(optimizer, epochs: int, steps_per_epoch: int, *, pct_start: float = 0.3, div_factor: float = 25.0,
             final_div_factor: float = 1e4, min_lr: float | None = None) -> Schedule:
    """One-cycle policy peaking at each group's LR; ``min_lr`` (if set) is every group's start and end LR
    instead of lr / div_factor and lr / (div_factor × final_div_factor)."""
    max_lr = [g["lr"] for g in optimizer.param_groups]
    sched = lr_scheduler.OneCycleLR(optimizer, max_lr, total_steps=max(1, epochs * steps_per_epoch),
                                    pct_start=pct_start, div_factor=div_factor, final_div_factor=final_div_factor)
    if min_lr is not None:
        for group in optimizer.param_groups:  # OneCycleLR reads its phase ends from these keys every step
            group["initial_lr"] = group["min_lr"] = group["lr"] = min_lr
    return Schedule(sched, "step")

