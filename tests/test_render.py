"""Depth rendering against analytic surfaces: every backend, both projections, grids, PNG, colour.

Tolerance: rendered depth must match the analytic depth to < 0.05 mm at every pixel whose
centre lies inside 80 % of the surface's extent (away from silhouettes). The meshes are
0.5 mm grids, so the remaining error is the piecewise-linear approximation of the surface.
"""

from __future__ import annotations

import io
import sys
import warnings

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from ferbench.geometry import Mesh, render
from ferbench.geometry.render import (
    DEPTH_UNIT_MM,
    Camera,
    View,
    depth_metadata,
    depth_to_png,
    png_to_depth_mm,
    render_grid_depth,
    render_mesh_depth,
    render_textured,
)
from ferbench.geometry import shapes

TOLERANCE_MM = 0.05
BACKENDS = ["open3d", "numpy"]
SURFACES = {
    "plane": (shapes.plane(), False),
    "hemisphere": (shapes.hemisphere(), True),
    "bumped": (shapes.bumped_plane(), False),
}


@pytest.fixture(scope="module")
def meshes():
    return {name: shapes.mesh(surface, 0.5, disc) for name, (surface, disc) in SURFACES.items()}


def _interior(surface: shapes.Surface, disc: bool, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    reach = 0.8 * surface.half_width
    return x**2 + y**2 < reach**2 if disc else (np.abs(x) < reach) & (np.abs(y) < reach)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", SURFACES)
def test_orthographic_depth_matches_analytic(meshes, name, backend):
    surface, disc = SURFACES[name]
    view = render_mesh_depth(meshes[name], Camera(), backend)
    assert view.depth_mm.shape == (256, 256) and view.depth_mm.dtype == np.float32
    assert view.frame["z_plane"] == pytest.approx(surface.z_max + 50.0, abs=1e-3)
    x, y = shapes.pixel_centres(view.frame)
    inner = _interior(surface, disc, x, y)
    truth = view.frame["z_plane"] - surface.f(x, y)
    assert np.isfinite(view.depth_mm[inner]).all()
    assert np.abs(view.depth_mm - truth)[inner].max() < TOLERANCE_MM
    outside = x**2 + y**2 > (surface.half_width + 1) ** 2 if disc else np.abs(x) > surface.half_width + 1
    assert np.isnan(view.depth_mm[outside]).all()


@pytest.mark.parametrize("projection", ["orthographic", "perspective"])
def test_backends_agree(meshes, projection):
    camera = Camera(projection=projection)
    a = render_mesh_depth(meshes["hemisphere"], camera, "open3d").depth_mm
    b = render_mesh_depth(meshes["hemisphere"], camera, "numpy").depth_mm
    both = np.isfinite(a) & np.isfinite(b)
    assert both.sum() > 8000
    assert np.abs(a - b)[both].max() < 1e-3
    # pixel centres exactly on the silhouette may go either way
    assert (np.isfinite(a) != np.isfinite(b)).sum() < 60


@pytest.mark.parametrize("projection", ["orthographic", "perspective"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_up_is_up_and_right_is_right(backend, projection):
    surface = shapes.bumped_plane(slope=(0.0, 0.0), bump_at=(10.0, 25.0))
    view = render_mesh_depth(shapes.mesh(surface, 0.5), Camera(projection=projection), backend)
    row, col = np.unravel_index(np.nanargmin(view.depth_mm), view.depth_mm.shape)
    assert row < 128 - 10 and col > 128 + 5  # the bump (+x, +y) is up and to the right
    top = [10.0, 25.0, float(surface.f(np.array(10.0), np.array(25.0)))]
    (u, v), = view.project([top])
    assert abs(u - (col + 0.5)) <= 1.0 and abs(v - (row + 0.5)) <= 1.0


def test_project_orthographic_exact():
    view = render_mesh_depth(shapes.mesh(shapes.plane(z0=20.0), 1.0), Camera(size=100, mm_per_px=2.0))
    assert (view.frame["center_x"], view.frame["center_y"], view.frame["z_plane"]) == (0.0, 0.0, 70.0)
    uv = view.project([[0.0, 0.0, 20.0], [3.0, -5.0, 0.0], [-100.0, 100.0, 5.0]])
    np.testing.assert_allclose(uv, [[50.0, 50.0], [51.5, 52.5], [0.0, 0.0]])
    assert view.depth_mm[52, 51] == pytest.approx(50.0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_perspective_tilted_plane_matches_ray_intersection(backend):
    slope = (0.15, -0.1)
    surface = shapes.bumped_plane(slope=slope, height=0.0)
    camera = Camera(projection="perspective")
    view = render_mesh_depth(shapes.mesh(surface, 2.0), camera, backend)
    f = view.frame
    offsets = np.arange(256) + 0.5 - 128
    cols, rows = np.meshgrid(offsets, offsets)
    eye = np.array([f["center_x"], f["center_y"], f["z_plane"] + camera.distance_mm])
    dx, dy = cols / camera.focal, -rows / camera.focal  # ray direction (dx, dy, -1)
    t = (eye[2] - slope[0] * eye[0] - slope[1] * eye[1]) / (slope[0] * dx + slope[1] * dy + 1)
    truth = t - camera.distance_mm
    seen = np.isfinite(view.depth_mm)
    assert seen.sum() > 15000
    assert np.abs(view.depth_mm - truth)[seen].max() < TOLERANCE_MM
    (u, v), = view.project([[20.0, -10.0, surface.f(np.array(20.0), np.array(-10.0))]])
    expected = f["z_plane"] - float(surface.f(np.array(20.0), np.array(-10.0)))
    # the pixel centre is < 1 mm from the point and the plane rises 0.18 mm per mm
    assert view.depth_mm[int(v), int(u)] == pytest.approx(expected, abs=0.2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_perspective_shrinks_with_distance(backend):
    # a 120 mm square facing the camera at depth 50 mm (the margin): 500/550 of its orthographic width
    mesh = shapes.mesh(shapes.plane(), 4.0)
    ortho = render_mesh_depth(mesh, Camera(), backend).depth_mm
    persp = render_mesh_depth(mesh, Camera(projection="perspective"), backend).depth_mm
    assert np.isfinite(ortho[128]).sum() == 150
    half = 625 * 60 / 550  # focal_px * half width / eye distance
    expected = int(np.floor(128 + half - 0.5) - np.ceil(128 - half - 0.5) + 1)
    assert np.isfinite(persp[128]).sum() == expected == 136
    np.testing.assert_allclose(persp[np.isfinite(persp)], 50.0, atol=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_grid_with_holes_matches_analytic(backend):
    surface = shapes.hemisphere()
    x, y, z, valid = shapes.grid_with_holes(surface, 0.37)
    view = render_grid_depth(x, y, z, valid, Camera(), backend)
    px, py = shapes.pixel_centres(view.frame)
    truth = view.frame["z_plane"] - surface.f(px, py)
    inner = px**2 + py**2 < 38**2
    hole = (px - 20) ** 2 + (py + 15) ** 2 < 5.0**2
    near_hole = (px - 20) ** 2 + (py + 15) ** 2 < 7.0**2
    good = inner & ~near_hole
    # each dropped sample (1 %) takes the triangles around it: about 2 % of the area is lost
    assert np.isfinite(view.depth_mm[good]).mean() > 0.97
    assert np.nanmax(np.abs(view.depth_mm - truth)[good]) < TOLERANCE_MM
    assert np.isnan(view.depth_mm[hole]).all()
    assert np.isnan(view.depth_mm[px**2 + py**2 > 46**2]).all()


def test_grid_rows_run_top_to_bottom():
    surface = shapes.bumped_plane(slope=(0.0, 0.0), bump_at=(-15.0, 20.0))
    x, y, z = shapes.sample_grid(surface, 0.5)
    assert y[0, 0] > y[-1, 0]  # row 0 is the top of the scan
    view = render_grid_depth(x, y, z, np.ones(x.shape, bool))
    row, col = np.unravel_index(np.nanargmin(view.depth_mm), view.depth_mm.shape)
    assert row < 128 - 10 and col < 128 - 10  # the bump (-x, +y) is up and to the left
    (u, v), = view.project([[-15.0, 20.0, surface.z_max]])
    assert abs(u - (col + 0.5)) <= 1.0 and abs(v - (row + 0.5)) <= 1.0


def test_empty_inputs_are_bad_mesh():
    with pytest.raises(render.GeometryError, match="no valid sample"):
        render_grid_depth(*np.zeros((3, 4, 4)), np.zeros((4, 4), bool))
    with pytest.raises(render.GeometryError, match="no 2x2 cell"):
        render_grid_depth(*np.zeros((3, 4, 4)), np.eye(4, dtype=bool))


def test_depth_png_round_trip():
    depth = np.array([[np.nan, 0.01, 50.0], [123.456, 6553.5, 9000.0]], np.float32)
    data = depth_to_png(View(depth, {}))
    with Image.open(io.BytesIO(data)) as im:
        assert (im.format, im.mode) == ("PNG", "I;16")
        units = np.asarray(im)
    np.testing.assert_array_equal(units, [[0, 1, 500], [1235, 65535, 65535]])
    back = png_to_depth_mm(data)
    assert np.isnan(back[0, 0]) and back.dtype == np.float32
    np.testing.assert_allclose(back[1, 0], 123.5, atol=1e-4)
    view = render_mesh_depth(shapes.mesh(shapes.hemisphere(), 1.0, disc=True), Camera(size=64))
    back = png_to_depth_mm(depth_to_png(view))
    np.testing.assert_array_equal(np.isnan(back), np.isnan(view.depth_mm))
    assert np.nanmax(np.abs(back - view.depth_mm)) <= DEPTH_UNIT_MM / 2 + 1e-4


def test_camera_dict_and_metadata():
    camera = Camera(size=128, projection="perspective")
    assert Camera(**camera.to_dict()) == camera
    meta = depth_metadata(camera)
    assert meta["unit_mm"] == 0.1 and meta["zero"] == "no surface" and meta["up"] == "+y"
    assert (meta["projection"], meta["size"], meta["camera"]) == ("perspective", 128, camera.to_dict())
    with pytest.raises(ValueError):
        Camera(projection="fisheye")


def test_numpy_fallback_when_open3d_is_missing(monkeypatch):
    mesh = shapes.mesh(shapes.hemisphere(), 2.0, disc=True)
    expected = render_mesh_depth(mesh, Camera(size=64), "numpy").depth_mm
    render._open3d.cache_clear()
    monkeypatch.setitem(sys.modules, "open3d", None)  # import open3d now raises ImportError
    try:
        with pytest.warns(UserWarning, match="open3d unavailable"):
            first = render_mesh_depth(mesh, Camera(size=64), "open3d")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            render_mesh_depth(mesh, Camera(size=64), "open3d")  # warned once only
            render_mesh_depth(mesh, Camera(size=64))  # the default (auto: numpy) never needs open3d
    finally:
        render._open3d.cache_clear()
    np.testing.assert_array_equal(first.depth_mm, expected)


@pytest.mark.parametrize("projection", ["orthographic", "perspective"])
def test_textured_colour_is_registered_with_depth(projection):
    mesh, texture = shapes.textured_square()
    rgb, view = render_textured(mesh, texture, Camera(size=128, projection=projection))
    assert rgb.shape == (128, 128, 3) and rgb.dtype == np.uint8
    seen = np.isfinite(view.depth_mm)
    lit = rgb.any(axis=2)
    # coverage agrees except, at most, in the pixels next to the silhouette (a GL platform with
    # multisampling colours the pixels an edge crosses; OSMesa samples pixel centres only)
    near_edge = ndimage.binary_dilation(seen, np.ones((3, 3))) & ~ndimage.binary_erosion(seen, np.ones((3, 3)))
    assert not ((lit != seen) & ~near_edge).any()
    assert (lit == seen).mean() > 0.95
    rows = np.flatnonzero(seen.any(axis=1))
    top, bottom = rgb[rows[0] + 3, 64], rgb[rows[-1] - 3, 64]
    assert tuple(top) == (220, 30, 30) and tuple(bottom) == (30, 30, 220)  # texture v points up


def test_textured_hemisphere_samples_texture_at_pixel_centres():
    surface = shapes.hemisphere(40.0)
    base = shapes.mesh(surface, 1.0, disc=True)
    uv = base.vertices[:, :2] / 80 + 0.5
    mesh = Mesh(base.vertices, base.faces, uv, base.faces)
    rows, cols = np.mgrid[0:256, 0:256]
    texture = np.stack([cols, 255 - rows, np.full_like(cols, 128)], axis=-1).astype(np.uint8)
    rgb, view = render_textured(mesh, texture, Camera())
    x, y = shapes.pixel_centres(view.frame)
    inner = x**2 + y**2 < 35**2
    assert np.abs(rgb[..., 0] - ((x / 80 + 0.5) * 256 - 0.5))[inner].max() <= 1.0
    assert np.abs(rgb[..., 1] - ((y / 80 + 0.5) * 256 - 0.5))[inner].max() <= 1.0


def test_auto_backend_is_the_numpy_zbuffer_and_agrees_with_open3d():
    """One view of a new mesh defaults to the numpy z-buffer (no BVH to build); open3d gives the same depths."""
    mesh = shapes.mesh(shapes.hemisphere(), 2.0, disc=True)
    auto = render_mesh_depth(mesh, Camera(size=64)).depth_mm
    np.testing.assert_array_equal(auto, render_mesh_depth(mesh, Camera(size=64), "numpy").depth_mm)
    o3d = render_mesh_depth(mesh, Camera(size=64), "open3d").depth_mm
    assert (np.isfinite(auto) == np.isfinite(o3d)).all() and np.nanmax(np.abs(auto - o3d)) < 1e-3
