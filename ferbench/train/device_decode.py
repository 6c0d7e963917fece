"""Colour JPEGs decoded on the training device: torchvision's batched ``decode_jpeg`` (nvJPEG on CUDA).

Streaming from 2-8 CPU workers decodes a few thousand 224² JPEGs a second; a ResNet-50 in bf16 on a
recent GPU trains on more than that. With ``data.decode: gpu`` (or ``auto`` choosing it, see
``ferbench.train.throughput.choose_decode``) the loader sends the encoded bytes of each batch to
the device and decodes them there: no worker processes, no decoded pixels crossing the host.

What it decodes, and how it differs from the CPU path (``decode.decode_color``, Pillow):

* only a colour-only input (``rgb``) whose every stored image is a JPEG (``jpeg_only``); a PNG
  dataset, or depth, stays on the CPU;
* a JPEG already at the input size gives the pixels libjpeg-turbo gives on the CPU (torchvision's
  CPU decoder was checked byte-identical to Pillow's on 4:2:0, 4:2:2, 4:4:4, progressive, grey
  and CMYK files); nvJPEG's own inverse DCT and chroma upsampling may differ from them by a few
  levels, so a run records which decoder fed it;
* other sizes are resized on the device with antialiased bilinear interpolation: within one level
  of Pillow when enlarging (RAF-DB's 100² to 224²); when reducing, Pillow first decodes at 1/2, 1/4
  or 1/8 scale in the DCT domain, and halving 224² agrees to about 1.5 levels on average
  (``tests/test_device_decode.py`` states both tolerances);
* grey input (``channels: 1``) is the JPEG's luma plane on both paths (Pillow's draft asks
  libjpeg for grey output), so it is identical;
* EXIF orientation is ignored, as on the CPU path.

torchvision marks its image decoders deprecated since 0.29 in favour of TorchCodec; they still work
there (the warning is silenced here), and where a later torchvision drops ``decode_jpeg`` the
device path is reported unavailable and ``auto`` stays on the CPU.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from .decode import torchvision_jpeg

if TYPE_CHECKING:
    from .store import Store

JPEG_START = b"\xff\xd8\xff"  # start-of-image marker and the first byte of the next marker


def jpeg_only(images: pa.Array | None) -> bool:
    """Whether every value of an image-bytes array is present and starts like a JPEG."""
    if images is None or len(images) == 0 or images.null_count:
        return False
    starts = pc.binary_slice(images, 0, len(JPEG_START))
    return bool(pc.all(pc.equal(starts, pa.scalar(JPEG_START, images.type))).as_py())


def gpu_decode_unavailable(store: "Store", device: torch.device | str) -> str | None:
    """Why the store's colour cannot be decoded on ``device`` (one clause), or None when it can."""
    device = torch.device(device)
    if torchvision_jpeg() is None:
        return "this torchvision has no decode_jpeg"
    if device.type != "cuda":
        return f"the device is {device.type}, and torchvision decodes JPEGs on CUDA devices only"
    if store.spec.modality != "rgb":
        return f"the input is {store.spec.modality}: depth is decoded on the CPU"
    if store.cached:
        return "the images are decoded once into memory (data.cache)"
    if not jpeg_only(store.color_bytes):
        return "not every colour image of the store is a JPEG"
    return None


class DeviceDecoder:
    """Decodes the colour of store rows on ``device`` into (B, c, s, s) uint8 batches with
    channels-last strides, like the CPU loader's (a (B, s, s, c) buffer seen as (B, c, s, s)):
    one stack and one layout copy per batch, whatever the batch size."""

    def __init__(self, store: "Store", device: torch.device | str):
        images = store.color_bytes
        assert images is not None and images.type in (pa.binary(), pa.large_binary())
        self.device, self.size, self.channels = torch.device(device), store.spec.size, store.spec.color_channels
        self.decoder, modes = torchvision_jpeg()  # type: ignore[misc]  # only built where it exists
        self.mode = modes[self.channels]
        offsets = np.frombuffer(images.buffers()[1], np.int64 if images.type == pa.large_binary() else np.int32)
        self._offsets = offsets[images.offset:images.offset + len(images) + 1].astype(np.int64)
        with warnings.catch_warnings():  # read-only Arrow memory: slices of it are only ever read
            warnings.simplefilter("ignore", UserWarning)
            self._data = torch.frombuffer(images.buffers()[2], dtype=torch.uint8) if self._offsets[-1] else torch.empty(0, dtype=torch.uint8)

    def encoded(self, indices: Sequence[int]) -> list[torch.Tensor]:
        """The encoded bytes of rows ``indices``: views of the store's Arrow buffer, no copy."""
        o = self._offsets
        return [self._data[o[i]:o[i + 1]] for i in indices]

    def __call__(self, indices: Sequence[int]) -> torch.Tensor:
        s = self.size
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            decoded = self.decoder(self.encoded(indices), mode=self.mode, device=self.device)
        images = [image if image.shape[1:] == (s, s) else resize(image, s) for image in decoded]
        return torch.stack(images).contiguous(memory_format=torch.channels_last)


def resize(image: torch.Tensor, size: int) -> torch.Tensor:
    """A (c, h, w) uint8 image resized to (c, size, size): antialiased bilinear, rounded."""
    x = torch.nn.functional.interpolate(image[None].float(), size=(size, size), mode="bilinear", align_corners=False,
                                        antialias=True)
    return x[0].round_().clamp_(0, 255).to(torch.uint8)
