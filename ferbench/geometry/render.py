"""Metric depth maps (and registered colour) rendered from face scans.

Depth convention (converters copy ``depth_metadata(camera)`` into the schema metadata):

* The scan frame is in millimetres with the face looking toward +z. The camera looks along −z.
  Image right = +x and image up = +y: a feature at +y lands in the upper half of the image
  (row 0 is the top row); nothing is ever flipped.
* The *reference plane* is z = ``z_plane`` = (largest z of the surface, i.e. the nearest point)
  + ``margin_mm``. Depth is the distance from that plane along the view axis in mm,
  ``depth = z_plane − z`` of the surface point seen at the pixel centre, so the nearest point
  has depth ``margin_mm`` and depth grows away from the camera. Perspective cameras measure the
  same z-distance (not the ray length).
* Pixel (row r, column c) covers the continuous image square [c, c+1) × [r, r+1); its centre
  (c + 0.5, r + 0.5) is where the surface is sampled. The optical axis passes through the image
  centre (size/2, size/2), at x = ``center_x``, y = ``center_y`` (the centre of the bounding box of
  the surface points, or the origin, see ``Camera.center``).
* Orthographic: a pixel is ``mm_per_px`` wide. Perspective: the eye sits ``distance_mm`` in front
  of the reference plane, at z = z_plane + distance_mm, with focal length ``focal_px``
  (default ``distance_mm / mm_per_px``, so the scale on the reference plane equals ``mm_per_px``).
* Stored as a 16-bit PNG in units of ``DEPTH_UNIT_MM`` = 0.1 mm, rounded to nearest; 0 = no
  surface; depths beyond 6553.5 mm saturate at 65535 and positive depths below 0.05 mm become 1,
  so a surface never reads as 0.

Backends: ``open3d`` casts one ray per pixel centre into ``t.geometry.RaycastingScene`` (exact);
``numpy`` is a z-buffer evaluating each triangle's barycentric interpolation at the pixel centres
it covers (exact too; test oracle and fallback when open3d cannot import). Colour comes from
pyrender + OSMesa with flat (unlit) texturing, using the same camera, so RGB and depth are
pixel-registered; depth always comes from the raycaster (pyrender's orthographic depth is wrong).
"""

from __future__ import annotations

import contextlib

import dataclasses
import io
import os
import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

from ..imageio import encode_png
from .mesh import GeometryError, Mesh

DEPTH_UNIT_MM = 0.1
_PROJECTIONS = ("orthographic", "perspective")
_CENTERS = ("bbox", "origin")


@dataclass(frozen=True)
class Camera:
    """A square virtual camera looking along −z (see the module docstring for the conventions)."""

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


# -- frames and projection ------------------------------------------------------------------


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


# -- mesh depth -----------------------------------------------------------------------------


def render_mesh_depth(mesh: Mesh, camera: Camera = Camera(), backend: str = "open3d") -> View:
    """Depth map of a triangle mesh (see the module docstring for the convention)."""
    if len(mesh.faces) == 0:
        raise GeometryError("mesh has no faces")
    return _render(mesh, _frame(mesh.used_vertices(), camera), backend)


def _render(mesh: Mesh, frame: dict, backend: str) -> View:
    if backend not in ("open3d", "numpy"):
        raise ValueError(f"backend must be 'open3d' or 'numpy', not {backend!r}")
    screen = _Screen(mesh, frame)
    n = frame["camera"]["size"]
    if len(screen.faces) == 0:
        depth = np.full((n, n), np.nan, np.float32)
    elif backend == "open3d" and _open3d() is not None:
        depth = Raycaster(Mesh(mesh.vertices, screen.faces)).depth(frame)
    else:
        depth = _rasterise(screen, frame)
    return View(depth, frame)


@lru_cache(maxsize=1)
def _open3d():
    try:
        import open3d
    except (ImportError, OSError) as exc:
        warnings.warn(f"open3d unavailable ({exc}); rendering depth with the numpy z-buffer", stacklevel=4)
        return None
    return open3d


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
        out = self.scene.cast_rays(o3d.core.Tensor(rays.astype(np.float32)))
        hit = out["t_hit"].numpy()
        # direction z is -1, so t is the z-distance from the ray origin
        depth = np.where(np.isfinite(hit), hit.astype(np.float64) - eye_height, np.nan).astype(np.float32)
        ids = out["primitive_ids"].numpy().astype(np.int64)
        face = np.where(ids == o3d.t.geometry.RaycastingScene.INVALID_ID, -1, ids)
        uv = out["primitive_uvs"].numpy().astype(np.float64)
        bary = np.stack([1.0 - uv[..., 0] - uv[..., 1], uv[..., 0], uv[..., 1]], axis=-1)
        return face, bary, depth

    def depth(self, frame: dict) -> np.ndarray:
        """(size, size) float32 depth in mm of the view ``frame`` describes, NaN = no surface."""
        return self.cast(frame)[2]


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


# -- organised point grids ------------------------------------------------------------------


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
    backend: str = "open3d",
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


# -- PNG ------------------------------------------------------------------------------------


def depth_to_png(view: View | np.ndarray) -> bytes:
    """16-bit PNG of a depth map in 0.1 mm units (0 = no surface; see the module docstring)."""
    depth = view.depth_mm if isinstance(view, View) else np.asarray(view)
    units = np.nan_to_num(np.rint(depth.astype(np.float64) / DEPTH_UNIT_MM), nan=0.0)
    units = np.where(np.isfinite(depth), np.clip(units, 1, 65535), 0)
    return encode_png(units.astype(np.uint16))


def png_to_depth_mm(data: bytes) -> np.ndarray:
    """Float32 depth in mm of a depth PNG, NaN where it holds 0."""
    with Image.open(io.BytesIO(data)) as im:
        units = np.asarray(im).astype(np.float32)
    return np.where(units > 0, units * np.float32(DEPTH_UNIT_MM), np.nan).astype(np.float32)


# -- textured colour ------------------------------------------------------------------------


def render_textured(mesh: Mesh, texture: np.ndarray, camera: Camera = Camera()) -> tuple[np.ndarray, View]:
    """Unlit textured colour (size, size, 3) uint8, black where there is no surface, and its depth.

    Texture coordinates have v pointing up (v = 1 is the top row of ``texture``, an (H, W, 3)
    or (H, W) uint8 image). Colour is rendered by pyrender + OSMesa (unlit, sampled at pixel
    centres), depth by ``render_mesh_depth`` with the same camera frame.
    """
    if mesh.uv is None:
        raise GeometryError("mesh has no texture coordinates")
    if texture.ndim == 2:
        texture = np.repeat(texture[..., None], 3, axis=2)
    view = render_mesh_depth(mesh, camera)
    pyrender = _pyrender()
    frame, n = view.frame, camera.size
    origin = np.array([frame["center_x"], frame["center_y"], frame["z_plane"]])
    positions = (mesh.vertices[mesh.faces.reshape(-1)] - origin).astype(np.float32)
    material = pyrender.MetallicRoughnessMaterial(
        baseColorTexture=pyrender.Texture(
            source=np.ascontiguousarray(texture[..., :3], dtype=np.uint8), source_channels="RGB"
        ),
        doubleSided=True,
    )
    primitive = pyrender.Primitive(
        positions=positions, texcoord_0=mesh.uv[mesh.face_uv.reshape(-1)], material=material
    )
    far = float(-positions[:, 2].min()) + camera.margin_mm
    scene = pyrender.Scene(bg_color=(0, 0, 0, 0), ambient_light=(1, 1, 1))
    scene.add(pyrender.Mesh([primitive]))
    gl_camera, pose = _gl_camera(pyrender, camera, far)
    scene.add(gl_camera, pose=pose)
    color, _ = _offscreen(n).render(scene, flags=pyrender.RenderFlags.FLAT)
    return np.ascontiguousarray(color[..., :3]), view


def _gl_camera(pyrender, camera: Camera, far: float) -> tuple:
    """A pyrender camera at the reference plane (orthographic) or the eye (perspective), and its pose."""
    pose = np.eye(4)
    near = camera.margin_mm / 2
    if camera.projection == "orthographic":
        half = camera.size * camera.mm_per_px / 2
        return pyrender.OrthographicCamera(xmag=half, ymag=half, znear=near, zfar=far), pose
    pose[2, 3] = camera.distance_mm
    half = camera.size / 2
    gl = pyrender.IntrinsicsCamera(
        fx=camera.focal, fy=camera.focal, cx=half, cy=half, znear=near, zfar=far + camera.distance_mm
    )
    return gl, pose


@lru_cache(maxsize=1)
def _pyrender():
    os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")
    # Once OSMesa is loaded, a later `import triton` (torch imports it when it builds fused
    # optimisers) segfaults; the other order is safe, so a process that renders and then trains
    # (the demo, the test suite) imports triton first when it is installed.
    with contextlib.suppress(ImportError):
        import triton  # noqa: F401
    import pyrender

    return pyrender


@lru_cache(maxsize=4)
def _offscreen(size: int):
    try:
        return _pyrender().OffscreenRenderer(size, size)
    except ImportError as exc:  # pyrender pins PyOpenGL 3.1.0, whose OSMesa binding lacks what it needs
        raise RuntimeError(
            f"pyrender cannot open an OSMesa context ({exc}); install PyOpenGL==3.1.10 after pyrender "
            "and the system package libosmesa6 (see README)"
        ) from exc
