"""Timings of the geometry path on synthetic face-sized surfaces (no dataset needed).

Each function returns ``{"name", "params", "figure", "baseline", "ratio"}`` with milliseconds
(medians over ``repeats``): ``figure`` is what ferbench does, ``baseline`` the cheapest thing
doing part of the same job, ``ratio`` figure / baseline.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from .mesh import Mesh
from .render import Camera, Raycaster, _frame, _project, grid_mesh, render_grid_depth, render_mesh_depth
from .vrml import read_vrml, write_vrml


def face_like_grid(rows: int, cols: int, pitch: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A (rows, cols) organised grid over an ellipsoid cap with a nose, rows top-to-bottom."""
    x, y = np.meshgrid((np.arange(cols) - cols / 2) * pitch, (rows / 2 - np.arange(rows)) * pitch)
    cap = 1.0 - (x / 75.0) ** 2 - (y / 95.0) ** 2
    nose = 25.0 * np.exp(-(x**2 + (y + 5.0) ** 2) / (2 * 9.0**2))
    z = 80.0 * np.sqrt(np.clip(cap, 0.0, None)) + nose
    return x, y, z, cap > 0.05


def face_like_mesh(n_vertices: int) -> Mesh:
    """A face-sized mesh of about ``n_vertices`` vertices and twice as many triangles, with uv."""
    side = int(round(np.sqrt(n_vertices)))
    x, y, z, _ = face_like_grid(side, side, 150.0 / side)
    mesh = grid_mesh(x, y, z, np.ones_like(x, bool))
    uv = (mesh.vertices[:, :2] - mesh.vertices[:, :2].min(axis=0)) / np.ptp(mesh.vertices[:, :2], axis=0)
    return Mesh(mesh.vertices, mesh.faces, uv, mesh.faces)


def bench_vrml(n_vertices: int = 20000, repeats: int = 9) -> dict:
    """``read_vrml`` on a BU-3DFE-style file vs just reading its bytes."""
    mesh = face_like_mesh(n_vertices)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "F0001_NE00WH_F3D.wrl"
        write_vrml(path, mesh, texture_url="F0001_NE00WH_F3D.bmp")
        parse = _median_ms(lambda: read_vrml(path), repeats)
        read = _median_ms(path.read_bytes, repeats)
        size = path.stat().st_size
    params = {"vertices": len(mesh.vertices), "faces": len(mesh.faces), "file_bytes": size, "repeats": repeats}
    figure, baseline = {"parse_ms": parse}, {"read_bytes_ms": read}
    return _result("geometry.vrml", params, figure, baseline, {"parse_ms": "read_bytes_ms"})


def bench_render(
    n_faces: int = 50000, size: int = 256, grid_shape: tuple[int, int] = (480, 640), repeats: int = 5
) -> dict:
    """Depth rendering per view and per new mesh (open3d, numpy) and of an organised point grid.

    ``open3d_view_ms`` casts one view into an already built BVH; the numpy z-buffer keeps nothing
    between views, so its per-view cost is ``numpy_new_mesh_ms``. Baselines are plain numpy
    point splats (project every vertex, keep the nearest per pixel): cheap but not a surface
    (holes between samples, nearest-pixel rounding).
    """
    camera = Camera(size=size)
    mesh = face_like_mesh(n_faces // 2)
    frame = _frame(mesh.used_vertices(), camera)
    raycaster = Raycaster(mesh)
    raycaster.depth(frame)  # open3d builds its BVH on the first cast
    o3d_view = render_mesh_depth(mesh, camera, "open3d")
    np_view = render_mesh_depth(mesh, camera, "numpy")
    gx, gy, gz, gvalid = face_like_grid(*grid_shape, pitch=0.3)
    grid_frame = _frame(np.stack([gx[gvalid], gy[gvalid], gz[gvalid]], axis=1), camera)
    figure = {
        "open3d_view_ms": _median_ms(lambda: raycaster.depth(frame), repeats),
        "open3d_new_mesh_ms": _median_ms(lambda: render_mesh_depth(mesh, camera, "open3d"), repeats),
        "numpy_new_mesh_ms": _median_ms(lambda: render_mesh_depth(mesh, camera, "numpy"), repeats),
        "grid_open3d_ms": _median_ms(lambda: render_grid_depth(gx, gy, gz, gvalid, camera, "open3d"), repeats),
        "grid_numpy_ms": _median_ms(lambda: render_grid_depth(gx, gy, gz, gvalid, camera, "numpy"), repeats),
    }
    points = np.stack([gx[gvalid], gy[gvalid], gz[gvalid]], axis=1)
    baseline = {
        "vertex_splat_ms": _median_ms(lambda: _splat(mesh.vertices, frame), repeats),
        "grid_splat_ms": _median_ms(lambda: _splat(points, grid_frame), repeats),
    }
    seen_o3d, seen_np = np.isfinite(o3d_view.depth_mm), np.isfinite(np_view.depth_mm)
    params = {
        "faces": len(mesh.faces),
        "vertices": len(mesh.vertices),
        "size": size,
        "grid_shape": list(grid_shape),
        "repeats": repeats,
        "open3d_vs_numpy_max_abs_mm": float(np.nanmax(np.abs(o3d_view.depth_mm - np_view.depth_mm))),
        "open3d_vs_numpy_coverage_mismatch_px": int((seen_o3d != seen_np).sum()),
    }
    pairs = {
        "open3d_view_ms": "vertex_splat_ms",
        "open3d_new_mesh_ms": "vertex_splat_ms",
        "numpy_new_mesh_ms": "vertex_splat_ms",
        "grid_open3d_ms": "grid_splat_ms",
        "grid_numpy_ms": "grid_splat_ms",
    }
    return _result("geometry.render", params, figure, baseline, pairs)


def _splat(points: np.ndarray, frame: dict) -> np.ndarray:
    n = frame["camera"]["size"]
    u, v, depth = _project(points, frame)
    col, row = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
    inside = (col >= 0) & (col < n) & (row >= 0) & (row < n)
    zbuf = np.full(n * n, np.inf)
    np.minimum.at(zbuf, row[inside] * n + col[inside], depth[inside])
    return zbuf.reshape(n, n)


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def _result(name: str, params: dict, figure: dict, baseline: dict, pairs: dict[str, str]) -> dict:
    """The result dict; ``pairs`` names the baseline each figure is divided by."""
    ratio = {key: figure[key] / baseline[base] for key, base in pairs.items()}
    return {"name": name, "params": params, "figure": figure, "baseline": baseline, "ratio": ratio}
