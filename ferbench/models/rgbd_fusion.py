"""Two-stream RGB-D network with cross-modality spatial attention and a small transformer encoder.

Report 003 (a master thesis on CalD3r/MenD3s, BU-3DFE and Bosphorus): RGB and depth (the depth map
stacked to 3 channels) each go through an EfficientNet-B2 trunk (pretrained for face verification on
VGGFace2 in the report) up to its last inverted-residual block: 352×9×9 at the 260×260 input. Per modality,
4 LANet-style spatial attention heads (1×1 conv → ReLU → 1×1 conv to one channel → sigmoid) are max-pooled
into one mask; the RGB and depth masks are averaged, multiplied with the RGB features and batch-normalised
(instead of TransFER's random mask dropping). A 1×1 conv turns the result into tokens for a 4-layer
transformer encoder (POSTER V2 style) and a two-layer MLP classifies. Input follows the ferbench contract:
(B, 4, H, W) = RGB then depth. Reported (5-fold CV on CalD3r+MenD3s, 7 classes): 62.50% (island loss),
65.11% on 6 classes; BU-3DFE 6 classes 88.78%. Ablations (Tables 3.6/3.7, 7 classes): RGB only 59.82%,
average pooling instead of the encoder 62.32%, sum fusion instead of the attention 61.73%.

Registered: ``rgbd_effnet_b2`` (full), ``rgbd_effnet_b2_rgb`` (RGB stream only, input (B, 3, H, W)),
``rgbd_effnet_b2_sum`` (Eq. 3.3: MLP(AvgPool(X_rgb + X_depth))), ``rgbd_effnet_b2_avgpool`` (attention
fusion, average pooling instead of the encoder) and ``rgbd_fusion_tiny`` (the full design on a tiny CNN
trunk at 64×64, for CPU tests and demos). Every part is a kwarg: ``backbone`` (any timm architecture with
``features_only`` support, or "tiny"), ``modalities``, ``fusion`` ("attention"/"sum"), ``pool``
("encoder"/"avg"), ``heads_per_modality``, ``embed_dim``, ``depth``, ``num_heads``.

Trunks are built with ``pretrained=False``; ``pretrained=True`` loads timm's ImageNet weights only if
they are on disk, ``backbone_checkpoint=`` loads a local timm-format EfficientNet file into both streams.

UNVERIFIED choices: LANet reduction ratio 8; batch-norm on the attended features (the report only says
"batchnorm"); encoder width 256, 8 heads, MLP ratio 4, pre-norm, a class token and learned positions
(resampled when the feature grid differs); MLP hidden width 256 with GELU and dropout 0.1; the sum-fusion
variant also drops the encoder, as Eq. 3.3 writes it (``pool="encoder"`` gives the other reading);
normalisation defaults (ImageNet for RGB, 0.5/0.5 for depth) — the report z-scores each modality with
training-fold statistics.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from ..errors import FerbenchError
from ._registry import no_pretrained_weights, register_model
from .small_vit import timm_backbone
from .tiny import TinyCNN

MODALITIES = ("rgb", "depth")


class TinyTrunk(nn.Module):
    """The conv stages of ``tiny_cnn`` as a feature extractor (stride 2 per stage after the first)."""

    def __init__(self, in_chans: int = 3, widths: Sequence[int] = (16, 32, 64, 128)):
        super().__init__()
        self.features = TinyCNN(1, in_chans, tuple(widths)).features
        self.out_chans = widths[-1]
        self.reduction = 2 ** (len(widths) - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class TimmTrunk(nn.Module):
    """The deepest feature map of a timm model (``features_only``)."""

    def __init__(self, arch: str, owner: str, pretrained: bool, backbone_checkpoint: str | None):
        super().__init__()
        self.body = timm_backbone(owner, arch, 3, pretrained, backbone_checkpoint, num_classes=0,
                                  features_only=True, out_indices=(-1,))
        self.out_chans = self.body.feature_info.channels()[-1]
        self.reduction = self.body.feature_info.reduction()[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)[-1]


class LANetHead(nn.Module):
    """One spatial attention mask: 1×1 conv (C → C/r) → ReLU → 1×1 conv (→ 1) → sigmoid."""

    def __init__(self, channels: int, reduction: int = 8):
        super().__init__()
        mid = max(1, channels // reduction)
        self.net = nn.Sequential(nn.Conv2d(channels, mid, 1), nn.ReLU(inplace=True), nn.Conv2d(mid, 1, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class MultiHeadMask(nn.Module):
    """``n`` LANet heads on one modality, combined by an element-wise maximum → (B, 1, h, w)."""

    def __init__(self, channels: int, n: int = 4, reduction: int = 8):
        super().__init__()
        self.heads = nn.ModuleList(LANetHead(channels, reduction) for _ in range(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([head(x) for head in self.heads]).amax(dim=0)


class TokenEncoder(nn.Module):
    """1×1 conv to ``dim``, flatten to tokens, class token + learned positions, encoder, LayerNorm, class token out."""

    def __init__(self, channels: int, dim: int, depth: int, num_heads: int, grid: int, drop: float = 0.1):
        super().__init__()
        self.proj = nn.Conv2d(channels, dim, 1)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.grid = grid
        self.pos = nn.Parameter(torch.randn(1, grid * grid + 1, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, num_heads, 4 * dim, dropout=drop, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.out_dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)
        h, w = x.shape[-2:]
        pos = self.pos
        if (h, w) != (self.grid, self.grid):
            from timm.layers import resample_abs_pos_embed

            pos = resample_abs_pos_embed(pos, (h, w), (self.grid, self.grid), num_prefix_tokens=1)
        tokens = torch.cat([self.cls.expand(x.shape[0], -1, -1), x.flatten(2).transpose(1, 2)], dim=1) + pos
        return self.norm(self.encoder(tokens))[:, 0]


class AvgPoolHead(nn.Module):
    """Global average pooling (the ablation without the encoder)."""

    def __init__(self, channels: int):
        super().__init__()
        self.out_dim = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


class RGBDFusionNet(nn.Module):
    """Per-modality trunks → fusion (cross-modality spatial attention or sum) → encoder or avg-pool → MLP."""

    def __init__(self, num_classes: int, trunks: dict[str, nn.Module], fusion: str = "attention", pool: str = "encoder",
                 heads_per_modality: int = 4, attn_reduction: int = 8, embed_dim: int = 256, depth: int = 4,
                 num_heads: int = 8, grid: int = 9, mlp_hidden: int = 256, drop: float = 0.1):
        super().__init__()
        if fusion not in ("attention", "sum"):
            raise FerbenchError(f"fusion must be 'attention' or 'sum', got {fusion!r}")
        if pool not in ("encoder", "avg"):
            raise FerbenchError(f"pool must be 'encoder' or 'avg', got {pool!r}")
        if fusion == "sum" and "depth" not in trunks:
            raise FerbenchError("sum fusion needs both modalities")
        self.modalities = tuple(m for m in MODALITIES if m in trunks)
        self.trunks = nn.ModuleDict(trunks)
        channels = trunks["rgb"].out_chans
        self.fusion = fusion
        if fusion == "attention":
            self.masks = nn.ModuleDict({m: MultiHeadMask(channels, heads_per_modality, attn_reduction) for m in trunks})
            self.norm = nn.BatchNorm2d(channels)
        if pool == "encoder":
            self.pool: nn.Module = TokenEncoder(channels, embed_dim, depth, num_heads, grid, drop)
        else:
            self.pool = AvgPoolHead(channels)
        self.head = nn.Sequential(nn.Linear(self.pool.out_dim, mlp_hidden), nn.GELU(), nn.Dropout(drop),
                                  nn.Linear(mlp_hidden, num_classes))

    def split(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, 4, H, W) → RGB (B, 3, H, W) and depth stacked to (B, 3, H, W); an RGB-only model takes (B, 3, H, W)."""
        want = 4 if "depth" in self.modalities else 3
        if x.shape[1] != want:
            raise FerbenchError(f"{'+'.join(self.modalities)} model expects {want} input channels, got {x.shape[1]}")
        parts = {"rgb": x[:, :3]}
        if "depth" in self.modalities:
            parts["depth"] = x[:, 3:4].expand(-1, 3, -1, -1)
        return parts

    def fuse(self, feats: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.fusion == "sum":
            return feats["rgb"] + feats["depth"]
        mask = torch.stack([self.masks[m](feats[m]) for m in self.modalities]).mean(dim=0)
        return self.norm(feats["rgb"] * mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = {m: self.trunks[m](part) for m, part in self.split(x).items()}
        return self.head(self.pool(self.fuse(feats)))


def build_rgbd_fusion(name: str, num_classes: int, in_chans: int, pretrained: bool = False, *,
                      backbone: str = "efficientnet_b2", modalities: Sequence[str] = MODALITIES, img_size: int = 260,
                      backbone_checkpoint: str | None = None, tiny_widths: Sequence[int] = (16, 32, 64, 128),
                      **kw) -> RGBDFusionNet:
    """Build the network; ``name`` is the registered name (for error messages)."""
    modalities = tuple(modalities)
    if modalities not in (MODALITIES, ("rgb",)):
        raise FerbenchError(f"{name}: modalities must be ('rgb', 'depth') or ('rgb',), got {modalities}")
    expected = 4 if "depth" in modalities else 3
    if in_chans != expected:
        raise FerbenchError(f"{name} takes {expected} input channels ({'+'.join(modalities)}), not {in_chans}")
    if backbone == "tiny":
        if pretrained or backbone_checkpoint:
            raise no_pretrained_weights(name)
        trunks = {m: TinyTrunk(3, tiny_widths) for m in modalities}
    else:
        trunks = {m: TimmTrunk(backbone, name, pretrained, backbone_checkpoint) for m in modalities}
    grid = math.ceil(img_size / trunks["rgb"].reduction)
    return RGBDFusionNet(num_classes, trunks, grid=grid, **kw)


_RGBD = dict(mean=(0.485, 0.456, 0.406, 0.5), std=(0.229, 0.224, 0.225, 0.5), modalities=("rgbd",),
             license="Apache-2.0 (ferbench implementation; EfficientNet weights only when supplied locally)")
_PAPER = "report 003: two-stream EfficientNet-B2 RGB-D, cross-modality spatial attention, 4-layer encoder"


@register_model(default_cfg=dict(_RGBD, input_size=(4, 260, 260), paper=_PAPER))
def rgbd_effnet_b2(num_classes: int, in_chans: int, pretrained: bool = False, **kw) -> nn.Module:
    """Full model: two EfficientNet-B2 streams, 4+4 attention heads, 4-layer encoder, MLP."""
    return build_rgbd_fusion("rgbd_effnet_b2", num_classes, in_chans, pretrained, **kw)


@register_model(default_cfg=dict(_RGBD, input_size=(3, 260, 260), mean=_RGBD["mean"][:3], std=_RGBD["std"][:3],
                                 modalities=("rgb",), paper=_PAPER + " (RGB-only ablation)"))
def rgbd_effnet_b2_rgb(num_classes: int, in_chans: int, pretrained: bool = False, **kw) -> nn.Module:
    """Modality ablation: the RGB stream alone (its own 4 attention heads), input (B, 3, H, W)."""
    return build_rgbd_fusion("rgbd_effnet_b2_rgb", num_classes, in_chans, pretrained, modalities=("rgb",), **kw)


@register_model(default_cfg=dict(_RGBD, input_size=(4, 260, 260), paper=_PAPER + " (sum-fusion ablation)"))
def rgbd_effnet_b2_sum(num_classes: int, in_chans: int, pretrained: bool = False, **kw) -> nn.Module:
    """Module ablation, Eq. 3.3: MLP(AvgPool(X_rgb + X_depth)) — no attention, no encoder."""
    kw = {"fusion": "sum", "pool": "avg", **kw}
    return build_rgbd_fusion("rgbd_effnet_b2_sum", num_classes, in_chans, pretrained, **kw)


@register_model(default_cfg=dict(_RGBD, input_size=(4, 260, 260), paper=_PAPER + " (average-pooling ablation)"))
def rgbd_effnet_b2_avgpool(num_classes: int, in_chans: int, pretrained: bool = False, **kw) -> nn.Module:
    """Module ablation: cross-modality attention kept, average pooling instead of the encoder."""
    return build_rgbd_fusion("rgbd_effnet_b2_avgpool", num_classes, in_chans, pretrained, pool="avg", **kw)


@register_model(default_cfg=dict(_RGBD, input_size=(4, 64, 64), paper=_PAPER + " (tiny trunk for CPU runs)"))
def rgbd_fusion_tiny(num_classes: int, in_chans: int, pretrained: bool = False, **kw) -> nn.Module:
    """The full design on a 4-stage tiny CNN trunk (64×64 input, encoder 64-wide, 2 layers, 4 heads)."""
    kw = {"backbone": "tiny", "img_size": 64, "embed_dim": 64, "depth": 2, "num_heads": 4, "mlp_hidden": 64, **kw}
    return build_rgbd_fusion("rgbd_fusion_tiny", num_classes, in_chans, pretrained, **kw)
