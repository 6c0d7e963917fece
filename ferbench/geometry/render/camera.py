"""The virtual camera, rendered views and the projection of scan points into the image.

A view's ``frame`` (``center_x``, ``center_y``, ``z_plane``, ``camera``) is all the renderers need;
``_frame`` builds it from the surface points, ``_project`` maps scan points to image coordinates.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

_PROJECTIONS = ("orthographic", "perspective")
_CENTERS = ("bbox", "origin")


@dataclass(frozen=True)
class Camera:
    """A square virtual camera looking along −z (conventions: ``ferbench.geometry.render``)."""

    size: int = 256
    mm_per_px: float = 0.8
    projection: str = "orthographic"
    distance_mm: float = 500.0
    focal_px: float | None = None
    margin_mm: float = 50.0
    center: str = "bbox"

    def __post_init__(self) -> None:
        if self.projection not in _PROJECTIONS:
            raise ValueError(f"projection must be one of {_PROJECTIONS}, not {self.projection!r}")
        if self.center not in _CENTERS:
            raise ValueError(f"center must be one of {_CENTERS}, not {self.center!r}")
        if not 1 <= self.size <= 16384:  # pixel indices are int16 while culling
            raise ValueError(f"size must be within 1..16384, not {self.size}")
        if self.mm_per_px <= 0 or self.margin_mm <= 0 or self.distance_mm <= 0:
            raise ValueError("mm_per_px, margin_mm and distance_mm must be positive")

    @property
    def focal(self) -> float:
        """Focal length in pixels of the perspective camera."""
        return self.focal_px if self.focal_px is not None else self.distance_mm / self.mm_per_px

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class View:
    """A rendered depth map: (size, size) float32 mm from the reference plane, NaN = no surface.

    ``frame`` holds ``center_x``, ``center_y``, ``z_plane`` (mm, scan frame) and ``camera``
    (``Camera.to_dict()``): enough to project scan points into the image.
    """

    depth_mm: np.ndarray
    frame: dict

    def project(self, points_xyz: np.ndarray) -> np.ndarray:
        """(n, 2) continuous image coordinates (x = column, y = row) of scan points.

        Pixel (r, c) spans [c, c+1) × [r, r+1), so ``np.floor`` of the result indexes the pixel
        whose centre sampled the point.
        """
        u, v, _ = _project(np.asarray(points_xyz, dtype=np.float64).reshape(-1, 3), self.frame)
        return np.stack([u, v], axis=1)


def _frame(points: np.ndarray, camera: Camera) -> dict:
    if camera.center == "bbox":
        lo, hi = points[:, :2].min(axis=0), points[:, :2].max(axis=0)
        cx, cy = (lo + hi) / 2
    else:
        cx = cy = 0.0
    z_plane = float(points[:, 2].max()) + camera.margin_mm
    return {"center_x": float(cx), "center_y": float(cy), "z_plane": z_plane, "camera": camera.to_dict()}


def _camera(frame: dict) -> Camera:
    return Camera(**frame["camera"])


def _project(points: np.ndarray, frame: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Image coordinates (u = column, v = row) and eye distance w of points (w = depth if orthographic)."""
    cam = _camera(frame)
    dx, dy = points[:, 0] - frame["center_x"], points[:, 1] - frame["center_y"]
    depth = frame["z_plane"] - points[:, 2]
    if cam.projection == "orthographic":
        scale = 1.0 / cam.mm_per_px
        return dx * scale + cam.size / 2, cam.size / 2 - dy * scale, depth
    w = depth + cam.distance_mm
    return cam.focal * dx / w + cam.size / 2, cam.size / 2 - cam.focal * dy / w, w
