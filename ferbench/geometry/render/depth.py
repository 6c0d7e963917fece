"""Depth maps of meshes and of organised point grids (triangulated), with backend choice."""

from __future__ import annotations

import numpy as np

from ..mesh import GeometryError, Mesh
from .camera import Camera, View, _frame, _project
from .raycast import Raycaster, _open3d
from .zbuffer import _centre_range, _rasterise, _Screen

def render_mesh_depth(mesh: Mesh, camera: Camera = Camera(), backend: str = "auto") -> View:
    """Depth map of a triangle mesh (convention: ``ferbench.geometry.render``); ``backend`` as ``_render``."""
    if len(mesh.faces) == 0:
        raise GeometryError("mesh has no faces")
    return _render(mesh, _frame(mesh.used_vertices(), camera), backend)


#: One view of a mesh loaded for it (what a converter renders): the numpy z-buffer needs no BVH and
#: is about 3× faster than open3d's build + raycast on a BU-3DFE-size scan (``ferbench bench
#: render_mesh``), with the same depths; many views of one mesh: ``raycast.Raycaster`` (open3d).
AUTO_BACKEND = "numpy"


def _render(mesh: Mesh, frame: dict, backend: str) -> View:
    """``backend``: "auto" (``AUTO_BACKEND``), "numpy" or "open3d" (numpy when open3d cannot import)."""
    if backend not in ("auto", "open3d", "numpy"):
        raise ValueError(f"backend must be 'auto', 'open3d' or 'numpy', not {backend!r}")
    backend = AUTO_BACKEND if backend == "auto" else backend
    screen = _Screen(mesh, frame)
    n = frame["camera"]["size"]
    if len(screen.faces) == 0:
        depth = np.full((n, n), np.nan, np.float32)
    elif backend == "open3d" and _open3d() is not None:
        depth = Raycaster(Mesh(mesh.vertices, screen.faces)).depth(frame)
    else:
        depth = _rasterise(screen, frame)
    return View(depth, frame)


def grid_mesh(
    x: np.ndarray, y: np.ndarray, z: np.ndarray, valid: np.ndarray, cells: np.ndarray | None = None
) -> Mesh:
    """Triangles joining neighbouring valid samples of an organised (H, W) point grid.

    A 2×2 cell with four valid corners gives two triangles, one with three valid corners gives
    the triangle of those three; cells with fewer give nothing. NaN coordinates count as
    invalid. ``cells`` ((H-1, W-1) bool) restricts triangulation to the cells it marks.
    Vertex k is grid sample k in row-major order.
    """
    x, y, z = (np.asarray(a, dtype=np.float64) for a in (x, y, z))
    ok = np.asarray(valid, dtype=bool) & np.isfinite(x) & np.isfinite(y) & np.isfinite(z)
    h, w = ok.shape
    ids = np.arange(h * w).reshape(h, w)
    a, b, c, d = ids[:-1, :-1], ids[:-1, 1:], ids[1:, :-1], ids[1:, 1:]  # a b / c d
    va, vb, vc, vd = ok[:-1, :-1], ok[:-1, 1:], ok[1:, :-1], ok[1:, 1:]
    if cells is not None:
        va, vb, vc, vd = va & cells, vb & cells, vc & cells, vd & cells
    candidates = (  # split along b-c; a cell missing b or c is split along a-d instead
        (a, c, b, va & vc & vb),
        (c, d, b, vc & vd & vb),
        (a, c, d, va & vc & vd & ~vb),
        (a, d, b, va & vd & vb & ~vc),
    )
    faces = np.concatenate([np.stack([p[m], q[m], r[m]], axis=1) for p, q, r, m in candidates])
    return Mesh(np.stack([x.ravel(), y.ravel(), z.ravel()], axis=1), faces)


def render_grid_depth(
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    valid: np.ndarray,
    camera: Camera = Camera(),
    backend: str = "auto",
) -> View:
    """Depth map of an organised (H, W) point grid, e.g. a Bosphorus ``.bnt`` scan.

    The grid is triangulated (``grid_mesh``) and rendered like a mesh, so scans and meshes share
    one exact code path; holes stay holes. Where a sample lands in the image depends on its x, y
    only (row order just decides which samples are neighbours). The frame is centred on the
    bounding box of the valid samples. Cells whose extent holds no pixel centre are dropped
    before triangulating (exact: no pixel could see them), which makes a dense grid cheap.
    """
    x, y, z = (np.asarray(a, dtype=np.float64) for a in (x, y, z))
    ok = np.asarray(valid, dtype=bool) & np.isfinite(x) & np.isfinite(y) & np.isfinite(z)
    if not ok.any():
        raise GeometryError("point grid has no valid sample")
    frame = _frame(np.stack([x[ok], y[ok], z[ok]], axis=1), camera)
    u, v, _ = _project(np.stack([x.ravel(), y.ravel(), z.ravel()], axis=1), frame)
    cells = _cells_over_pixels(u.reshape(x.shape), v.reshape(x.shape), ok, camera.size)
    mesh = grid_mesh(x, y, z, ok, cells)
    if len(mesh.faces) == 0 and len(grid_mesh(x, y, z, ok).faces) == 0:
        raise GeometryError("point grid has no 2x2 cell with three valid samples")
    return _render(mesh, frame, backend)


def _cells_over_pixels(u: np.ndarray, v: np.ndarray, ok: np.ndarray, n: int) -> np.ndarray:
    """(H-1, W-1) mask of grid cells whose valid corners' image extent holds a pixel centre."""
    spans = []
    for coord in (u, v):
        first, last = _centre_range(coord, n)
        first, last = np.where(ok, first, np.inf), np.where(ok, last, -np.inf)
        lo = np.minimum(np.minimum(first[:-1, :-1], first[:-1, 1:]), np.minimum(first[1:, :-1], first[1:, 1:]))
        hi = np.maximum(np.maximum(last[:-1, :-1], last[:-1, 1:]), np.maximum(last[1:, :-1], last[1:, 1:]))
        spans.append(lo <= hi)
    return spans[0] & spans[1]
