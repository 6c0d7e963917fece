"""What the model is fed: the input specification, and a batch turned into model input.

Model input (the manifest contract): rgb → 3 channels (grayscale repeated) or 1 (``channels: 1``);
depth → 1 channel; rgbd → RGB then depth (4) or gray then depth (2). Images are resized to a square
(the faces are pre-cropped). Depth is converted to millimetres with the dataset's ``depth.unit_mm``
metadata and scaled per image (``depth_norm: minmax``: valid pixels to [0.1, 1], 0 = no data; ``max``:
divided by the map's largest depth, report 003's Eq. 3.1) or by ``depth_scale_mm`` (``decode.decode_depth``). Colour channels are /255. All channels are then
normalised with mean/std (``to_input``), after the batch augmentations (``ferbench.train.augment``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import torch

if TYPE_CHECKING:
    from .augment import Augment


@dataclass(frozen=True)
class InputSpec:
    """What the model is fed: modality, square size, channel count, per-channel mean/std, depth scaling."""

    modality: str
    size: int
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    depth_norm: str = "minmax"
    depth_scale_mm: float = 200.0

    @property
    def color_channels(self) -> int:
        return {"rgb": self.channels, "depth": 0, "rgbd": self.channels - 1}[self.modality]

    @property
    def uses_depth(self) -> bool:
        return self.modality != "rgb"

    def decoded_bytes(self) -> int:
        """Bytes one decoded sample takes in the memory cache."""
        return self.size * self.size * (self.color_channels + 4 * self.uses_depth)


@dataclass
class Batch:
    color: torch.Tensor | None  # uint8 (B, c, H, W); channels-last strides when streamed (decoded HWC)
    depth: torch.Tensor | None  # float32 (B, 1, H, W)
    label: torch.Tensor  # int64 (B,)


def to_input(batch: Batch, spec: InputSpec, mean: torch.Tensor, std: torch.Tensor,
             augment: Sequence["Augment"] = (), generator: torch.Generator | None = None,
             channels_last: bool = False) -> torch.Tensor:
    """Float model input from a batch: colour /255, depth as decoded, augment, normalise."""
    parts = []
    if batch.color is not None:
        color = batch.color if channels_last else batch.color.contiguous()  # a contiguous model gets contiguous input
        parts.append(color.float().div_(255))
    if batch.depth is not None:
        parts.append(batch.depth.float())
    x = parts[0] if len(parts) == 1 else torch.cat(parts, 1)
    for aug in augment:
        x = aug(x, generator, spec.color_channels)
    x = (x - mean) / std
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def norm_tensors(spec: InputSpec, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
    mean = torch.tensor(spec.mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    std = torch.tensor(spec.std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    return mean, std
