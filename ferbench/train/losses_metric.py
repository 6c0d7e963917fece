"""Focal, center and island losses, registered in ``LOSSES`` beside cross-entropy.

* ``focal`` (Lin et al., ICCV 2017): mean over the batch of -α_y (1 - p_y)^γ log p_y, where α_y is
  the class weight (``class_weights``: null = 1, ``inverse``, ``inverse_sqrt`` or a list, as for ``ce``).
* ``center`` (Wen et al., ECCV 2016): CE + λ · L_C with L_C = ½ · mean_i ||f_i - c_{y_i}||².
* ``island`` (Cai et al., FG 2018): CE + λ · (L_C + λ_I · L_I) with
  L_I = Σ_j Σ_{k≠j} (cos(c_j, c_k) + 1) over the class centers.

``f_i`` is the deep feature of sample i: the input of the model's classifier (``classifier_of``),
flattened, captured by a forward pre-hook that the loop installs with ``loss.attach(model)``.

**Centers** are a (classes × feature width) buffer of the loss module, drawn from N(0, 1) at the
first training batch (when the feature width is known) and saved in the module's ``state_dict``
(the loop checkpoints it). They are not model parameters and the model's optimiser never sees them:
every training forward pass moves them by one plain SGD step (no momentum) at their own rate
α = ``center_lr``, with the update rule of the papers, on detached features:

    Δc_j = Σ_{i: y_i = j} (c_j - f_i) / (1 + n_j)                         (center term, Wen et al.)
         + λ_I / (K - 1) · Σ_{k≠j} ∂cos(c_j, c_k) / ∂c_j                  (island only, Cai et al.)
    c_j ← c_j - α · Δc_j

Under DDP the per-class feature sums and counts are summed over ranks first, so every rank keeps
the same centers. In eval mode (``loss.eval()``) the centers stay put; SAM's second pass uses that
so one batch moves them once. The island term depends on the centers only, so it adds a constant
to the network's loss (shown in the loss value) and acts through the center update.

Report 003 (CalD3r/MenD3s, BU-3DFE, Global) and its companion loss code: λ = 1e-2, λ_I = 10,
centers learnt by SGD at α = 0.5. The report's text and code disagree, so both forms exist
(``form``): ``cai`` (default) is Cai et al.'s, λ_I inside the island loss and λ_I/(K - 1) in the
update, which matches the companion code's λ_global · (L_C + λ_island · L_I); ``thesis`` is the
text's Eq. 2.19, CE + λ1·L_C + λ2·L_I (λ1 = ``weight``, λ2 = ``island_weight``), with Eq. 2.21's
island update normalised by 1/(1 + K) and no λ.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.hooks import RemovableHandle

from ..errors import FerbenchError
from .losses import ce, register_loss, weights_for


def classifier_of(model: nn.Module) -> nn.Module:
    """The module whose input is the deep feature: timm's ``get_classifier()``, else ``head``, else the last Linear."""
    get = getattr(model, "get_classifier", None)
    if callable(get) and isinstance(get(), nn.Module):
        return get()
    head = getattr(model, "head", None)
    if isinstance(head, nn.Module):
        return head
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise FerbenchError(f"{type(model).__name__} has no classifier (head / get_classifier() / nn.Linear) to take features from")
    return linears[-1]


class FocalLoss(nn.Module):
    """-α_y (1 - p_y)^γ log p_y, averaged over the batch."""

    def __init__(self, gamma: float, alpha: torch.Tensor | None):
        super().__init__()
        self.gamma = gamma
        self.register_buffer("alpha", alpha)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logp = F.log_softmax(logits, dim=1).gather(1, labels[:, None]).squeeze(1)
        loss = -(1 - logp.exp()).pow(self.gamma) * logp
        if self.alpha is not None:
            loss = loss * self.alpha[labels]
        return loss.mean()


def island_gradient(centers: torch.Tensor) -> torch.Tensor:
    """Σ_{k≠j} ∂cos(c_j, c_k)/∂c_j for every class j, i.e. Σ_{k≠j} (u_k - cos_jk u_j) / ||c_j||."""
    norm = centers.norm(dim=1, keepdim=True).clamp_min(1e-12)
    unit = centers / norm
    cos = unit @ unit.T
    return ((unit.sum(0, keepdim=True) - unit) - (cos.sum(1, keepdim=True) - 1) * unit) / norm


def island_term(centers: torch.Tensor) -> torch.Tensor:
    """Σ_j Σ_{k≠j} (cos(c_j, c_k) + 1)."""
    unit = F.normalize(centers, dim=1)
    cos = unit @ unit.T
    k = centers.shape[0]
    return (cos.sum() - cos.diagonal().sum()) + k * (k - 1)


#: the island loss as Cai et al. / the companion code write it, or as report 003's Eqs. 2.19 and 2.21
ISLAND_FORMS = ("cai", "thesis")


class CenterLoss(nn.Module):
    """CE + λ (L_C + λ_I L_I) with centers kept here and stepped by their own SGD (see the module docstring).

    ``island_weight = 0`` gives the center loss alone.
    """

    def __init__(self, num_classes: int, ce_loss: nn.Module, weight: float, center_lr: float, island_weight: float = 0.0,
                 form: str = "cai"):
        super().__init__()
        if num_classes < 2 and island_weight:
            raise FerbenchError("island loss needs at least two classes")
        if form not in ISLAND_FORMS:
            raise FerbenchError(f"island loss: form {form!r} is not one of {', '.join(ISLAND_FORMS)}")
        self.num_classes, self.weight, self.center_lr, self.island_weight = num_classes, weight, center_lr, island_weight
        self.form = form
        self.ce = ce_loss
        self.register_buffer("centers", torch.empty(0))
        self._features: torch.Tensor | None = None

    def attach(self, model: nn.Module) -> RemovableHandle:
        """Capture the input of ``model``'s classifier on every forward pass (remove the handle when done)."""

        def keep(module: nn.Module, args: tuple) -> None:
            self._features = args[0]

        return classifier_of(model).register_forward_pre_hook(keep)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self._features is None:
            raise FerbenchError("center/island loss: call loss.attach(model) before training, so it sees the features")
        feats = self._features.flatten(1).float()
        if self.centers.numel() == 0:
            self.centers = torch.randn(self.num_classes, feats.shape[1], device=feats.device)
        if self.centers.shape[1] != feats.shape[1]:
            raise FerbenchError(f"features are {feats.shape[1]}-wide but the centers {self.centers.shape[1]}-wide")
        centers = self.centers
        compact = 0.5 * (feats - centers[labels]).pow(2).sum(1).mean()
        if self.form == "thesis":  # Eq. 2.19: CE + λ1 L_C + λ2 L_I
            loss = self.ce(logits, labels) + self.weight * compact + self.island_weight * island_term(centers)
        else:
            metric = compact + self.island_weight * island_term(centers) if self.island_weight else compact
            loss = self.ce(logits, labels) + self.weight * metric
        if self.training:
            self.step_centers(feats.detach(), labels)
        return loss

    @torch.no_grad()
    def step_centers(self, feats: torch.Tensor, labels: torch.Tensor) -> None:
        """One SGD step of the centers at ``center_lr`` towards their classes' batch features."""
        sums = torch.zeros_like(self.centers).index_add_(0, labels, feats)
        counts = torch.bincount(labels, minlength=self.num_classes).to(feats.dtype)
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            packed = torch.cat([sums, counts[:, None]], 1)
            dist.all_reduce(packed)
            sums, counts = packed[:, :-1], packed[:, -1]
        delta = (counts[:, None] * self.centers - sums) / (1 + counts[:, None])
        if self.island_weight:
            scale = 1 / (1 + self.num_classes) if self.form == "thesis" else self.island_weight / (self.num_classes - 1)
            delta += scale * island_gradient(self.centers)
        self.centers.sub_(self.center_lr * delta)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        saved = state_dict.get(prefix + "centers")
        if saved is not None and saved.shape != self.centers.shape:
            self.centers = torch.empty_like(saved, device=self.centers.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


@register_loss
def focal(num_classes: int, class_counts: Sequence[int], *, gamma: float = 2.0,
          class_weights: str | list[float] | None = None) -> nn.Module:
    """Focal loss; γ = 0 without class weights is cross-entropy."""
    return FocalLoss(gamma, weights_for(class_weights, class_counts))


@register_loss
def center(num_classes: int, class_counts: Sequence[int], *, weight: float = 1e-2, center_lr: float = 0.5,
           label_smoothing: float = 0.0, class_weights: str | list[float] | None = None) -> nn.Module:
    """Cross-entropy + ``weight`` × center loss; centers stepped at ``center_lr``."""
    base = ce(num_classes, class_counts, label_smoothing=label_smoothing, class_weights=class_weights)
    return CenterLoss(num_classes, base, weight, center_lr)


@register_loss
def island(num_classes: int, class_counts: Sequence[int], *, weight: float = 1e-2, island_weight: float = 10.0,
           center_lr: float = 0.5, label_smoothing: float = 0.0,
           class_weights: str | list[float] | None = None, form: str = "cai") -> nn.Module:
    """Cross-entropy + ``weight`` × (center loss + ``island_weight`` × island loss) (``form: cai``) or
    CE + ``weight`` × center + ``island_weight`` × island (``form: thesis``); centers stepped at ``center_lr``."""
    base = ce(num_classes, class_counts, label_smoothing=label_smoothing, class_weights=class_weights)
    return CenterLoss(num_classes, base, weight, center_lr, island_weight, form)
