"""Roll alignment of face images with MediaPipe eye corners, applied identically to registered depth.

MediaPipe 0.10.14's ``solutions.face_mesh`` runs offline (its model ships in the wheel). The
centre of each eye is the mean of its two corner landmarks (33/133: the subject's right eye,
on the image's left; 362/263: the subject's left eye). The roll is the angle of the line
from the image-left eye centre to the image-right one, counter-clockwise positive as seen on
screen; alignment rotates the image about the eyes' midpoint by minus that angle, so the eyes
end up horizontal. Colour is resampled bilinearly, depth by nearest neighbour (so 0 / NaN
"no surface" stays as it is and metric values are never blended); outside the source image
both become 0 (NaN for float depth). Coordinates follow ``ferbench.geometry.render``: pixel
(r, c) covers [c, c+1) × [r, r+1).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

from ..errors import SampleError

IMAGE_LEFT_EYE = (33, 133)  # the subject's right eye: outer and inner corner
IMAGE_RIGHT_EYE = (362, 263)  # the subject's left eye: inner and outer corner
_EYES = (IMAGE_LEFT_EYE, IMAGE_RIGHT_EYE)


@dataclass
class AlignResult:
    """Aligned images, the roll that was removed (degrees) and the 2×3 affine (input → output pixels)."""

    rgb: np.ndarray
    depth: np.ndarray | None
    angle_deg: float
    matrix: np.ndarray


@lru_cache(maxsize=1)
def _face_mesh():
    """One MediaPipe FaceMesh per process, created on first use."""
    from ..extras import require
    mp = require("mediapipe")

    return mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=False)


def estimate_roll(rgb: np.ndarray) -> tuple[float, tuple[float, float]] | None:
    """(roll in degrees, (x, y) midpoint of the eye centres in pixels), or None if no face is found."""
    pixels = _as_rgb(rgb)
    with warnings.catch_warnings():  # mediapipe 0.10.14 calls a protobuf API deprecated in 4.25
        warnings.filterwarnings("ignore", message="SymbolDatabase.GetPrototype", category=UserWarning)
        found = _face_mesh().process(pixels).multi_face_landmarks
    if not found:
        return None
    h, w = pixels.shape[:2]
    marks = found[0].landmark
    left, right = (np.mean([(marks[i].x * w, marks[i].y * h) for i in eye], axis=0) for eye in _EYES)
    dx, dy = right - left
    centre = (left + right) / 2
    return math.degrees(math.atan2(-dy, dx)), (float(centre[0]), float(centre[1]))


def align_pair(rgb: np.ndarray, depth: np.ndarray | None = None) -> AlignResult:
    """Rotate ``rgb`` (and the pixel-registered ``depth``) so the eyes are horizontal.

    Raises ``SampleError('face-not-found')`` when MediaPipe finds no face and
    ``SampleError('size-mismatch')`` when depth and colour differ in size.
    """
    if depth is not None and depth.shape[:2] != rgb.shape[:2]:
        raise SampleError("size-mismatch", f"depth {depth.shape[:2]} and rgb {rgb.shape[:2]} differ in size")
    found = estimate_roll(rgb)
    if found is None:
        raise SampleError("face-not-found", "MediaPipe face mesh found no face to align")
    angle, centre = found
    matrix = rotation_matrix(-angle, centre)
    aligned_depth = None if depth is None else warp(depth, matrix, order=0)
    return AlignResult(warp(rgb, matrix, order=1), aligned_depth, angle, matrix)


def rotation_matrix(angle_deg: float, centre: tuple[float, float]) -> np.ndarray:
    """2×3 affine rotating pixel coordinates counter-clockwise on screen by ``angle_deg`` about ``centre``."""
    a = math.radians(angle_deg)
    rot = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])  # y points down
    c = np.asarray(centre, dtype=np.float64)
    return np.column_stack([rot, c - rot @ c])


def warp(image: np.ndarray, matrix: np.ndarray, order: int) -> np.ndarray:
    """``image`` resampled through the affine ``matrix`` (input → output pixel coordinates).

    ``order`` 1 is bilinear, 0 nearest neighbour. Pixels from outside the source are 0, or NaN
    for float images. uint8 (gray or RGB), uint16 and float32 images keep their dtype.
    """
    inverse = np.linalg.inv(np.vstack([matrix, [0.0, 0.0, 1.0]]))[:2].ravel().tolist()
    floating = np.issubdtype(image.dtype, np.floating)
    if image.dtype not in (np.uint8, np.uint16) and not floating:
        raise ValueError(f"cannot warp {image.dtype} images")
    source = Image.fromarray(image.astype(np.float32) if floating else image)
    resample = Image.Resampling.BILINEAR if order == 1 else Image.Resampling.NEAREST
    size = (image.shape[1], image.shape[0])
    fill = float("nan") if floating else (0,) * len(source.getbands())
    out = np.asarray(source.transform(size, Image.Transform.AFFINE, inverse, resample=resample, fillcolor=fill))
    return out.astype(image.dtype, copy=False)


def _as_rgb(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8:
        raise ValueError(f"face alignment needs uint8 colour, got {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(image[..., :3])
