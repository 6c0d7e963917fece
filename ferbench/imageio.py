"""Cheap checks and encoders for image bytes: conversion passes encoded bytes through untouched.

``check_image`` reads only the header (PIL's lazy open) plus the format's end marker, so a
220 kB JPEG costs tens of microseconds, not a decode. A PNG without its IEND chunk or a BMP
shorter than its header says is truncated; a JPEG whose EOI marker is not at the end (truncated,
or trailing junk after a complete image) is fully decoded before it is accepted or rejected.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .errors import SampleError

_END_MARKERS = {"JPEG": b"\xff\xd9", "PNG": b"IEND\xaeB`\x82"}


@dataclass(frozen=True)
class ImageInfo:
    format: str
    width: int
    height: int
    mode: str


def check_image(data: bytes, file: str | None = None, full_decode: bool = False) -> ImageInfo:
    """Validate encoded image bytes; raise ``SampleError`` (kind ``bad-image``) if broken."""
    if not data:
        raise SampleError("bad-image", "empty file", file=file)
    try:
        with Image.open(io.BytesIO(data)) as im:
            info = ImageInfo(im.format or "", im.width, im.height, im.mode)
            marker = _END_MARKERS.get(info.format)
            intact = marker is None or data.rstrip(b"\0\r\n ").endswith(marker)
            if info.format == "PNG" and not intact and marker not in data:
                raise SampleError("bad-image", "truncated PNG (no IEND chunk)", file=file)
            if info.format == "BMP":
                intact = len(data) >= struct.unpack_from("<I", data, 2)[0]
                if not intact:
                    raise SampleError("bad-image", "truncated BMP (shorter than its header's file size)", file=file)
            if full_decode or not intact:
                im.load()
    except SampleError:
        raise
    except Exception as exc:  # PIL raises many types for broken files
        detail = "unrecognised or truncated header" if "cannot identify" in str(exc) else str(exc)
        raise SampleError("bad-image", f"undecodable image ({type(exc).__name__}: {detail})", file=file) from None
    return info


def encode_png(pixels: np.ndarray, compress_level: int = 1) -> bytes:
    """PNG bytes of a uint8 (H, W) / (H, W, 3) array or a uint16 (H, W) array (16-bit grayscale)."""
    if pixels.dtype == np.uint16:
        im = Image.fromarray(np.ascontiguousarray(pixels, dtype="<u2"))  # mode I;16
    elif pixels.dtype == np.uint8:
        im = Image.fromarray(pixels)
    else:
        raise TypeError(f"encode_png needs uint8 or uint16, got {pixels.dtype}")
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def encode(pixels: np.ndarray, suffix: str, quality: int = 90) -> bytes:
    """Encoded bytes of uint8 pixels in the format a file suffix names (``.png``, else JPEG)."""
    if suffix.lower() == ".png":
        return encode_png(pixels)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def decode(data: bytes) -> np.ndarray:
    """Decoded pixels (uint8 or uint16 array) of encoded image bytes."""
    with Image.open(io.BytesIO(data)) as im:
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            return np.asarray(im, dtype=np.uint16) if im.mode != "I" else np.asarray(im).astype(np.uint16)
        return np.asarray(im)
