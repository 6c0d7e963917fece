"""Exact depth by ray casting: one ray per pixel centre into open3d's ``RaycastingScene``."""

from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np

from ..mesh import Mesh
from .camera import _camera

@lru_cache(maxsize=1)
def _open3d():
    try:
        from ...extras import require
        open3d = require("open3d")
    except (ImportError, OSError) as exc:
        warnings.warn(f"open3d unavailable ({exc}); rendering depth with the numpy z-buffer", stacklevel=4)
        return None
    return open3d


class Raycaster:
    """A mesh loaded once into open3d's ray-casting BVH; ``depth(frame)`` renders one view."""

    def __init__(self, mesh: Mesh):
        o3d = _open3d()
        # a local frame near the mesh keeps float32 precise (~1e-5 mm)
        self.offset = mesh.used_vertices().min(axis=0)
        self.scene = o3d.t.geometry.RaycastingScene()
        self.scene.add_triangles(
            o3d.core.Tensor(np.ascontiguousarray(mesh.vertices - self.offset, dtype=np.float32)),
            o3d.core.Tensor(np.ascontiguousarray(mesh.faces, dtype=np.uint32)),
        )

    def cast(self, frame: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One cast of the pixel-centre rays of ``frame``: per pixel the hit triangle (−1 = none),
        its barycentric weights (H, W, 3) and the depth in mm (NaN = no surface)."""
        o3d = _open3d()
        out, eye_height = self._cast(frame)
        ids = out["primitive_ids"].numpy().astype(np.int64)
        face = np.where(ids == o3d.t.geometry.RaycastingScene.INVALID_ID, -1, ids)
        uv = out["primitive_uvs"].numpy().astype(np.float64)
        bary = np.stack([1.0 - uv[..., 0] - uv[..., 1], uv[..., 0], uv[..., 1]], axis=-1)
        return face, bary, _depth(out, eye_height)

    def depth(self, frame: dict) -> np.ndarray:
        """(size, size) float32 depth in mm of the view ``frame`` describes, NaN = no surface (the
        cast without the triangle ids and weights ``cast`` also converts)."""
        return _depth(*self._cast(frame))

    def _cast(self, frame: dict) -> tuple[dict, float]:
        """open3d's results for the pixel-centre rays of ``frame``, and the rays' start above the z plane."""
        o3d = _open3d()
        cam = _camera(frame)
        n = cam.size
        centres = np.arange(n) + 0.5 - n / 2
        cols, rows = np.meshgrid(centres, centres)
        rays = np.empty((n, n, 6), np.float64)
        eye_height = cam.distance_mm if cam.projection == "perspective" else 0.0
        if cam.projection == "orthographic":
            rays[..., 0] = frame["center_x"] + cols * cam.mm_per_px
            rays[..., 1] = frame["center_y"] - rows * cam.mm_per_px
            rays[..., 3:] = (0.0, 0.0, -1.0)
        else:
            rays[..., 0], rays[..., 1] = frame["center_x"], frame["center_y"]
            rays[..., 3], rays[..., 4], rays[..., 5] = cols / cam.focal, -rows / cam.focal, -1.0
        rays[..., 2] = frame["z_plane"] + eye_height
        rays[..., :3] -= self.offset
        return self.scene.cast_rays(o3d.core.Tensor(rays.astype(np.float32))), eye_height


def _depth(out: dict, eye_height: float) -> np.ndarray:
    """Depth in mm from open3d's hit distances: the rays point down z, so t is the z-distance from
    the ray origin (NaN where nothing was hit)."""
    hit = out["t_hit"].numpy()
    return np.where(np.isfinite(hit), hit.astype(np.float64) - eye_height, np.nan).astype(np.float32)
