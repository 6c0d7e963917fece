"""Encoded image bytes → model-ready arrays (colour at the input size, depth in scaled millimetres).

Colour is decoded by Pillow, except a JPEG already at the input size: torchvision's CPU decoder
(libjpeg-turbo, as Pillow's) writes it in the (H, W, c) layout the batch wants, so it costs one
copy instead of Pillow's two (its RGBX image, then the packed bytes), about a tenth less CPU per
224² image. Both give the same pixels (``tests/test_device_decode.py`` checks 4:2:0, 4:2:2, 4:4:4,
progressive, grey and CMYK files); a JPEG torchvision refuses, or a torchvision without
``decode_jpeg`` (deprecated since 0.29 in favour of TorchCodec), goes to Pillow.
"""

from __future__ import annotations

import functools
import io
import warnings
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image

from ..imageio import decode, jpeg_size
from .inputs import InputSpec


def decode_color(data: bytes, size: int, channels: int, out: np.ndarray | None = None) -> np.ndarray:
    """(size, size, channels) uint8 (HWC, as the decoder writes it) from encoded bytes, into ``out``
    when given (e.g. one sample of a batch buffer); JPEGs are draft-decoded near the target size."""
    if jpeg_size(data) == (size, size):
        a = _jpeg_at_size(data, channels)
        if a is not None:
            if out is None:
                return a
            out[...] = a
            return out
    with Image.open(io.BytesIO(data)) as im:
        mode = "L" if channels == 1 else "RGB"
        im.draft(mode, (size, size))
        if im.mode != mode:
            im = im.convert(mode)
        if im.size != (size, size):
            im = im.resize((size, size), Image.BILINEAR)
        a = np.asarray(im)
    a = a.reshape(size, size, channels)
    if out is None:
        return a
    out[...] = a
    return out


def _jpeg_at_size(data: bytes, channels: int) -> np.ndarray | None:
    """A JPEG decoded by torchvision as an (H, W, c) view, or None (no decoder, or it refused)."""
    found = torchvision_jpeg()
    if found is None:
        return None
    decoder, modes = found
    with warnings.catch_warnings():  # the deprecation, and the read-only buffer that is only read
        warnings.simplefilter("ignore")
        try:
            image = decoder(torch.frombuffer(data, dtype=torch.uint8), mode=modes[channels])
        except RuntimeError:
            return None
    return image.permute(1, 2, 0).numpy()


@functools.lru_cache(maxsize=1)
def torchvision_jpeg() -> tuple[Callable[..., Any], dict[int, Any]] | None:
    """torchvision's ``decode_jpeg`` and its read modes by channel count (3: RGB, 1: grey), or
    None where torchvision is missing or has dropped it."""
    try:
        import torchvision.io
    except ImportError:
        return None
    decoder = getattr(torchvision.io, "decode_jpeg", None)
    modes = {3: torchvision.io.ImageReadMode.RGB, 1: torchvision.io.ImageReadMode.GRAY}
    return None if decoder is None else (decoder, modes)


def decode_depth(data: bytes, size: int, unit_mm: float, spec: InputSpec) -> np.ndarray:
    """(1, size, size) float32 depth scaled per ``spec.depth_norm`` (0 stays 0 = no data)."""
    mm = decode(data).astype(np.float32) * np.float32(unit_mm)
    if mm.shape != (size, size):
        mm = np.asarray(Image.fromarray(mm, mode="F").resize((size, size), Image.NEAREST))
    if spec.depth_norm == "scale":
        return (mm / np.float32(spec.depth_scale_mm))[None]
    valid = mm > 0
    if not valid.any():
        return np.zeros((1, size, size), np.float32)
    if spec.depth_norm == "max":  # report 003's Eq. 3.1: X / max(X), no shift (relative depths kept)
        return (mm / mm[valid].max()).astype(np.float32)[None]
    lo, hi = mm[valid].min(), mm[valid].max()
    out = np.where(valid, (mm - lo) / max(hi - lo, 1e-6) * 0.9 + 0.1, 0.0)
    return out.astype(np.float32)[None]
