"""Sharpness-aware minimisation (SAM, Foret et al., ICLR 2021) around any base optimiser.

One SAM update takes two forward/backward passes on the same batch:

1. gradient g at the weights w; ``first_step`` saves w and moves to w + e with
   e = ρ · g / ||g|| (adaptive SAM, Kwon et al. 2021: e = ρ · w² g / ||w g||);
2. gradient g' at w + e; ``restore`` puts w back exactly (a saved copy, not a subtraction);
   the base optimiser then steps from w with g'.

``sam_step`` runs both passes for the loop. AMP: the first-pass gradients are scaled by the
GradScaler, so ``first_step`` divides by the scale; a non-finite first gradient skips the move, and
the second pass goes through ``scaler.step`` as usual (which skips the update on overflow). DDP: the
first backward runs under ``no_sync()`` (each rank perturbs with its own gradient, as in the SAM
paper's m-sharpness), the second is all-reduced. Batch-norm statistics are only updated by the
first pass, and a loss module with state (center/island loss) is run in eval mode in the second.

``SAM`` is a ``torch.optim.Optimizer`` sharing the base optimiser's parameter groups and state, so
LR schedules and ``state_dict`` work on it as on the base. ``OPTIMIZERS["sam"]`` wraps SGD (report
002's ViT-B/16/SAM: SGD with momentum 0.9) or AdamW. Gradient accumulation is not supported with SAM.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from typing import Any, Callable, Iterator, Literal

import torch
from torch import nn

from ..errors import FerbenchError
from .optim import OPTIMIZERS, register_optimizer

#: one forward pass on the current batch: (logits, loss); the flag is False for SAM's second pass
Forward = Callable[[bool], tuple[torch.Tensor, torch.Tensor]]


class SAM(torch.optim.Optimizer):
    """The two-step SAM update around ``base`` (whose ``step`` does the actual update)."""

    def __init__(self, base: torch.optim.Optimizer, rho: float = 0.05, adaptive: bool = False):
        if rho < 0:
            raise FerbenchError(f"SAM: rho must be >= 0, got {rho}")
        super().__init__(base.param_groups, base.defaults)
        self.base, self.rho, self.adaptive = base, rho, adaptive
        self._share()
        self._saved: dict[torch.Tensor, torch.Tensor] = {}

    def _share(self) -> None:
        self.param_groups, self.state = self.base.param_groups, self.base.state

    def _params(self) -> list[torch.Tensor]:
        return [p for group in self.param_groups for p in group["params"] if p.grad is not None]

    @torch.no_grad()
    def first_step(self, grad_scale: float = 1.0) -> bool:
        """Save w and move to w + e; False (and no move) when the gradient is not finite."""
        params = self._params()
        if not params:
            return False
        weight = [p.abs() if self.adaptive else None for p in params]
        norm = torch.stack([(p.grad if w is None else w * p.grad).norm(2) for p, w in zip(params, weight)]).norm(2)
        norm = norm / grad_scale
        if not torch.isfinite(norm):
            return False
        factor = self.rho / (norm + 1e-12) / grad_scale
        self._saved = {p: p.detach().clone() for p in params}
        for p, w in zip(params, weight):
            p.add_(p.grad * factor if w is None else w * w * p.grad * factor)
        return True

    @torch.no_grad()
    def restore(self) -> None:
        """Put back the weights saved by ``first_step`` (bit-exact)."""
        for p, w in self._saved.items():
            p.copy_(w)
        self._saved = {}

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """The base optimiser's step (call ``restore`` first)."""
        return self.base.step(closure)

    def state_dict(self) -> dict[str, Any]:
        return self.base.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.base.load_state_dict(state_dict)
        self._share()


@contextmanager
def frozen_norm_stats(model: nn.Module) -> Iterator[None]:
    """Batch-norm layers normalise with batch statistics but do not update their running averages."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, momentum in zip(norms, saved):
            m.momentum = momentum


def sam_step(model: nn.Module, optimizer: SAM, scaler: torch.amp.GradScaler, forward: Forward,
             grad_clip: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Both SAM passes and the update on one batch; returns the first pass's (logits, loss)."""
    ddp = isinstance(model, nn.parallel.DistributedDataParallel)
    with model.no_sync() if ddp else nullcontext():
        logits, loss = forward(True)
        scaler.scale(loss).backward()
    optimizer.first_step(scaler.get_scale() if scaler.is_enabled() else 1.0)
    optimizer.zero_grad(set_to_none=True)
    with frozen_norm_stats(model):
        _, second = forward(False)
        scaler.scale(second).backward()
    optimizer.restore()
    if grad_clip is not None:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    return logits, loss


@register_optimizer
def sam(model: nn.Module, *, rho: float = 0.05, adaptive: bool = False, base: Literal["sgd", "adamw"] = "sgd",
        lr: float = 0.01, momentum: float = 0.9, nesterov: bool = False, weight_decay: float = 0.0,
        lr_groups: dict[str, float] | None = None) -> SAM:
    """SAM (radius ``rho``) around SGD (``momentum``, ``nesterov``) or AdamW (default betas)."""
    if base not in ("sgd", "adamw"):
        raise FerbenchError(f"optimizer sam: base must be sgd or adamw, got {base!r}")
    extra = {"momentum": momentum, "nesterov": nesterov} if base == "sgd" else {}
    return SAM(OPTIMIZERS[base](model, lr=lr, weight_decay=weight_decay, lr_groups=lr_groups, **extra), rho, adaptive)
