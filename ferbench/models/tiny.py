"""Tiny models for CI and the CPU demo: a 4-stage CNN and a 2-block ViT, both channel-agnostic.

Neither has published weights (``pretrained=True`` fails, pointing to ``checkpoint=``). On 64×64
faces they train in seconds per epoch on two CPU cores and learn well above chance.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._registry import no_pretrained_weights, register_model

_CFG = dict(
    input_size=(3, 64, 64),
    mean=(0.5, 0.5, 0.5),
    std=(0.25, 0.25, 0.25),
    modalities=("rgb", "depth", "rgbd"),
    paper=None,
    license="Apache-2.0",
)


def _conv_bn(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class TinyCNN(nn.Module):
    """Conv-BN-ReLU stages with 2× pooling between them, global average pool, dropout, linear head."""

    def __init__(self, num_classes: int, in_chans: int, widths: tuple[int, ...] = (16, 32, 64, 128), drop: float = 0.1):
        super().__init__()
        layers, cin = [], in_chans
        for i, w in enumerate(widths):
            layers += ([nn.MaxPool2d(2)] if i else []) + [_conv_bn(cin, w)]
            cin = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(drop), nn.Linear(cin, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.adaptive_avg_pool2d(self.features(x), 1))


class TinyViT(nn.Module):
    """Patch embedding, a class token, pre-norm transformer blocks, linear head on the class token.

    The position embedding is learned for the default grid and resized bilinearly for other input sizes.
    """

    def __init__(self, num_classes: int, in_chans: int, img_size: int = 64, patch: int = 8, dim: int = 64,
                 depth: int = 2, heads: int = 4, mlp_ratio: float = 2.0):
        super().__init__()
        self.embed = nn.Conv2d(in_chans, dim, patch, stride=patch)
        self.grid = img_size // patch
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, self.grid * self.grid, dim) * 0.02)
        block = nn.TransformerEncoderLayer(dim, heads, int(dim * mlp_ratio), dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(block, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def _pos(self, h: int, w: int) -> torch.Tensor:
        if (h, w) == (self.grid, self.grid):
            return self.pos
        grid = self.pos.reshape(1, self.grid, self.grid, -1).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, size=(h, w), mode="bilinear", align_corners=False)
        return grid.permute(0, 2, 3, 1).reshape(1, h * w, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        h, w = x.shape[-2:]
        x = x.flatten(2).transpose(1, 2) + self._pos(h, w)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)
        return self.head(self.norm(self.blocks(x)[:, 0]))


@register_model(default_cfg=_CFG)
def tiny_cnn(num_classes: int, in_chans: int, pretrained: bool = False, **kw) -> nn.Module:
    """~100k-parameter CNN (widths 16-32-64-128)."""
    if pretrained:
        raise no_pretrained_weights("tiny_cnn")
    return TinyCNN(num_classes, in_chans, **kw)


@register_model(default_cfg=_CFG)
def tiny_vit(num_classes: int, in_chans: int, pretrained: bool = False, **kw) -> nn.Module:
    """~70k-parameter ViT (8×8 patches, dim 64, 2 blocks)."""
    if pretrained:
        raise no_pretrained_weights("tiny_vit")
    return TinyViT(num_classes, in_chans, **kw)
