"""Geometry-path speed on synthetic face-sized surfaces (no dataset needed): VRML parsing and depth
rendering, each beside the cheapest thing doing part of the same job, with the issue's absolute
budgets as ``limit``. Best of ``repeats`` (millisecond work on shared machines).

Render baselines are plain numpy point splats (project every vertex, keep the nearest per
pixel): cheap but not a surface (holes between samples, nearest-pixel rounding). ``open3d``
casts into a BVH it builds once per mesh, so a view of a loaded mesh (``render_view``) is much
cheaper than a new mesh (``render_mesh``); the numpy z-buffer keeps nothing between views.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from ..geometry.mesh import Mesh
from .base import BenchResult, benchmark, compared, measure


def face_like_grid(rows: int, cols: int, pitch: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A (rows, cols) organised grid over an ellipsoid cap with a nose, rows top-to-bottom."""
    x, y = np.meshgrid((np.arange(cols) - cols / 2) * pitch, (rows / 2 - np.arange(rows)) * pitch)
    cap = 1.0 - (x / 75.0) ** 2 - (y / 95.0) ** 2
    nose = 25.0 * np.exp(-(x**2 + (y + 5.0) ** 2) / (2 * 9.0**2))
    z = 80.0 * np.sqrt(np.clip(cap, 0.0, None)) + nose
    return x, y, z, cap > 0.05


def face_like_mesh(n_vertices: int) -> Mesh:
    """A face-sized mesh of about ``n_vertices`` vertices and twice as many triangles, with uv."""
    from ..geometry.render import grid_mesh

    side = int(round(np.sqrt(n_vertices)))
    x, y, z, _ = face_like_grid(side, side, 150.0 / side)
    mesh = grid_mesh(x, y, z, np.ones_like(x, bool))
    uv = (mesh.vertices[:, :2] - mesh.vertices[:, :2].min(axis=0)) / np.ptp(mesh.vertices[:, :2], axis=0)
    return Mesh(mesh.vertices, mesh.faces, uv, mesh.faces)


def _splat(points: np.ndarray, frame: dict) -> np.ndarray:
    from ..geometry.render.camera import _project

    n = frame["camera"]["size"]
    u, v, depth = _project(points, frame)
    col, row = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
    inside = (col >= 0) & (col < n) & (row >= 0) & (row < n)
    zbuf = np.full(n * n, np.inf)
    np.minimum.at(zbuf, row[inside] * n + col[inside], depth[inside])
    return zbuf.reshape(n, n)


@benchmark("vrml", quick={"n_vertices": 2000, "repeats": 5})
def bench_vrml(n_vertices: int = 20000, repeats: int = 9) -> BenchResult:
    """VRML parse of a BU-3DFE-like F3D mesh vs reading its bytes (budget: 100 ms)."""
    from ..geometry.vrml import read_vrml, write_vrml

    mesh = face_like_mesh(n_vertices)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "F0001_NE00WH_F3D.wrl"
        write_vrml(path, mesh, texture_url="F0001_NE00WH_F3D.bmp")
        t = measure({"parse": lambda: read_vrml(path), "read": path.read_bytes}, repeat=repeats)
        size = path.stat().st_size
    return BenchResult(
        figure=t["parse"].best, what="geometry.vrml.read_vrml of one F3D-style file",
        baseline=compared("read the file's bytes", "baseline", t["read"]), limit=0.100,
        notes={"vertices": len(mesh.vertices), "faces": len(mesh.faces), "file_bytes": size, "statistic": f"best of {repeats}"},
    )


def _mesh_setup(n_faces: int, size: int) -> tuple:
    from ..geometry.render import Camera
    from ..geometry.render.camera import _frame

    camera = Camera(size=size)
    mesh = face_like_mesh(n_faces // 2)
    return camera, mesh, _frame(mesh.used_vertices(), camera)


@benchmark("render_view", quick={"n_faces": 5000, "size": 64})
def bench_render_view(n_faces: int = 50000, size: int = 256, repeats: int = 5) -> BenchResult:
    """A further depth view of an already loaded mesh (open3d raycast, BVH built) vs splatting its
    vertices (budget 5 ms per extra view)."""
    from ..geometry.render import Raycaster

    camera, mesh, frame = _mesh_setup(n_faces, size)
    raycaster = Raycaster(mesh)
    t = measure({"view": lambda: raycaster.depth(frame), "splat": lambda: _splat(mesh.vertices, frame)}, repeat=repeats)
    return BenchResult(
        figure=t["view"].best, what=f"one {size}² depth view of a loaded {len(mesh.faces)}-face mesh (open3d)",
        baseline=compared("numpy splat of its vertices", "baseline", t["splat"]), limit=0.005,
        notes={"faces": len(mesh.faces), "size": size, "statistic": f"best of {repeats} (BVH built in the warm-up)"},
    )


@benchmark("render_mesh", quick={"n_faces": 5000, "size": 64})
def bench_render_mesh(n_faces: int = 50000, size: int = 256, repeats: int = 5) -> BenchResult:
    """A new mesh's one depth view with the default ("auto") backend vs splatting (budget 20 ms), and
    vs the other backend (open3d's BVH build + raycast); the two backends' agreement is in the notes."""
    from ..geometry.render import render_mesh_depth
    from ..geometry.render.depth import AUTO_BACKEND

    camera, mesh, frame = _mesh_setup(n_faces, size)
    t = measure({"auto": lambda: render_mesh_depth(mesh, camera),
                 "open3d": lambda: render_mesh_depth(mesh, camera, "open3d"),
                 "splat": lambda: _splat(mesh.vertices, frame)}, repeat=repeats)
    o3d, npy = t["open3d"].value.depth_mm, t["auto"].value.depth_mm
    return BenchResult(
        figure=t["auto"].best, what=f"render one {size}² depth view of a new {len(mesh.faces)}-face mesh (auto: {AUTO_BACKEND})",
        baseline=compared("numpy splat of its vertices", "baseline", t["splat"]), limit=0.020,
        peers=[compared("open3d raycast backend (BVH build + one view)", "peer", t["open3d"], goal=1.0)],
        notes={"faces": len(mesh.faces), "size": size,
               "open3d_vs_numpy_max_abs_mm": float(np.nanmax(np.abs(o3d - npy))),
               "open3d_vs_numpy_coverage_mismatch_px": int((np.isfinite(o3d) != np.isfinite(npy)).sum()),
               "statistic": f"best of {repeats}"},
    )


@benchmark("render_grid", quick={"size": 64, "grid_shape": (120, 160)})
def bench_render_grid(size: int = 256, grid_shape: tuple[int, int] = (480, 640), repeats: int = 5) -> BenchResult:
    """An organised point grid (Bosphorus, 640×480) → depth (auto backend) vs splatting its points, and
    vs the open3d backend."""
    from ..geometry.render import Camera, render_grid_depth
    from ..geometry.render.camera import _frame

    camera = Camera(size=size)
    gx, gy, gz, valid = face_like_grid(*grid_shape, pitch=0.3 * 480 / grid_shape[0])
    points = np.stack([gx[valid], gy[valid], gz[valid]], axis=1)
    frame = _frame(points, camera)
    t = measure({"auto": lambda: render_grid_depth(gx, gy, gz, valid, camera),
                 "open3d": lambda: render_grid_depth(gx, gy, gz, valid, camera, "open3d"),
                 "splat": lambda: _splat(points, frame)}, repeat=repeats)
    return BenchResult(
        figure=t["auto"].best, what=f"a {grid_shape[1]}×{grid_shape[0]} point grid → {size}² depth (auto backend)",
        baseline=compared("numpy splat of its points", "baseline", t["splat"]),
        peers=[compared("open3d raycast backend", "peer", t["open3d"], goal=1.0)],
        notes={"grid_shape": list(grid_shape), "size": size, "statistic": f"best of {repeats}"},
    )
