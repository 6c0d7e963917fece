"""CalD3r & MenD3s converter on a written replica: pairs, names, namespacing, depth, faults."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from ferbench.build import convert

from ferbench.converted import REPORT_FILE as BUILD_REPORT, read_card, read_table
from ferbench.errors import DatasetNotFoundError
from ferbench.imageio import decode
from ferbench.schema import EMOTIONS, ferbench_metadata
from ferbench.datasets.caldr_menders.layout import Sample, write_caldr_menders
from ferbench.datasets.caldr_menders import fixture as fx


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> tuple[Path, fx.Replica]:
    root = tmp_path_factory.mktemp("caldr_raw")
    return root, fx.build(root)


@pytest.fixture(scope="module")
def built(raw, tmp_path_factory):
    root, exp = raw
    out = tmp_path_factory.mktemp("caldr_out") / "ds"
    result = convert("caldr_menders", root, out, workers=1, progress=False)
    return out, result, read_table(out).to_pylist(), exp


def test_rows_labels_and_subjects(built):
    _, result, rows, exp = built
    assert {r["sample_id"] for r in rows} == exp.sample_ids
    assert Counter(EMOTIONS[r["label"]] for r in rows) == exp.labels
    assert {r["subject_id"] for r in rows} == exp.subjects
    by_id = {r["sample_id"]: r for r in rows}
    first = by_id["caldr_menders/CalD3r/F_001_1120_anger"]
    assert (first["subject_id"], first["source_set"], first["gender"], first["stimulus"]) == (
        "caldr_menders:CalD3r-001",
        "CalD3r",
        "F",
        "1120",
    )
    assert (first["label"], first["label_raw"], first["label_source"]) == (6, "anger", "annotation")
    # the same subject number in the other set is another person
    assert by_id["caldr_menders/MenD3s/F_01_1120_fear"]["subject_id"] == "caldr_menders:MenD3s-01"
    # a pre-aligned copy is its own sample, in the same subject
    assert by_id["caldr_menders/CalD3r/aligned_F_001_1120_anger"]["subject_id"] == "caldr_menders:CalD3r-001"
    assert result.report["counts"]["subjects"] == len(exp.subjects)


def test_images_pass_through_and_depth_metadata(built, raw):
    out, _, rows, exp = built
    root, _ = raw  # paths are stored from the set folder on, whichever folder the user names
    for row in rows:
        assert row["rgb"]["bytes"] == (root / fx.TOP / row["rgb"]["path"]).read_bytes()
        assert row["depth"]["bytes"] == (root / fx.TOP / row["depth"]["path"]).read_bytes()
        depth = decode(row["depth"]["bytes"])
        assert depth.dtype == np.uint16 and np.array_equal(depth, exp.depth[row["sample_id"]])
    meta = ferbench_metadata(read_table(out).schema)
    assert meta["depth"] == {
        "unit_mm": None,
        "raw_unit": "sensor (UNVERIFIED: SR300 ≈ 0.125 mm or 1 mm)",
        "zero": "invalid",
        "source": "sensor",
    }
    assert read_card(out).layout == "emotions-color-depth+rgb-depth"


def test_every_planted_fault_is_reported(built):
    out, _, _, exp = built
    report = json.loads((out / BUILD_REPORT).read_text())
    assert {(f["kind"], f["file"]) for f in report["faults"]} == exp.faults
    reasons = {f["file"]: f["reason"] for f in report["faults"]}
    assert "F_020_H064_disgust_Color.png" in reasons[f"{fx.TOP}/CalD3r/Disgust/DEPTH/F_020_H064_disgust_Depth.png"]
    assert "CalD3r uses 3" in reasons[f"{fx.TOP}/CalD3r/Anger/RGB/F_07_1120_anger_Color.png"]
    assert "mode L" in reasons[f"{fx.TOP}/{fx.EIGHT_BIT}"]


def test_empty_dir_names_layouts_and_licence(tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        convert("caldr_menders", tmp_path, tmp_path.with_name(tmp_path.name + "-out"), progress=False)
    text = str(err.value)
    assert "CalD3r & MenD3s not found" in text and "no *_Color.png or *_Depth.png file" in text
    assert "[rgb-depth]" in text and "[emotions-color-depth]" in text and "F_12_1932_disgust_Depth.png" in text


def test_align_reports_faces_not_found_and_rotates_both(tmp_path):
    from skimage.data import astronaut
    from skimage.transform import resize, rotate

    from ferbench.geometry.align import estimate_roll

    face = resize(astronaut()[0:300, 100:400], (224, 224), anti_aliasing=True)
    face = (rotate(face, 15, mode="edge") * 255).astype(np.uint8)  # a clearly rolled head
    depth = face.mean(axis=2).astype(np.uint16) * 16 + 1  # registered: depth follows the RGB pixels
    noise = np.random.default_rng(0).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    samples = [
        Sample("CalD3r", "F", 1, "1120", "happiness", face, depth),
        Sample("CalD3r", "F", 1, "1121", "neutral", noise, depth),
    ]
    write_caldr_menders(tmp_path / "raw", samples)
    result = convert("caldr_menders", tmp_path / "raw", tmp_path / "ds", align=True, workers=1, progress=False)
    assert [(f["kind"], f["file"]) for f in result.report["faults"]] == [
        ("face-not-found", "CalD3r/Neutral/RGB/F_001_1121_neutral_Color.png")
    ]
    (row,) = read_table(tmp_path / "ds").to_pylist()
    rgb, got_depth = decode(row["rgb"]["bytes"]), decode(row["depth"]["bytes"])
    assert rgb.shape == (224, 224, 3) and got_depth.dtype == np.uint16
    assert abs(estimate_roll(face)[0]) > 10 and abs(estimate_roll(rgb)[0]) < 2  # eyes level after
    # the depth moved exactly like the RGB it is registered to
    inside = got_depth > 0
    moved = np.abs(rgb.mean(axis=2)[inside] * 16 - got_depth[inside].astype(float))
    assert np.median(moved) < 16 * 4
    assert np.median(np.abs(depth[inside].astype(float) - got_depth[inside])) > 16 * 8  # it did move
