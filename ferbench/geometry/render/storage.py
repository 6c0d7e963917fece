"""How rendered depth is stored: 16-bit PNG in ``DEPTH_UNIT_MM`` units, and the metadata recorded."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from ...imageio import encode_png
from .camera import Camera, View

DEPTH_UNIT_MM = 0.1


def depth_metadata(camera: Camera) -> dict:
    """The depth description converters store in the schema's ``ferbench`` metadata."""
    return {
        "unit_mm": DEPTH_UNIT_MM,
        "zero": "no surface",
        "source": "rendered",
        "projection": camera.projection,
        "mm_per_px": camera.mm_per_px,
        "size": camera.size,
        "reference": (
            f"plane {camera.margin_mm:g} mm in front of the nearest surface point, view along -z; "
            "depth = z_plane - z, larger = farther"
        ),
        "up": "+y",
        "camera": camera.to_dict(),
    }


def depth_to_png(view: View | np.ndarray) -> bytes:
    """16-bit PNG of a depth map in 0.1 mm units (0 = no surface; see ``ferbench.geometry.render``)."""
    depth = view.depth_mm if isinstance(view, View) else np.asarray(view)
    units = np.nan_to_num(np.rint(depth.astype(np.float64) / DEPTH_UNIT_MM), nan=0.0)
    units = np.where(np.isfinite(depth), np.clip(units, 1, 65535), 0)
    return encode_png(units.astype(np.uint16))


def png_to_depth_mm(data: bytes) -> np.ndarray:
    """Float32 depth in mm of a depth PNG, NaN where it holds 0."""
    with Image.open(io.BytesIO(data)) as im:
        units = np.asarray(im).astype(np.float32)
    return np.where(units > 0, units * np.float32(DEPTH_UNIT_MM), np.nan).astype(np.float32)
