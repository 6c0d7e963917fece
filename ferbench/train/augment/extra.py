"""More batch augmentations for the report recipes, registered in ``AUGMENTATIONS`` beside the basic ones.

Like every ferbench augmentation they take a float batch in [0, 1] (B, C, H, W) whose first
``n_color`` channels are colour and the rest depth, and a ``torch.Generator`` for every random draw.

* ``randaugment`` — RandAugment (Cubuk et al. 2020) with torchvision.transforms.v2's operation space
  and magnitudes (report 000: N = 2, M = 9, torchvision's implementation). Each sample draws its own
  ``num_ops`` operations and signs; geometric operations (shear, translate, rotate) move colour and
  depth identically, photometric ones (brightness, colour, contrast, sharpness, posterize, solarize,
  autocontrast, equalize) change the colour channels only. Samples that drew the same operation and
  sign are transformed together, so the cost is at most 28 calls per operation slot, whatever the
  batch size. Nearest interpolation and zero fill, torchvision's defaults. The operation table and
  the per-operation code are v2.RandAugment's own (``_AUGMENTATION_SPACE``,
  ``_apply_image_or_video_transform``; private names, checked against torchvision 0.29), so the
  magnitudes are exactly torchvision's; only the sampling is per sample and from our generator.
* ``resized_crop`` — RandomResizedCrop (report 002: then resized to the input size): a crop of
  ``scale_min``-``scale_max`` of the area with aspect ratio in ``ratio_min``-``ratio_max``
  (log-uniform), per sample, resampled bilinearly to the full size in one ``grid_sample``; the same
  crop for colour and depth. Crops that would not fit are clipped to the image side (torchvision
  retries, then falls back to a centre crop).

The sets the reports use are combinations of these and the basic ones (``basic``): report 001's
Keras rotation 20° / shift 0.1 / zoom 0.1 / flip is ``affine`` + ``hflip``; report 003's rotation
≤ 10°, flip, colour jitter (RGB only) and random erasing are ``affine``, ``hflip``, ``color`` and
``erasing``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torchvision.transforms import v2

from ...errors import FerbenchError
from .base import Augment, _rand, register_augmentation

GEOMETRIC = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate")


@register_augmentation
def randaugment(*, num_ops: int = 2, magnitude: int = 9, num_magnitude_bins: int = 31,
                ops: list[str] | None = None) -> Augment:
    """RandAugment(N = ``num_ops``, M = ``magnitude``) per sample; geometric ops shared by colour and
    depth. ``ops`` limits the operation space to some of torchvision's names (null = all 14)."""
    ra = v2.RandAugment(num_ops, magnitude, num_magnitude_bins)
    unknown = sorted(set(ops or ()) - set(ra._AUGMENTATION_SPACE))
    if unknown:
        raise FerbenchError(f"randaugment: unknown ops {unknown}; torchvision's are {list(ra._AUGMENTATION_SPACE)}")
    ops = list(ops or ra._AUGMENTATION_SPACE)

    def apply_op(x: torch.Tensor, op: str, sign: int, n_color: int) -> torch.Tensor:
        bins, signed = ra._AUGMENTATION_SPACE[op]
        values = bins(num_magnitude_bins, x.shape[-2], x.shape[-1])
        m = float(values[magnitude]) if values is not None and values.ndim > 0 else 0.0
        m = -m if signed and sign else m
        if op in GEOMETRIC:
            return ra._apply_image_or_video_transform(x, op, m, interpolation=ra.interpolation, fill=ra._fill)
        if n_color not in (1, 3):  # photometric ops need a 1- or 3-channel colour image
            return x
        color = ra._apply_image_or_video_transform(x[:, :n_color], op, m, interpolation=ra.interpolation, fill=ra._fill)
        return torch.cat([color.clamp(0, 1), x[:, n_color:]], 1)

    def apply(x: torch.Tensor, g: torch.Generator, n_color: int) -> torch.Tensor:
        x = x.clone()
        for _ in range(num_ops):
            op_ids = torch.randint(len(ops), (x.shape[0],), generator=g)
            signs = (torch.rand(x.shape[0], generator=g) < 0.5).long()
            keys = op_ids * 2 + signs
            for key in keys.unique().tolist():
                idx = torch.nonzero(keys == key).flatten().to(x.device)
                x[idx] = apply_op(x.index_select(0, idx), ops[key // 2], key % 2, n_color)
        return x

    return apply


@register_augmentation
def resized_crop(*, scale_min: float = 0.08, scale_max: float = 1.0, ratio_min: float = 3 / 4,
                 ratio_max: float = 4 / 3, p: float = 1.0) -> Augment:
    """A random crop (area fraction, aspect ratio) of each sample, resized to the full size."""

    def apply(x: torch.Tensor, g: torch.Generator, n_color: int) -> torch.Tensor:
        b = x.shape[0]
        on = _rand(g, b, x) < p
        area = scale_min + _rand(g, b, x) * (scale_max - scale_min)
        log_ratio = math.log(ratio_min) + _rand(g, b, x) * (math.log(ratio_max) - math.log(ratio_min))
        ratio = torch.exp(log_ratio)
        w = torch.where(on, torch.sqrt(area * ratio).clamp(max=1.0), torch.ones_like(area))
        h = torch.where(on, torch.sqrt(area / ratio).clamp(max=1.0), torch.ones_like(area))
        cx = (_rand(g, b, x) * 2 - 1) * (1 - w)
        cy = (_rand(g, b, x) * 2 - 1) * (1 - h)
        zero = torch.zeros_like(w)
        theta = torch.stack([torch.stack([w, zero, cx], 1), torch.stack([zero, h, cy], 1)], 1)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)

    return apply
