"""BU-3DFE converter on a written replica: names, labels, intensities, depth geometry, landmarks, faults."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from ferbench.build import convert

from ferbench.converted import REPORT_FILE as BUILD_REPORT, read_table
from ferbench.errors import ConversionError, DatasetNotFoundError
from ferbench.geometry.render import Camera, png_to_depth_mm, render_mesh_depth
from ferbench.imageio import check_image, decode
from ferbench.schema import EMOTIONS, ferbench_metadata
from ferbench.datasets.bu3dfe import fixture as fx
from ferbench.geometry import shapes

CAMERA = {"size": 96, "mm_per_px": 1.6}


def _convert(root: Path, out: Path, **options):
    return convert("bu3dfe", root, out, workers=1, progress=False, **{**CAMERA, **options})


def _rows(out: Path) -> dict[str, dict]:
    return {r["sample_id"]: r for r in read_table(out).to_pylist()}


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> tuple[Path, fx.Replica]:
    root = tmp_path_factory.mktemp("bu_raw")
    return root, fx.build(root)


@pytest.fixture(scope="module")
def built(raw, tmp_path_factory):
    root, exp = raw
    out = tmp_path_factory.mktemp("bu_out") / "ds"
    result = _convert(root, out)
    return out, result, _rows(out), exp


def _nearest(depth: np.ndarray) -> tuple[int, int]:
    r, c = np.unravel_index(np.nanargmin(depth), depth.shape)
    return int(r), int(c)


def test_rows_labels_intensities_subjects(built):
    _, result, rows, exp = built
    assert set(rows) == exp.sample_ids
    assert Counter(EMOTIONS[r["label"]] for r in rows.values()) == +exp.labels
    assert {sid: r["intensity"] for sid, r in rows.items()} == exp.intensities
    assert {r["subject_id"] for r in rows.values()} == {"bu3dfe:F0001", "bu3dfe:F0002", "bu3dfe:M0001", "bu3dfe:M0002"}
    row = rows["bu3dfe/F0001/F0001_AN03WH"]
    assert (row["label"], row["label_raw"], row["label_source"], row["intensity"]) == (6, "AN", "annotation", 3)
    assert (row["sex"], row["ethnicity"], row["expression"]) == ("F", "WH", "AN")
    neutral = rows["bu3dfe/M0001/M0001_NE00BL"]
    assert (neutral["label"], neutral["intensity"], neutral["sex"]) == (0, 0, "M")
    assert result.report["null_labels"] == 0 and result.report["notes"] == []


def test_rgb_is_the_f2d_bmp_untouched(built, raw):
    out, _, rows, _ = built
    root, _ = raw  # rgb.path is stored below the folder holding the subject folders, whichever folder the user names
    for sid, row in rows.items():
        assert row["rgb"]["path"].endswith(sid.split("/")[-1] + "_F2D.bmp")
        assert row["rgb"]["bytes"] == (root / fx.TOP / row["rgb"]["path"]).read_bytes()
        assert check_image(row["rgb"]["bytes"]).format == "BMP"
    assert ferbench_metadata(read_table(out).schema)["rgb_registered_to_depth"] is False


def test_depth_matches_the_analytic_surface(built):
    out, _, rows, _ = built
    depth = png_to_depth_mm(rows["bu3dfe/F0002/F0002_DI03AE"]["depth"]["bytes"])
    frame = render_mesh_depth(fx.face_mesh(), Camera(**CAMERA)).frame  # only for the centre and plane
    px, py = shapes.pixel_centres(frame)
    expected = frame["z_plane"] - fx.SURFACE.f(px, py)
    hit = np.isfinite(depth)
    # 0.05 mm PNG rounding + the mesh's linear interpolation of the curved nose
    assert np.abs(depth[hit] - expected[hit]).max() <= 0.05 + fx.INTERPOLATION_MM
    radius = np.hypot(px, py)
    assert hit[radius < fx.HALF - 2 * fx.STEP].all() and not hit[radius > fx.HALF + fx.STEP].any()
    meta = ferbench_metadata(read_table(out).schema)["depth"]
    assert (meta["unit_mm"], meta["projection"], meta["up"], meta["camera"]["size"]) == (0.1, "orthographic", "+y", 96)


def test_orientation_and_landmarks(built):
    _, _, rows, _ = built
    mesh = fx.face_mesh()
    _, xyz = fx.landmarks(mesh)
    frame = render_mesh_depth(mesh, Camera(**CAMERA)).frame
    for row in (rows["bu3dfe/F0001/F0001_NE00WH"], rows["bu3dfe/M0001/M0001_SU04BL"]):  # n-gons and triangles
        depth = png_to_depth_mm(row["depth"]["bytes"])
        r, c = _nearest(depth)
        assert r < CAMERA["size"] / 2  # the nose at +y is in the upper half: never flipped
        px = np.array(row["landmarks_px"])
        assert px.shape == (83, 2) and row["landmark_scheme"] == "bu3dfe83-3d"
        nose_col, nose_row = np.floor(px[fx.NOSE_ROW])
        assert abs(nose_row - r) <= 1 and abs(nose_col - c) <= 1
        np.testing.assert_allclose(np.array(row["landmarks"]), xyz, atol=1e-4)
        # every landmark lies on the surface: the depth at its pixel is its own distance
        cols, rws = np.floor(px).astype(int).T
        at = depth[rws, cols]
        assert np.isfinite(at).all()
        assert np.abs(at - (frame["z_plane"] - xyz[:, 2])).max() < 1.5  # ≤ half a pixel of slope


def test_every_planted_fault_is_reported(built):
    out, _, _, exp = built
    report = json.loads((out / BUILD_REPORT).read_text())
    assert {(f["kind"], f["file"]) for f in report["faults"]} == exp.faults
    reasons = {f["file"].split("/")[-1]: f["reason"] for f in report["faults"]}
    assert reasons["M0002_FE02LA_F3D.bnd"] == "82 landmark lines, expected 83"
    assert reasons["M0002_DI01LA_F3D.wrl"] == "model M0002_DI01LA has no _F3D.bnd file"
    assert "-1x" in reasons["M0002_NE00LA_F3D.wrl"]


def test_rendered_rgb_is_registered_to_depth(raw, tmp_path):
    root, exp = raw
    _convert(root, tmp_path / "ds", rgb="render")
    rows = _rows(tmp_path / "ds")
    assert set(rows) == exp.sample_ids | {exp.render_extra_id}  # F3D.bmp stands in for the missing F2D
    row = rows["bu3dfe/F0001/F0001_HA04WH"]
    rgb, depth = decode(row["rgb"]["bytes"]), png_to_depth_mm(row["depth"]["bytes"])
    assert rgb.shape == (96, 96, 3) and row["rgb"]["path"] is None
    surface = np.isfinite(depth)
    # colour exactly where there is depth (one pixel of slack at the silhouette)
    assert (rgb[~ndimage.binary_dilation(surface, np.ones((3, 3)))] == 0).all()
    assert (rgb[ndimage.binary_erosion(surface), 2] > 60).all()
    # the ramp texture says where each pixel came from: red = u, green = v of the mesh point
    col, r = np.floor(row["landmarks_px"][fx.NOSE_ROW]).astype(int)
    u, v = (np.array(fx.NOSE) + fx.HALF) / (2 * fx.HALF)
    np.testing.assert_allclose(rgb[r, col, :2], [u * 255, v * 255], atol=10)
    assert ferbench_metadata(read_table(tmp_path / "ds").schema)["rgb_registered_to_depth"] is True


def test_perspective_projection(built, raw, tmp_path):
    _, _, ortho, _ = built
    root, _ = raw
    _convert(root, tmp_path / "ds", projection="perspective")
    rows = _rows(tmp_path / "ds")
    assert ferbench_metadata(read_table(tmp_path / "ds").schema)["depth"]["projection"] == "perspective"
    row, flat = rows["bu3dfe/F0001/F0001_NE00WH"], ortho["bu3dfe/F0001/F0001_NE00WH"]
    r, c = _nearest(png_to_depth_mm(row["depth"]["bytes"]))
    nose = np.floor(row["landmarks_px"][fx.NOSE_ROW])
    assert r < 48 and abs(nose[1] - r) <= 1 and abs(nose[0] - c) <= 1
    # points behind the reference plane shrink toward the centre under perspective
    spread = lambda px: np.abs(np.array(px) - 48).max()  # noqa: E731
    assert spread(row["landmarks_px"]) < spread(flat["landmarks_px"])


def test_empty_dir(tmp_path):
    (tmp_path / "F0001").mkdir()
    (tmp_path / "F0001" / "F0001_AN01WH_F2D.bmp").write_bytes(b"BM")
    with pytest.raises(DatasetNotFoundError) as err:
        _convert(tmp_path, tmp_path.with_name(tmp_path.name + "-out"))
    text = str(err.value)
    assert "BU-3DFE not found" in text and "no <subject>_<EXPR><II><ETH>_F3D.wrl model" in text
    assert "F0001_AN01WH_F3D.wrl" in text and "Binghamton" in text


def test_align_reports_faces_not_found(tmp_path):
    from skimage.data import astronaut
    from skimage.transform import resize

    from ferbench.datasets.bu3dfe.layout import Scan, write_bu3dfe

    mesh, texture = fx.face_mesh(), fx.ramp_texture()
    idx, xyz = fx.landmarks(mesh)
    face = (resize(astronaut()[0:300, 100:400], (128, 128), anti_aliasing=True) * 255).astype(np.uint8)
    noise = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    scans = [Scan("F0001", e, i, "WH", mesh, idx, xyz, f2d, texture) for e, i, f2d in (("HA", 4, face), ("SA", 4, noise))]
    write_bu3dfe(tmp_path / "raw", scans)
    result = _convert(tmp_path / "raw", tmp_path / "ds", align=True)
    assert [(f["kind"], f["file"]) for f in result.report["faults"]] == [
        ("face-not-found", "BU_3DFE/F0001/F0001_SA04WH_F2D.bmp")
    ]
    (row,) = read_table(tmp_path / "ds").to_pylist()
    assert row["sample_id"] == "bu3dfe/F0001/F0001_HA04WH" and check_image(row["rgb"]["bytes"]).format == "PNG"
    # the rendered ramp holds no face: every model is reported, none dropped silently
    with pytest.raises(ConversionError, match="face-not-found': 2"):
        _convert(tmp_path / "raw", tmp_path / "ds2", align=True, rgb="render")
