"""Bosphorus converter on a written replica: stems, labels, AUs, depth geometry, landmarks, faults."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from ferbench.build import convert

from ferbench.converted import REPORT_FILE as BUILD_REPORT, read_table
from ferbench.errors import DatasetNotFoundError
from ferbench.geometry.bosphorus_landmarks import LABELS
from ferbench.geometry.render import Camera, png_to_depth_mm, render_grid_depth
from ferbench.schema import EMOTIONS, ferbench_metadata
from ferbench.datasets.bosphorus import fixture as fx
from ferbench.geometry import shapes

CAMERA = {"size": 96, "mm_per_px": 1.6}
NOSE_SLOT = LABELS.index("Nose tip")


def _convert(root: Path, out: Path, **options):
    return convert("bosphorus", root, out, workers=1, progress=False, **CAMERA, **options)


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> tuple[Path, fx.Replica]:
    root = tmp_path_factory.mktemp("bos_raw")
    return root, fx.build(root)


@pytest.fixture(scope="module")
def built(raw, tmp_path_factory):
    root, exp = raw
    out = tmp_path_factory.mktemp("bos_out") / "ds"
    result = _convert(root, out)
    rows = {r["sample_id"]: r for r in read_table(out).to_pylist()}
    return out, result, rows, exp


def _name(label: int | None) -> str | None:
    return None if label is None else EMOTIONS[label]


def test_rows_labels_subjects_and_repeated_scans(built):
    _, result, rows, exp = built
    assert set(rows) == exp.sample_ids
    assert Counter(_name(r["label"]) for r in rows.values()) == exp.labels
    assert {r["subject_id"] for r in rows.values()} == {"bosphorus:bs000", "bosphorus:bs001", "bosphorus:bs002"}
    # repeated scans stay distinct samples
    for stem in ("bs000_N_N_", "bs000_E_HAPPY_"):
        first, second = rows[f"bosphorus/bs000/{stem}0"], rows[f"bosphorus/bs000/{stem}1"]
        assert (first["repetition"], second["repetition"]) == (0, 1)
        assert first["label"] == second["label"] and first["rgb"]["bytes"] != second["rgb"]["bytes"]
    happy = rows["bosphorus/bs000/bs000_E_HAPPY_1"]
    assert (happy["label"], happy["label_raw"], happy["label_source"]) == (1, "E_HAPPY", "annotation")
    pose = rows["bosphorus/bs000/bs000_YR_R90_0"]
    assert (pose["label"], pose["label_raw"], pose["label_source"], pose["scan_class"], pose["scan_code"]) == (
        None, "YR_R90", None, "YR", "R90",
    )  # fmt: skip
    assert result.report["null_labels"] == exp.labels[None]


def test_action_units(built):
    _, result, rows, _ = built
    aus = {sid.split("/")[-1]: r["aus"] for sid, r in rows.items()}
    assert aus["bs000_LFAU_12_0"] == [{"au": 12, "intensity": None, "side": None}]
    assert aus["bs000_LFAU_12LW_0"] == [{"au": 12, "intensity": 1.0, "side": None}]
    assert aus["bs001_UFAU_1_0"] == [{"au": 1, "intensity": None, "side": None}]
    assert aus["bs000_CAU_A26A12LW_0"] == [{"au": 26, "intensity": None, "side": None}, {"au": 12, "intensity": 1.0, "side": None}]
    assert aus["bs001_CAU_X22Y_0"] is None and aus["bs000_E_ANGER_0"] is None and aus["bs000_O_GLASSES_0"] is None
    assert rows["bosphorus/bs000/bs000_LFAU_12_0"]["label"] is None  # AUs carry no emotion by default
    assert any("'X22Y' not parsed" in note for note in result.report["notes"])


def test_parse_aus_sides_and_spellings():
    from ferbench.datasets.bosphorus.loader import parse_aus

    assert parse_aus("LFAU", "12R") == [{"au": 12, "intensity": None, "side": "R"}]
    assert parse_aus("LFAU", "12L") == [{"au": 12, "intensity": None, "side": "L"}]
    assert [a["au"] for a in parse_aus("CAU", "22+25")] == [22, 25]
    assert [a["au"] for a in parse_aus("CAU", "A12A15")] == [12, 15]
    assert parse_aus("CAU", "2225") is None and parse_aus("LFAU", "12X") is None


def test_au_rule_option(raw, tmp_path):
    root, exp = raw
    result = _convert(root, tmp_path / "ds", au_rule=True)
    rows = {r["sample_id"]: r for r in read_table(tmp_path / "ds").to_pylist()}
    assert Counter(_name(r["label"]) for r in rows.values()) == exp.labels_au_rule
    assert (rows["bosphorus/bs000/bs000_LFAU_12_0"]["label"], rows["bosphorus/bs000/bs000_LFAU_12_0"]["label_source"]) == (1, "au-rule")
    assert rows["bosphorus/bs000/bs000_LFAU_12LW_0"]["label"] is None  # exact match only
    assert rows["bosphorus/bs000/bs000_E_ANGER_0"]["label_source"] == "annotation"
    assert ferbench_metadata(read_table(tmp_path / "ds").schema)["au_rule"]["LFAU_24"] == 6
    assert result.report["null_labels"] == exp.labels_au_rule[None]


def test_depth_matches_the_analytic_surface(built):
    out, _, rows, _ = built
    depth = png_to_depth_mm(rows["bosphorus/bs000/bs000_N_N_0"]["depth"]["bytes"])
    x, y, z, valid = fx.grid()
    frame = render_grid_depth(x, y, z, valid, Camera(**CAMERA)).frame  # only for the centre and plane
    px, py = shapes.pixel_centres(frame)
    expected = frame["z_plane"] - fx.SURFACE.f(px, py)
    hit = np.isfinite(depth)
    # 0.05 mm PNG rounding + the mesh's linear interpolation of the curved nose
    assert np.abs(depth[hit] - expected[hit]).max() <= 0.05 + fx.INTERPOLATION_MM
    inside = np.hypot(px, py) < 0.9 * fx.SURFACE.half_width - 2 * fx.STEP
    assert hit[inside].mean() > 0.9  # only the planted hole and dropped samples are missing
    assert not hit[np.hypot(px, py) > 0.9 * fx.SURFACE.half_width + fx.STEP].any()
    meta = ferbench_metadata(read_table(out).schema)["depth"]
    assert meta["unit_mm"] == 0.1 and meta["camera"]["size"] == 96 and meta["camera"]["mm_per_px"] == 1.6
    assert meta["projection"] == "orthographic" and meta["up"] == "+y"


def test_orientation_and_landmark_placement(built):
    _, _, rows, exp = built
    row = rows["bosphorus/bs001/bs001_E_FEAR_0"]
    depth = png_to_depth_mm(row["depth"]["bytes"])
    r, c = np.unravel_index(np.nanargmin(depth), depth.shape)
    assert r < CAMERA["size"] / 2  # the nose at +y is in the upper half: never flipped
    nose_px = np.array(row["landmarks_px"][NOSE_SLOT])
    assert abs(np.floor(nose_px[1]) - r) <= 1 and abs(np.floor(nose_px[0]) - c) <= 1
    lms = np.array(row["landmarks"], dtype=float)
    np.testing.assert_allclose(lms, exp.landmarks[row["sample_id"]], rtol=0, atol=1e-5)
    assert row["landmark_scheme"] == "bosphorus24-3d" and np.isnan(lms[22:]).all()
    assert np.isfinite(np.array(row["landmarks_2d"], dtype=float)[:22]).all()


def test_landmark_files_optional(built):
    _, result, rows, _ = built
    profile = np.array(rows["bosphorus/bs000/bs000_YR_R90_0"]["landmarks"], dtype=float)
    assert np.isfinite(profile).all(axis=1).sum() == 10 and np.isfinite(profile[LABELS.index("Ear lobe right")]).all()
    no_lm = rows["bosphorus/bs002/bs002_E_HAPPY_0"]
    assert no_lm["landmarks"] is None and no_lm["landmarks_2d"] is None and no_lm["landmark_scheme"] is None
    lm3_only = rows["bosphorus/bs001/bs001_PR_U_0"]
    assert lm3_only["landmarks"] is not None and lm3_only["landmarks_2d"] is None
    assert "1 scan(s) without a .lm3 file: their landmarks are null" in result.report["notes"]
    assert "2 scan(s) without a .lm2 file: their landmarks_2d are null" in result.report["notes"]


def test_rgb_passes_through(built, raw):
    _, _, rows, _ = built
    root, _ = raw  # rgb.path is stored below the folder holding the subject folders, whichever folder the user names
    for row in rows.values():
        assert row["rgb"]["bytes"] == (root / fx.TOP / row["rgb"]["path"]).read_bytes()
        assert row["rgb"]["path"].endswith(row["sample_id"].split("/")[-1] + ".png")


def test_every_planted_fault_is_reported(built):
    out, _, _, exp = built
    report = json.loads((out / BUILD_REPORT).read_text())
    assert {(f["kind"], f["file"]) for f in report["faults"]} == exp.faults
    reasons = {f["file"].split("/")[-1]: f["reason"] for f in report["faults"]}
    assert reasons["bs002_E_ANGER_0.bnt"].startswith("value count")
    assert reasons["bs002_E_DISGUST_0.bnt"].startswith("truncated data")
    assert reasons["bs002_N_N_0.png"] == "scan bs002_N_N_0 has no .bnt file"


def test_empty_dir(tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        _convert(tmp_path, tmp_path.with_name(tmp_path.name + "-out"))
    text = str(err.value)
    assert "Bosphorus 3D Face Database not found" in text and "no .bnt range file" in text
    assert "bs000_E_ANGER_0.{bnt,png,lm2,lm3}" in text


def test_align_reports_faces_not_found(tmp_path):
    from skimage.data import astronaut

    from ferbench.datasets.bosphorus.layout import write_bosphorus

    face = fx.make_scan(0, "E", "HAPPY", 0, "both", seed=1)
    face = type(face)(**{**face.__dict__, "texture": astronaut()[0:320, 80:420]})
    noise = fx.make_scan(0, "N", "N", 0, "both", seed=2)
    write_bosphorus(tmp_path / "raw", [face, noise])
    result = _convert(tmp_path / "raw", tmp_path / "ds", align=True)
    assert [(f["kind"], f["file"]) for f in result.report["faults"]] == [
        ("face-not-found", "BosphorusDB/bs000/bs000_N_N_0.png")
    ]
    (row,) = read_table(tmp_path / "ds").to_pylist()
    assert row["sample_id"] == "bosphorus/bs000/bs000_E_HAPPY_0" and row["rgb"]["bytes"][:4] == b"\x89PNG"


def test_crop_rgb_keeps_the_texture_box_of_the_valid_samples(raw, tmp_path):
    """``crop_rgb=true``: each texture is cut to the pixel box of its valid samples' (u, v), which in the
    replica's scans are the centres of the grid cells that hold the face."""
    from ferbench.geometry.bnt import read_bnt
    from ferbench.imageio import decode

    root, _ = raw
    out = tmp_path / "cropped"
    _convert(root, out, crop_rgb=True)
    rows = read_table(out).to_pylist()
    assert rows
    for row in rows:
        grid = read_bnt(root / fx.TOP / row["rgb"]["path"].replace(".png", ".bnt"))
        full = decode((root / fx.TOP / row["rgb"]["path"]).read_bytes())
        h, w = full.shape[:2]
        u, v = grid.u[grid.valid], grid.v[grid.valid]
        left, top = int(np.floor(u.min() * w)), int(np.floor(v.min() * h))
        right, bottom = int(np.ceil(u.max() * w)), int(np.ceil(v.max() * h))
        cropped = decode(row["rgb"]["bytes"])
        assert cropped.shape[:2] == (bottom - top, right - left) and (bottom - top, right - left) != (h, w)
        np.testing.assert_array_equal(cropped, full[top:bottom, left:right, :3])
