"""Encoded image bytes → model-ready arrays (colour at the input size, depth in scaled millimetres)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from ..imageio import decode
from .inputs import InputSpec


def decode_color(data: bytes, size: int, channels: int, out: np.ndarray | None = None) -> np.ndarray:
    """(size, size, channels) uint8 (HWC, as the decoder writes it) from encoded bytes, into ``out``
    when given (e.g. one sample of a batch buffer); JPEGs are draft-decoded near the target size."""
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
