"""MCCT / VCCT: a CNN backbone, a PAtt-Lite patch extractor and a compact transformer with sequence pooling.

Report 000 (a bachelor thesis on AffectNet, 8 classes, 224×224 RGB, ImageNet mean/std) builds on the
Compact Convolutional Transformer (Hassani et al., arXiv:2104.05704): the convolutional tokenizer is
replaced by a backbone and the patch extractor of PAtt-Lite (Ngwe et al., arXiv:2306.09626).

* backbone, two choices, both giving 14×14×512 at 224×224 input:
  - ``M``: Mixed Feature Network (MFN, Zhang et al., Electronics 12(17) 3595, 2023) modified for 224 input:
    an extra stride-2 basic conv block in front, no 7×7 stage, 512 output channels. Trained from scratch.
  - ``V``: VGG19 truncated after its 4th max-pool (12 conv + 4 pool layers, the report's "16th layer"),
    initialised from ImageNet and frozen (10.585M parameters).
* patch extractor: zero-pad to 16×16, depth-wise separable conv k4/s4 → 4×4×256, depth-wise separable
  conv k2/s2 → 2×2×256, point-wise conv → 2×2×49 (the "2x2x49" encoder input of the report).
* the 4 patches become 4 tokens (49 features each), a linear layer maps them to the embedding dimension,
  a learnable position embedding is added; ``n`` pre-norm encoder layers (8 heads, MLP ratio 4), a final
  LayerNorm, sequence pooling (softmax-weighted token average) and a linear classifier.

Variants (backbone letter + encoder layers) and Table 6.1 (parameters, 8 classes):
MCCT-1 3.00M, MCCT-2 3.44M, MCCT-3 3.89M, MCCT-6 5.23M, MCCT-7 5.67M, VCCT-1 11.26M, VCCT-2 11.71M.
Best reported top-1 on the AffectNet validation set (8 classes): MCCT-7 55.54% (with oversampling).

Counting rule that reproduces Table 6.1: every parameter of the module, trainable or frozen (VCCT counts
the frozen VGG19 trunk, 10.585M, in its total), with an 8-class head. This module gives
MCCT-1/2/3/6/7 = 3.01M/3.45M/3.90M/5.23M/5.68M and VCCT-1/2 = 11.26M/11.71M (see ``tests``).

UNVERIFIED choices (the report's figures of the MFN and the patch extractor are not available as text):
* embedding dimension 192, not the 196 the text gives: 196 is not divisible by 8 heads, 196 = 2·2·49 is the
  size of the patch-extractor output, and a 192-wide layer (0.4447M) reproduces the per-layer increment of
  Table 6.1 (0.44-0.45M) where a 196-wide one with the usual 4× MLP would add 0.46M. ``embed_dim`` is a kwarg.
* the 2×2 patch grid is kept as 4 tokens (the report also mentions a global average pooling, which would
  leave a single token and make attention and sequence pooling vacuous); a learned 49→192 linear map.
* modified MFN: new stem conv 3→3 (k3, s2) before the original 3→64 stem; the original stride-2 7×7
  transition block (mixed kernels 3/5/7/9, 1024 expansion) is kept at stride 1 with 512 output channels
  (instead of 256) and the 7×7 residual stage, the 1×1/7×7 head convs and the embedding layer are dropped.
  The mixed depth-wise conv is followed by batch-norm + PReLU (the original declares both; they count in
  its parameter total). This reading gives 2.333M for the MFN trunk, which Table 6.1 implies is 2.32-2.34M
  (VCCT-1 − MCCT-1 = VGG19 trunk − MFN trunk).
* ReLU after each patch-extractor conv and biases on all of them (PAtt-Lite style); MLP ratio 4, GELU,
  dropout 0.1, pre-norm layers (CCT style).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import FerbenchError
from ._registry import no_pretrained_weights, register_model

# --------------------------------------------------------------------------------------------------
# Mixed Feature Network (modified)


class ConvBNPReLU(nn.Sequential):
    """Basic conv block of MFN: conv (no bias), batch-norm, PReLU."""

    def __init__(self, cin: int, cout: int, kernel: int = 1, stride: int = 1, groups: int = 1):
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.PReLU(cout),
        )


class CoordinateAttention(nn.Module):
    """Coordinate attention (Hou et al., CVPR 2021): per-row and per-column gates from pooled encodings."""

    def __init__(self, channels: int, reduction: int = 32):
        super().__init__()
        mid = max(8, channels // reduction)
        self.squeeze = nn.Sequential(nn.Conv2d(channels, mid, 1), nn.BatchNorm2d(mid), nn.Hardswish())
        self.gate_h = nn.Conv2d(mid, channels, 1)
        self.gate_w = nn.Conv2d(mid, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        pooled = torch.cat([x.mean(3, keepdim=True), x.mean(2, keepdim=True).transpose(2, 3)], dim=2)
        along_h, along_w = self.squeeze(pooled).split([h, w], dim=2)
        return x * self.gate_h(along_h).sigmoid() * self.gate_w(along_w.transpose(2, 3)).sigmoid()


class MixedDepthwise(nn.Module):
    """Depth-wise convolutions with a different kernel size on each channel group, then BN + PReLU."""

    def __init__(self, splits: Sequence[int], kernels: Sequence[int], stride: int):
        super().__init__()
        self.splits = list(splits)
        self.convs = nn.ModuleList(
            nn.Conv2d(c, c, k, stride, k // 2, groups=c, bias=False) for c, k in zip(splits, kernels)
        )
        self.norm = nn.BatchNorm2d(sum(splits))
        self.act = nn.PReLU(sum(splits))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([conv(part) for conv, part in zip(self.convs, x.split(self.splits, dim=1))], dim=1)
        return self.act(self.norm(x))


class MixBottleneck(nn.Module):
    """1×1 expansion, mixed depth-wise conv, coordinate attention, linear 1×1 projection (+ identity if shapes match)."""

    def __init__(self, cin: int, cout: int, expand: int, splits: Sequence[int], kernels: Sequence[int], stride: int = 1):
        super().__init__()
        assert sum(splits) == expand, (splits, expand)
        self.expand = ConvBNPReLU(cin, expand)
        self.mix = MixedDepthwise(splits, kernels, stride)
        self.attn = CoordinateAttention(expand)
        self.project = nn.Sequential(nn.Conv2d(expand, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.attn(self.mix(self.expand(x))))
        return x + y if self.residual else y


def _stage(n: int, c: int, expand: int, splits: Sequence[int], kernels: Sequence[int]) -> nn.Sequential:
    return nn.Sequential(*(MixBottleneck(c, c, expand, splits, kernels) for _ in range(n)))


class MFNBackbone(nn.Sequential):
    """MFN trunk for 224×224 input → (B, 512, 14, 14) (see the module docstring for the modifications)."""

    out_chans = 512

    def __init__(self, in_chans: int = 3, out_chans: int = 512):
        super().__init__(
            ConvBNPReLU(in_chans, in_chans, 3, 2),  # added: 224 → 112
            ConvBNPReLU(in_chans, 64, 3, 2),  # 112 → 56
            ConvBNPReLU(64, 64, 3, 1, groups=64),
            MixBottleneck(64, 64, 128, (64, 32, 32), (3, 5, 7), stride=2),  # → 28
            _stage(9, 64, 128, (96, 32), (3, 5)),
            MixBottleneck(64, 128, 256, (128, 64, 64), (3, 5, 7), stride=2),  # → 14
            _stage(16, 128, 256, (192, 64), (3, 5)),
            MixBottleneck(128, out_chans, 1024, (256,) * 4, (3, 5, 7, 9), stride=1),  # was stride 2, 256 out
        )
        self.out_chans = out_chans


# --------------------------------------------------------------------------------------------------
# Truncated VGG19

#: VGG19 convolution widths up to (and including) the 4th max-pool; "M" is a 2×2 max-pool.
VGG19_TO_POOL4 = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M")


class VGG19Trunk(nn.Module):
    """VGG19 ``features`` up to the 4th max-pool → (B, 512, H/16, W/16); indices match torchvision/timm keys."""

    out_chans = 512

    def __init__(self, in_chans: int = 3):
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_chans
        for item in VGG19_TO_POOL4:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, item, 3, padding=1), nn.ReLU(inplace=True)]
                cin = item
        self.features = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def load_imagenet(self, path: str | Path) -> None:
        """Load a torchvision or timm VGG19 state dict (``features.N.*``; the classifier is ignored)."""
        from timm.models import adapt_input_conv

        state = _load_state(str(path))
        own = self.state_dict()
        fit = {k: v for k, v in state.items() if k in own}
        missing = set(own) - set(fit)
        if missing:
            raise FerbenchError(f"{path} is not a VGG19 state dict: missing {sorted(missing)[:4]}")
        first = "features.0.weight"
        if fit[first].shape[1] != own[first].shape[1]:
            fit[first] = adapt_input_conv(own[first].shape[1], fit[first])
        self.load_state_dict(fit)


def _vgg19_weights_on_disk() -> str | None:
    """An ImageNet VGG19 file already on disk: the timm/HF cache or torchvision's hub checkpoint."""
    from ._registry import _cached_timm_weights

    found = _cached_timm_weights("vgg19")
    if found is not None:
        return found
    local = Path(torch.hub.get_dir()) / "checkpoints" / "vgg19-dcbb9e9d.pth"
    return str(local) if local.is_file() else None


def _load_state(path: str) -> dict[str, torch.Tensor]:
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(path)
    return torch.load(path, map_location="cpu", weights_only=True)


# --------------------------------------------------------------------------------------------------
# Patch extractor, encoder, sequence pooling


class SeparableConv(nn.Sequential):
    """Depth-wise conv (k, stride) followed by a point-wise conv and ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int):
        super().__init__(
            nn.Conv2d(cin, cin, kernel, stride, groups=cin),
            nn.Conv2d(cin, cout, 1),
            nn.ReLU(inplace=True),
        )


class PatchExtractor(nn.Sequential):
    """PAtt-Lite patch extraction on a 14×14 map: pad to 16, sep-conv k4/s4, sep-conv k2/s2, point-wise conv."""

    def __init__(self, cin: int = 512, width: int = 256, cout: int = 49):
        super().__init__(
            nn.ZeroPad2d(1),
            SeparableConv(cin, width, 4, 4),
            SeparableConv(width, width, 2, 2),
            nn.Conv2d(width, cout, 1),
            nn.ReLU(inplace=True),
        )


class SeqPool(nn.Module):
    """Sequence pooling (CCT): an attention weight per token from a linear layer, softmax over the tokens."""

    def __init__(self, dim: int):
        super().__init__()
        self.score = nn.Linear(dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.score(x).softmax(dim=1)  # (B, N, 1)
        return (weights.transpose(1, 2) @ x).squeeze(1)


class CCTFER(nn.Module):
    """Backbone → patch extractor → tokens → ``depth`` encoder layers → LayerNorm → sequence pooling → linear."""

    def __init__(self, backbone: nn.Module, num_classes: int, depth: int, embed_dim: int = 192, heads: int = 8,
                 mlp_ratio: float = 4.0, patch_chans: int = 49, grid: int = 2, drop: float = 0.1,
                 freeze_backbone: bool = False):
        super().__init__()
        self.backbone = backbone
        self.freeze_backbone = freeze_backbone
        if freeze_backbone:
            backbone.requires_grad_(False)
        self.patches = PatchExtractor(backbone.out_chans, 256, patch_chans)
        self.embed = nn.Linear(patch_chans, embed_dim)
        self.pos = nn.Parameter(torch.randn(1, grid * grid, embed_dim) * 0.02)
        layer = nn.TransformerEncoderLayer(embed_dim, heads, int(embed_dim * mlp_ratio), dropout=drop,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(embed_dim)
        self.pool = SeqPool(embed_dim)
        self.head = nn.Linear(embed_dim, num_classes)

    def train(self, mode: bool = True) -> "CCTFER":
        super().train(mode)
        if self.freeze_backbone:  # a frozen backbone also keeps its normalisation statistics
            self.backbone.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.backbone(x)
        if feats.shape[-2:] != (14, 14):
            feats = F.adaptive_avg_pool2d(feats, 14)
        tokens = self.patches(feats).flatten(2).transpose(1, 2)  # (B, 4, 49)
        tokens = self.encoder(self.embed(tokens) + self.pos)
        return self.head(self.pool(self.norm(tokens)))


# --------------------------------------------------------------------------------------------------
# Registered variants

_CFG = dict(
    input_size=(3, 224, 224),
    mean=(0.485, 0.456, 0.406),
    std=(0.229, 0.224, 0.225),
    modalities=("rgb",),
    paper="report 000: CNN backbone + PAtt-Lite patches + CCT encoder (MCCT/VCCT), AffectNet 8 classes",
    license="Apache-2.0 (ferbench implementation; no published weights)",
)


def _mcct(depth: int, num_classes: int, in_chans: int, pretrained: bool, **kw) -> CCTFER:
    if pretrained:
        raise no_pretrained_weights(f"mcct_{depth}")
    return CCTFER(MFNBackbone(in_chans), num_classes, depth, **kw)


def _vcct(depth: int, num_classes: int, in_chans: int, pretrained: bool, backbone_checkpoint: str | None = None,
          freeze_backbone: bool = True, **kw) -> CCTFER:
    """VGG19 trunk frozen by default; ImageNet weights from ``backbone_checkpoint`` or (``pretrained``) the local cache."""
    trunk = VGG19Trunk(in_chans)
    path = backbone_checkpoint
    if pretrained and path is None:
        path = _vgg19_weights_on_disk()
        if path is None:
            raise FerbenchError(
                f"no ImageNet VGG19 weights on this machine for vcct_{depth}, and ferbench never downloads at run "
                f"time: pass backbone_checkpoint='/path/to/vgg19.pth' (a torchvision or timm VGG19 state dict), "
                f"or fill the timm/Hugging Face cache for 'vgg19' beforehand")
    if path is not None:
        if not os.path.isfile(path):
            raise FerbenchError(f"backbone_checkpoint {path} does not exist")
        trunk.load_imagenet(path)
    return CCTFER(trunk, num_classes, depth, freeze_backbone=freeze_backbone, **kw)


@register_model(default_cfg=_CFG)
def mcct_1(num_classes: int, in_chans: int, pretrained: bool = False, **kw) -> nn.Module:
    """MFN backbone, 1 encoder layer (Table 6.1: 3.00M)."""
    return _mcct(1, num_classes, in_chans, pretrained, **kw)


@register_model(default_cfg=_CFG)
def mcct_2(num_classes: int, in_chans: int, pretrained: bool = False, **kw) -> nn.Module:
    """MFN backbone, 2 encoder layers (Table 6.1: 3.44M)."""
    return _mcct(2, num_classes, in_chans, pretrained, **kw)


@register_model(default_cfg=_CFG)
def mcct_3(num_classes: int, in_chans: int, pretrained: bool = False, **kw) -> nn.Module:
    """MFN backbone, 3 encoder layers (Table 6.1: 3.89M)."""
    return _mcct(3, num_classes, in_chans, pretrained, **kw)


@register_model(default_cfg=_CFG)
def mcct_6(num_classes: int, in_chans: int, pretrained: bool = False, **kw) -> nn.Module:
    """MFN backbone, 6 encoder layers (Table 6.1: 5.23M)."""
    return _mcct(6, num_classes, in_chans, pretrained, **kw)


@register_model(default_cfg=_CFG)
def mcct_7(num_classes: int, in_chans: int, pretrained: bool = False, **kw) -> nn.Module:
    """MFN backbone, 7 encoder layers (Table 6.1: 5.67M; best variant, 55.54% on AffectNet val)."""
    return _mcct(7, num_classes, in_chans, pretrained, **kw)


@register_model(default_cfg=_CFG)
def vcct_1(num_classes: int, in_chans: int, pretrained: bool = False, **kw) -> nn.Module:
    """Frozen truncated VGG19, 1 encoder layer (Table 6.1: 11.26M)."""
    return _vcct(1, num_classes, in_chans, pretrained, **kw)


@register_model(default_cfg=_CFG)
def vcct_2(num_classes: int, in_chans: int, pretrained: bool = False, **kw) -> nn.Module:
    """Frozen truncated VGG19, 2 encoder layers (Table 6.1: 11.71M)."""
    return _vcct(2, num_classes, in_chans, pretrained, **kw)
