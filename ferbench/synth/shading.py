"""Per-pixel shading of a mesh seen through a ``ferbench.geometry.render`` view.

Depth comes from ``render_mesh_depth``; colour needs to know *which* triangle each pixel sees and
where on it, so ``cast`` uses the depth renderer's own ``Raycaster.cast`` (the same pixel-centre
rays) for the hit triangle and barycentric weights per pixel. Attributes
(normals, texture coordinates) are then interpolated per pixel and lit with a Lambertian model
plus a faint specular sheen, in linear RGB, and encoded to sRGB at the end.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..geometry.mesh import Mesh
from ..geometry.render.raycast import Raycaster


@dataclass
class Hits:
    """What each pixel sees: ``face`` (H, W) triangle index, −1 = background; ``bary`` (H, W, 3)."""

    face: np.ndarray
    bary: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        return self.face >= 0

    def interpolate(self, faces: np.ndarray, values: np.ndarray) -> np.ndarray:
        """(n_hit, C) per-vertex ``values`` interpolated at the hit pixels (row-major order)."""
        m = self.mask
        corners = values[faces[self.face[m]]]  # (n, 3, C)
        return np.einsum("nk,nkc->nc", self.bary[m], corners)


def cast(mesh: Mesh, frame: dict) -> Hits:
    """Hit triangle and barycentric weights of every pixel of ``frame`` (a ``View.frame``)."""
    face, bary, _ = Raycaster(mesh).cast(frame)
    return Hits(face, bary)


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(N, 3) unit normals: area-weighted mean of the normals of the faces around each vertex."""
    v = vertices[faces]
    fn = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    idx = faces.reshape(-1)
    normals = np.stack([np.bincount(idx, np.repeat(fn[:, c], 3), len(vertices)) for c in range(3)], 1)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return normals / np.maximum(length, 1e-12)


@dataclass(frozen=True)
class Light:
    """A directional light (``direction`` points from the surface toward the light) plus ambient."""

    direction: tuple[float, float, float] = (-0.35, 0.45, 1.0)
    intensity: float = 0.85
    ambient: float = 0.3
    colour: tuple[float, float, float] = (1.0, 1.0, 1.0)
    specular: float = 0.04

    def unit(self) -> np.ndarray:
        d = np.asarray(self.direction, dtype=np.float64)
        return d / np.linalg.norm(d)


def lambert(albedo: np.ndarray, normals: np.ndarray, light: Light, view: tuple = (0.0, 0.0, 1.0)) -> np.ndarray:
    """Linear radiance of (n, 3) albedo with (n, 3) normals (flipped to face the viewer)."""
    v = np.asarray(view, dtype=np.float64)
    n = normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    n = np.where((n @ v)[:, None] < 0, -n, n)
    ldir = light.unit()
    diffuse = np.clip(n @ ldir, 0.0, None)
    half = (ldir + v) / np.linalg.norm(ldir + v)
    sheen = light.specular * np.clip(n @ half, 0.0, None) ** 24
    colour = np.asarray(light.colour, dtype=np.float64)
    return (albedo * (light.ambient + light.intensity * diffuse)[:, None] + sheen[:, None]) * colour


def to_srgb8(linear: np.ndarray) -> np.ndarray:
    """uint8 sRGB of linear RGB values (clipped to [0, 1])."""
    x = np.clip(linear, 0.0, 1.0)
    srgb = np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)
    return np.rint(srgb * 255).astype(np.uint8)
