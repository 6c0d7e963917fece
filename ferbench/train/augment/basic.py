"""The basic batch augmentations: horizontal flip, affine, colour jitter, random erasing.

All act on whole batches on the training device, after scaling to [0, 1] and before normalisation,
on all channels at once: a geometric transform moves RGB and depth alike; colour changes touch the
colour channels only.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .base import Augment, _rand, register_augmentation


@register_augmentation
def hflip(*, p: float = 0.5) -> Augment:
    """Mirror each image left-right with probability ``p``."""

    def apply(x: torch.Tensor, g: torch.Generator, n_color: int) -> torch.Tensor:
        flip = (_rand(g, x.shape[0], x) < p).view(-1, 1, 1, 1)
        return torch.where(flip, x.flip(-1), x)

    return apply


@register_augmentation
def affine(*, degrees: float = 10.0, translate: float = 0.1, scale_min: float = 0.9, scale_max: float = 1.1,
           p: float = 1.0) -> Augment:
    """Random rotation (±degrees), translation (± fraction of the side) and zoom, one grid_sample per batch."""

    def apply(x: torch.Tensor, g: torch.Generator, n_color: int) -> torch.Tensor:
        b = x.shape[0]
        on = _rand(g, b, x) < p
        angle = (_rand(g, b, x) * 2 - 1) * math.radians(degrees) * on
        scale = 1 / torch.where(on, scale_min + _rand(g, b, x) * (scale_max - scale_min), torch.ones_like(angle))
        shift = (torch.stack([_rand(g, b, x), _rand(g, b, x)], 1) * 2 - 1) * 2 * translate * on[:, None]
        cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
        theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    return apply


@register_augmentation
def color(*, brightness: float = 0.2, contrast: float = 0.2, p: float = 1.0) -> Augment:
    """Random brightness and contrast factors in [1 - v, 1 + v] on the colour channels only."""

    def apply(x: torch.Tensor, g: torch.Generator, n_color: int) -> torch.Tensor:
        if n_color == 0:
            return x
        b = x.shape[0]
        on = (_rand(g, b, x) < p).view(-1, 1, 1, 1)
        bright = 1 + (_rand(g, b, x) * 2 - 1).view(-1, 1, 1, 1) * brightness
        contr = 1 + (_rand(g, b, x) * 2 - 1).view(-1, 1, 1, 1) * contrast
        c = x[:, :n_color]
        mean = c.mean(dim=(1, 2, 3), keepdim=True)
        out = ((c * bright - mean) * contr + mean).clamp(0, 1)
        return torch.cat([torch.where(on, out, c), x[:, n_color:]], 1)

    return apply


@register_augmentation
def erasing(*, p: float = 0.25, area_min: float = 0.02, area_max: float = 0.2) -> Augment:
    """Zero one random rectangle (square-ish, ``area_min``-``area_max`` of the image) with probability ``p``."""

    def apply(x: torch.Tensor, g: torch.Generator, n_color: int) -> torch.Tensor:
        b, _, h, w = x.shape
        on = _rand(g, b, x) < p
        side = torch.sqrt(area_min + _rand(g, b, x) * (area_max - area_min))
        cy, cx = _rand(g, b, x), _rand(g, b, x)
        ys = torch.linspace(0, 1, h, device=x.device, dtype=x.dtype).view(1, h, 1)
        xs = torch.linspace(0, 1, w, device=x.device, dtype=x.dtype).view(1, 1, w)
        half = (side / 2).view(-1, 1, 1)
        box = ((ys - cy.view(-1, 1, 1)).abs() < half) & ((xs - cx.view(-1, 1, 1)).abs() < half) & on.view(-1, 1, 1)
        return x.masked_fill(box[:, None], 0.0)

    return apply
