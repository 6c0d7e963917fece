"""Pieces shared by the RGB-D converters (bu3dfe, bosphorus, caldr_menders).

* ``ALIGN`` / ``align_images``: the ``align=true`` option. MediaPipe finds the eye corners on
  the RGB image and the same roll rotation is applied to the depth image when the two are
  pixel-registered; a face that is not found is a reported fault (``face-not-found``), never a
  silent drop. Aligned images are re-encoded as PNG (depth stays 16-bit).
* ``CAMERA_OPTIONS`` / ``camera``: the virtual camera that renders meshes and range grids.
* ``is_depth16``: the check that a depth image is a 16-bit single-channel PNG.
* ``SLOW_BLOCK``: the conversion block size of loaders whose items are rendered or aligned.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np

from ..errors import SampleError
from ..geometry.render import Camera
from ..imageio import ImageInfo, decode, encode_png
from .base import Option

ALIGN = Option(
    False,
    "roll-align faces with MediaPipe eye corners (same rotation on registered RGB and depth); "
    "faces not found are reported as face-not-found faults",
)
CAMERA_OPTIONS: dict[str, Option] = {
    "size": Option(256, "depth image width and height in pixels"),
    "mm_per_px": Option(0.8, "pixel pitch in millimetres at the face (orthographic scale)"),
    "projection": Option("orthographic", "virtual camera model", ("orthographic", "perspective")),
}
_DEPTH16_MODES = ("I;16", "I;16L", "I;16B")
#: Items per conversion block when every item is rendered or aligned (tens of ms each): small
#: blocks keep every worker busy to the end (2,500 BU-3DFE scans make 40 blocks).
SLOW_BLOCK = 64


def camera(opts: dict[str, Any]) -> Camera:
    """The render camera named by a loader's ``size`` / ``mm_per_px`` / ``projection`` options."""
    return Camera(size=opts["size"], mm_per_px=opts["mm_per_px"], projection=opts["projection"])


def is_depth16(info: ImageInfo) -> bool:
    return info.format == "PNG" and info.mode in _DEPTH16_MODES


@contextmanager
def blame(file: str) -> Iterator[None]:
    """Name ``file`` in any ``SampleError`` raised inside the block that names no file itself."""
    try:
        yield
    except SampleError as exc:
        if exc.file is None:
            exc.file = file
        raise


def align_images(rgb: bytes, depth: bytes | None, file: str) -> tuple[bytes, bytes | None, np.ndarray]:
    """Roll-align an encoded RGB image (and its registered depth) → PNG bytes and the 2×3 affine.

    The affine maps input to output pixel coordinates (apply it to projected landmarks). Raises
    ``SampleError('face-not-found')``, naming ``file``, when MediaPipe finds no face.
    """
    from ..geometry.align import align_pair

    pixels = decode(rgb)
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        pixels = pixels[:, :, :3]
    with blame(file):
        result = align_pair(pixels, None if depth is None else decode(depth))
    aligned_depth = None if result.depth is None else encode_png(result.depth)
    return encode_png(result.rgb), aligned_depth, result.matrix


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """(n, 2) pixel points moved by a 2×3 affine (NaN rows stay NaN)."""
    return points @ matrix[:, :2].T + matrix[:, 2]
