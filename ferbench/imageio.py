"""Cheap checks and encoders for image bytes: conversion passes encoded bytes through untouched.

``check_image`` reads only the header plus the format's end marker, so a 220 kB JPEG costs about
a microsecond (its segment chain is walked directly; other formats use PIL's lazy open, tens of
microseconds), not a decode. A PNG without its IEND chunk or a BMP
shorter than its header says is truncated; a JPEG whose EOI marker is not at the end (truncated,
or trailing junk after a complete image) is fully decoded before it is accepted or rejected.
"""

from __future__ import annotations

import io
import struct
import zlib
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
    if not full_decode and (info := _intact_jpeg(data)) is not None:
        return info
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


_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # frame headers (not DHT, JPG, DAC)
_JPEG_MODES = {1: "L", 3: "RGB"}


def _intact_jpeg(data: bytes) -> ImageInfo | None:
    """Info of a JPEG that ends with EOI and whose segment chain leads to a frame header, else None.

    Walking the header segments in Python costs about a microsecond where PIL's open costs about
    thirty; anything unusual (another format, a broken chain, CMYK, bytes after EOI) returns None
    and PIL decides.
    """
    if not (data.startswith(b"\xff\xd8\xff") and data.endswith(b"\xff\xd9")):
        return None
    pos, end = 2, len(data) - 10
    while pos < end:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
        elif marker in _JPEG_SOF:
            height, width, components = struct.unpack_from(">HHB", data, pos + 5)
            mode = _JPEG_MODES.get(components)
            return ImageInfo("JPEG", width, height, mode) if mode and height and width else None
        elif 0xD0 <= marker <= 0xDA:  # RST, SOI, EOI or SOS before any frame header
            return None
        else:
            pos += 2 + ((data[pos + 2] << 8) | data[pos + 3])
    return None


def encode_png(pixels: np.ndarray, level: int = 1) -> bytes:
    """PNG bytes of a uint8 (H, W) / (H, W, 3) array or a uint16 (H, W) array (16-bit grayscale).

    Written directly (every row with PNG's Sub filter, one zlib stream at ``level``): several
    times faster than PIL's encoder on the small images conversion produces (48×48 FER2013
    faces: ~30 µs instead of ~130 µs), and within a few percent of its size.
    """
    if pixels.dtype not in (np.uint8, np.uint16) or pixels.ndim not in (2, 3):
        raise TypeError(f"encode_png needs a uint8 or uint16 (H, W) or uint8 (H, W, 3) array, got {pixels.dtype} {pixels.shape}")
    if pixels.ndim == 3 and (pixels.shape[2] != 3 or pixels.dtype != np.uint8):
        raise TypeError(f"encode_png: colour images must be uint8 (H, W, 3), got {pixels.dtype} {pixels.shape}")
    height, width = pixels.shape[:2]
    colour = 2 if pixels.ndim == 3 else 0
    rows = np.ascontiguousarray(pixels, dtype=">u2" if pixels.dtype == np.uint16 else np.uint8).view(np.uint8)
    rows = rows.reshape(height, -1)
    step = rows.shape[1] // width  # bytes per pixel
    filtered = np.empty((height, rows.shape[1] + 1), np.uint8)
    filtered[:, 0] = 1  # Sub: each byte minus the same byte of the pixel to its left
    filtered[:, 1 : step + 1] = rows[:, :step]
    np.subtract(rows[:, step:], rows[:, :-step], out=filtered[:, step + 1 :])
    header = struct.pack(">IIBBBBB", width, height, 8 * pixels.itemsize, colour, 0, 0, 0)
    return b"".join(
        (_PNG_SIGNATURE, _png_chunk(b"IHDR", header), _png_chunk(b"IDAT", zlib.compress(filtered.data, level)), _PNG_END)
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = _png_chunk(b"IEND", b"")


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
