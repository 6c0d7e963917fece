"""Vision transformers of the FER-2013 reports: a small ViT from scratch and a fine-tuned ViT-B/16.

* ``fer_vit`` — report 001 (CMPSC-448 project, Keras): 48×48 grayscale input cut into 4×4 patches
  (144 tokens), a linear projection to 16 dimensions plus a learned position embedding, 4 transformer
  blocks with 4 attention heads, global average pooling over the tokens, dropout and a 7-way output.
  Reported: 39.62% test accuracy after the first phase, 41.87% after hard-sample retraining.
* ``vit_b16_mlp5`` — report 004 (UC Irvine project): ViT-B/16 at 224×224 ("google/vit-base-patch16-224",
  ImageNet-21k pre-training, ImageNet-1k fine-tuning; timm's ``vit_base_patch16_224.orig_in21k_ft_in1k``)
  whose classifier is replaced by a 5-layer MLP with dropout between the layers, fine-tuned with the trunk
  frozen and then gradually unfrozen (``gradual_unfreeze``). Reported: best validation accuracy 66.34%
  after 24 epochs, lr 1e-4. The trunk is built by timm with ``pretrained=False`` unless asked; pretrained
  weights come only from disk (the timm/HF cache or ``backbone_checkpoint=``), never downloaded.

The ViT-B/16 of report 002 (AffectNet + FER-2013 + CK+, 8 classes) is timm's ViT-B/16 with its default
linear head replaced by an 8-way linear layer, and its ResNet-18 is timm's with the default head: they are
``timm/vit_base_patch16_224`` and ``timm/resnet18`` (report 002 normalises with mean = std = 0.5).

UNVERIFIED choices:
* ``fer_vit``: attention heads follow the Keras ``MultiHeadAttention(key_dim=projection_dim)`` convention
  (each of the 4 heads is 16-wide, ``head_dim``); MLP 32 → 16 with GELU; dropout 0.1 in the blocks,
  pre-norm blocks (LayerNorm eps 1e-6), a final LayerNorm before the pooling, dropout 0.5 before the head.
* ``vit_b16_mlp5``: MLP widths 768 → 512 → 256 → 128 → 64 → classes with ReLU and dropout 0.3 between the
  layers; the classification token feeds the head (as in the Hugging Face model); the unfreezing schedule
  (which blocks at which stage) is ours — the report gives none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from ..errors import FerbenchError
from ._registry import create_model, no_pretrained_weights, register_model

# --------------------------------------------------------------------------------------------------
# Report 001: small ViT on 48×48 grayscale


class KerasStyleAttention(nn.Module):
    """Multi-head self-attention whose heads have their own width (Keras ``key_dim``), not ``dim // heads``."""

    def __init__(self, dim: int, heads: int, head_dim: int, drop: float = 0.0):
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        self.qkv = nn.Linear(dim, 3 * heads * head_dim)
        self.proj = nn.Linear(heads * head_dim, dim)
        self.drop = drop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        out = nn.functional.scaled_dot_product_attention(q, k, v, dropout_p=self.drop if self.training else 0.0)
        return self.proj(out.transpose(1, 2).reshape(b, n, -1))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, dim: int, heads: int, head_dim: int, mlp: Sequence[int], drop: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = KerasStyleAttention(dim, heads, head_dim, drop)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        layers: list[nn.Module] = []
        fan_in = dim
        for units in mlp:
            layers += [nn.Linear(fan_in, units), nn.GELU(), nn.Dropout(drop)]
            fan_in = units
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class FERViT(nn.Module):
    """Patches (linear projection + learned positions) → blocks → LayerNorm → token average → dropout → linear."""

    def __init__(self, num_classes: int, in_chans: int = 1, img_size: int = 48, patch: int = 4, dim: int = 16,
                 depth: int = 4, heads: int = 4, head_dim: int | None = None, mlp: Sequence[int] | None = None,
                 drop: float = 0.1, head_drop: float = 0.5):
        super().__init__()
        if img_size % patch:
            raise FerbenchError(f"fer_vit: img_size {img_size} is not a multiple of the patch size {patch}")
        self.patch = patch
        self.num_patches = (img_size // patch) ** 2
        self.embed = nn.Linear(in_chans * patch * patch, dim)
        self.pos = nn.Parameter(torch.randn(1, self.num_patches, dim) * 0.02)
        mlp = tuple(mlp) if mlp is not None else (2 * dim, dim)
        self.blocks = nn.Sequential(*(Block(dim, heads, head_dim or dim, mlp, drop) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Sequential(nn.Dropout(head_drop), nn.Linear(dim, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.patch
        tokens = x.unfold(2, p, p).unfold(3, p, p)  # (B, C, H/p, W/p, p, p)
        tokens = tokens.permute(0, 2, 3, 1, 4, 5).flatten(3).flatten(1, 2)  # (B, N, C·p·p)
        if tokens.shape[1] != self.num_patches:
            raise FerbenchError(f"fer_vit expects {self.num_patches} patches, got {tokens.shape[1]} "
                                f"(input {tuple(x.shape)})")
        tokens = self.blocks(self.embed(tokens) + self.pos)
        return self.head(self.norm(tokens).mean(dim=1))


@register_model(default_cfg=dict(input_size=(1, 48, 48), mean=(0.0,), std=(1.0,), modalities=("rgb",),
                                 paper="report 001: FER-2013 ViT, 4×4 patches, dim 16, 4 heads, 4 layers",
                                 license="Apache-2.0 (ferbench implementation; no published weights)"))
def fer_vit(num_classes: int, in_chans: int, pretrained: bool = False, **kw) -> nn.Module:
    """Report 001's ViT for 48×48 grayscale faces (~24k parameters)."""
    if pretrained:
        raise no_pretrained_weights("fer_vit")
    return FERViT(num_classes, in_chans, **kw)


# --------------------------------------------------------------------------------------------------
# Report 004: ViT-B/16 with a 5-layer MLP head

VIT_B16 = "vit_base_patch16_224.orig_in21k_ft_in1k"


def timm_backbone(owner: str, arch: str, in_chans: int, pretrained: bool, backbone_checkpoint: str | None = None,
                  **kw) -> nn.Module:
    """A timm trunk built offline: random init, or weights from ``backbone_checkpoint`` or the local cache.

    ``owner`` (the ferbench model name) appears in the error raised when no weights are on disk.
    """
    if backbone_checkpoint is not None:
        if not Path(backbone_checkpoint).is_file():
            raise FerbenchError(f"{owner}: backbone_checkpoint {backbone_checkpoint} does not exist")
        kw["pretrained_cfg_overlay"] = {"file": str(backbone_checkpoint)}
    try:
        pretrained = pretrained or backbone_checkpoint is not None
        trunk = create_model("timm/" + arch, in_chans=in_chans, pretrained=pretrained, **kw)
    except FerbenchError as err:
        hint = f"\nFor the {arch} trunk alone: {owner}(..., backbone_checkpoint='/path/to/{arch}.safetensors')."
        raise FerbenchError(f"{no_pretrained_weights(owner)}{hint}") from err
    del trunk.ferbench_cfg  # the registry describes the finished model, not its trunk
    return trunk


def mlp_head(dims: Sequence[int], drop: float) -> nn.Sequential:
    """Linear layers ``dims[0] → … → dims[-1]`` with ReLU and dropout between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:])):
        if i:
            layers += [nn.ReLU(inplace=True), nn.Dropout(drop)]
        layers.append(nn.Linear(fan_in, fan_out))
    return nn.Sequential(*layers)


@register_model(default_cfg=dict(input_size=(3, 224, 224), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
                                 modalities=("rgb",),
                                 paper="report 004: ViT-B/16 (google/vit-base-patch16-224) + 5-layer MLP head",
                                 license="Apache-2.0 (ViT-B/16 weights, when supplied locally)"))
def vit_b16_mlp5(num_classes: int, in_chans: int, pretrained: bool = False, hidden: Sequence[int] = (512, 256, 128, 64),
                 drop: float = 0.3, backbone_checkpoint: str | None = None, **kw) -> nn.Module:
    """timm ViT-B/16 (state-dict keys as timm's) whose ``head`` is a 5-layer MLP; see ``gradual_unfreeze``."""
    if len(hidden) != 4:
        raise FerbenchError(f"vit_b16_mlp5: the report's head has 5 linear layers, so 4 hidden widths; got {hidden}")
    model = timm_backbone("vit_b16_mlp5", VIT_B16, in_chans, pretrained, backbone_checkpoint, num_classes=0, **kw)
    model.head = mlp_head((model.num_features, *hidden, num_classes), drop)
    model.num_classes = num_classes
    return model


def gradual_unfreeze(model: nn.Module, stage: int) -> int:
    """Freeze a timm ViT except its head (stage 0), then also the last ``stage`` blocks and the final norm.

    From ``stage > len(model.blocks)`` on everything is trainable (patch embedding, tokens, positions).
    Returns the number of trainable parameters. Call it between epochs and rebuild the optimizer's
    parameter groups (or keep all parameters in the optimizer: frozen ones get no gradient).
    """
    if stage < 0:
        raise FerbenchError(f"gradual_unfreeze: stage must be >= 0, got {stage}")
    blocks = model.blocks
    model.requires_grad_(stage > len(blocks))
    model.head.requires_grad_(True)
    if stage:
        model.norm.requires_grad_(True)
        for block in blocks[len(blocks) - min(stage, len(blocks)):]:
            block.requires_grad_(True)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
