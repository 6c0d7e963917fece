"""Optimisers and LR schedules, registered by name.

``OPTIMIZERS[name](model, **recipe_params) -> torch.optim.Optimizer``; weight decay is applied to
weight matrices and kernels only (not to biases and normalisation parameters).
``SCHEDULERS[name](optimizer, epochs, steps_per_epoch, **recipe_params) -> Schedule``: a schedule
steps after every optimiser step (``interval="step"``) or after every epoch (``"epoch"``, given the
monitored validation value, higher = better).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn
from torch.optim import lr_scheduler

OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {}
SCHEDULERS: dict[str, Callable[..., "Schedule"]] = {}


def _register(table: dict[str, Callable]) -> Callable[[Callable], Callable]:
    def wrap(fn: Callable) -> Callable:
        table[fn.__name__] = fn
        return fn

    return wrap


register_optimizer = _register(OPTIMIZERS)
register_scheduler = _register(SCHEDULERS)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two groups: decayed (ndim ≥ 2) and not decayed (biases, norms, tokens of ndim < 2)."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


@register_optimizer
def adamw(model: nn.Module, *, lr: float = 1e-3, weight_decay: float = 0.05, beta1: float = 0.9,
          beta2: float = 0.999, eps: float = 1e-8) -> torch.optim.Optimizer:
    return torch.optim.AdamW(param_groups(model, weight_decay), lr=lr, betas=(beta1, beta2), eps=eps)


@register_optimizer
def sgd(model: nn.Module, *, lr: float = 0.01, momentum: float = 0.9, weight_decay: float = 5e-4,
        nesterov: bool = True) -> torch.optim.Optimizer:
    return torch.optim.SGD(param_groups(model, weight_decay), lr=lr, momentum=momentum, nesterov=nesterov and momentum > 0)


@dataclass
class Schedule:
    scheduler: Any
    interval: str  # "step" or "epoch"

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
            min_lr: float = 0.0) -> Schedule:
    """Multiply the LR by ``factor`` when the monitored val value has not improved for ``patience`` epochs."""
    return Schedule(lr_scheduler.ReduceLROnPlateau(optimizer, "max", factor=factor, patience=patience, min_lr=min_lr), "epoch")


@register_scheduler
def onecycle(optimizer, epochs: int, steps_per_epoch: int, *, pct_start: float = 0.3, div_factor: float = 25.0,
             final_div_factor: float = 1e4) -> Schedule:
    """One-cycle policy peaking at the optimiser's LR."""
    max_lr = [g["lr"] for g in optimizer.param_groups]
    sched = lr_scheduler.OneCycleLR(optimizer, max_lr, total_steps=max(1, epochs * steps_per_epoch),
                                    pct_start=pct_start, div_factor=div_factor, final_div_factor=final_div_factor)
    return Schedule(sched, "step")
