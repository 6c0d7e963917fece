"""The numpy z-buffer: exact barycentric depth at the pixel centres each triangle covers.

The test oracle, and the fallback when open3d cannot import. ``_Screen`` projects a mesh and culls
triangles that cover no pixel centre (exact), which the ray caster uses too.
"""

from __future__ import annotations

import numpy as np

from ..mesh import Mesh
from .camera import _camera, _project

class _Screen:
    """A mesh projected into a view: per-vertex image coordinates and, per triangle that covers
    at least one pixel centre (the others cannot be seen by any pixel, so culling them is exact),
    the range of pixel rows and columns its bounding box covers."""

    def __init__(self, mesh: Mesh, frame: dict):
        cam = _camera(frame)
        self.u, self.v, w = _project(mesh.vertices, frame)
        # orthographic depth is affine in the image; in perspective 1/w is: interpolate that
        self.value = w if cam.projection == "orthographic" else -1.0 / w
        corners = np.ascontiguousarray(mesh.faces.T)
        c0, c1 = _pixel_span(self.u, corners, cam.size)
        r0, r1 = _pixel_span(self.v, corners, cam.size)
        keep = (c1 >= c0) & (r1 >= r0)
        self.faces = mesh.faces[keep]
        self.c0, self.c1, self.r0, self.r1 = c0[keep], c1[keep], r0[keep], r1[keep]


# Culling keeps a triangle whose extent reaches a pixel centre within this many pixels: a centre
# lying on an edge (up to rounding) must keep the triangles on both sides.
_CULL_SLACK_PX = 1e-6


def _pixel_span(coord: np.ndarray, corners: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """First and last pixel index (clipped to the image) whose centre lies within each triangle's extent."""
    first, last = _centre_range(coord, n)
    with np.errstate(invalid="ignore"):  # non-finite coordinates of vertices no face uses
        first, last = first.astype(np.int16), last.astype(np.int16)
    return first.take(corners).min(axis=0), last.take(corners).max(axis=0)


def _centre_range(coord: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per image coordinate, the first pixel whose centre is at or after it and the last at or before it."""
    first = np.clip(np.ceil(coord - 0.5 - _CULL_SLACK_PX), 0, n)
    last = np.clip(np.floor(coord - 0.5 + _CULL_SLACK_PX), -1, n - 1)
    return first, last


def _rasterise(screen: _Screen, frame: dict) -> np.ndarray:
    """Numpy z-buffer: per triangle, barycentric interpolation at the pixel centres it covers.

    Triangles are grouped by the side of their pixel bounding box (rounded up to a power of
    two) so each group is one vectorised pass over s × s candidate pixels per triangle.
    """
    cam = _camera(frame)
    n = cam.size
    zbuf = np.full(n * n, np.inf)
    tri = screen.faces
    x, y, z = screen.u[tri], screen.v[tri], screen.value[tri]
    area = (x[:, 1] - x[:, 0]) * (y[:, 2] - y[:, 0]) - (x[:, 2] - x[:, 0]) * (y[:, 1] - y[:, 0])
    span = np.maximum(screen.c1 - screen.c0, screen.r1 - screen.r0).astype(np.int64) + 1
    bucket = np.ceil(np.log2(span)).astype(int)
    bucket[np.abs(area) <= 1e-12] = -1  # seen edge-on: covers no area
    for b in np.unique(bucket[bucket >= 0]):
        sel = np.flatnonzero(bucket == b)
        s = 2**b
        chunk = max(1, (1 << 22) // (s * s))
        for start in range(0, sel.size, chunk):
            t = sel[start : start + chunk]
            box = (screen.c0[t], screen.c1[t], screen.r0[t], screen.r1[t])
            _fill(zbuf, s, n, x[t], y[t], z[t], area[t], box)
    zbuf = zbuf.reshape(n, n)
    depth = zbuf if cam.projection == "orthographic" else -1.0 / zbuf - cam.distance_mm
    return np.where(np.isfinite(zbuf), depth, np.nan).astype(np.float32)


def _fill(zbuf, s, n, x, y, z, area, box) -> None:
    """Scatter-min the interpolated value of triangles into ``zbuf`` at the pixel centres they hold."""
    c0, c1, r0, r1 = (a.astype(np.int64)[:, None] for a in box)
    oy, ox = np.divmod(np.arange(s * s), s)
    cols, rows = c0 + ox, r0 + oy
    px, py = cols + 0.5, rows + 0.5
    (x0, x1, x2), (y0, y1, y2), (z0, z1, z2) = (a.T[:, :, None] for a in (x, y, z))
    b0 = ((x1 - px) * (y2 - py) - (x2 - px) * (y1 - py)) / area[:, None]
    b1 = ((x2 - px) * (y0 - py) - (x0 - px) * (y2 - py)) / area[:, None]
    b2 = 1.0 - b0 - b1
    eps = -1e-9  # pixel centres on a shared edge belong to both triangles: no cracks
    inside = (cols <= c1) & (rows <= r1) & (b0 >= eps) & (b1 >= eps) & (b2 >= eps)
    value = b0 * z0 + b1 * z1 + b2 * z2
    np.minimum.at(zbuf, (rows * n + cols)[inside], value[inside])
