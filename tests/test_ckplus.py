"""CK+ converter on written replicas: official tree with every quirk, the real 10-fold list, CK+48.

Rows, labels, subjects, faults, --strict, file-order/worker independence and standard readers of
the quirky tree and a tiny CK+48 set are checked by tests/test_dataset_contract.py
(``ferbench/datasets/ckplus/fixture.py`` ``VARIANTS``).
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from ferbench import hf
from ferbench.build import convert
from ferbench.converted import read_card, read_table
from ferbench.datasets import get_loader
from ferbench.errors import ConversionError, DatasetNotFoundError, FerbenchError
from ferbench.imageio import decode
from ferbench.schema import EMOTIONS
from ferbench.datasets.ckplus.layout import CKLayout, write_official
from ferbench.datasets.ckplus import fixture as fx

FOLD_FILE = Path(__file__).parent / "fixtures" / "data" / "ckplus" / "CK+_10-fold_sample_IDascendorder_step10.txt"
SEQUENCE_COUNTS = {
    "anger": 45,
    "contempt": 18,
    "disgust": 59,
    "fear": 25,
    "happiness": 69,
    "sadness": 28,
    "surprise": 83,
}


def _convert(raw: Path, out: Path, **kwargs):
    kwargs.setdefault("workers", 1)
    return convert("ckplus", raw, out, progress=False, **kwargs)


@pytest.fixture(scope="module")
def quirky(tmp_path_factory):
    q = fx.write_quirky(tmp_path_factory.mktemp("ck_raw"))
    out = tmp_path_factory.mktemp("ck_out") / "ds"
    result = _convert(q.root, out)
    rows = {r["sample_id"]: r for r in read_table(out).to_pylist()}
    return q, out, result, rows


@pytest.fixture(scope="module")
def folds(tmp_path_factory):
    tree = fx.write_from_fold_list(tmp_path_factory.mktemp("ck_folds"), FOLD_FILE)
    out = tmp_path_factory.mktemp("ck_folds_out") / "ds"
    result = _convert(tree.root, out, workers=2)
    columns = ["sample_id", "subject_id", "label", "sequence_id", "sequence_label", "is_peak"]
    return tree, result, read_table(out, columns)


def _frames(seq) -> list[str]:
    return [f"ckplus/{seq.folder}/{k:08d}" for k in range(1, seq.peak + 1)]


# -- official tree --------------------------------------------------------------------------------
def test_every_frame_is_a_row(quirky):
    q, out, result, rows = quirky
    truncated = "ckplus/S014/001/00000002"
    assert result.num_rows == len(rows) == 39
    assert set(rows) == {sid for seq in q.sequences.values() for sid in _frames(seq)} - {truncated}
    assert {r["subject_id"] for r in rows.values()} == {f"ckplus:{s}" for s in ("S005", "S010", "S011", "S014", "S020")}
    assert read_card(out).layout == "official"
    for sid, row in rows.items():
        seq = q.sequences[row["sequence_id"]]
        assert sid == f"ckplus/{row['sequence_id']}/{row['frame_index']:08d}"
        assert row["subject_id"] == f"ckplus:{seq.subject}"
        assert (row["n_frames"], row["is_peak"]) == (seq.peak, row["frame_index"] == seq.peak)
        assert (row["dataset"], row["source_split"], row["depth"]) == ("ckplus", None, None)


def test_label_only_on_the_frame_the_emotion_file_names(quirky):
    q, out, result, rows = quirky
    labelled = {s: (r["label"], r["label_raw"], r["label_source"]) for s, r in rows.items() if r["label"] is not None}
    assert labelled == {
        "ckplus/S005/001/00000005": (5, "3", "annotation"),  # CK+ 3 disgust
        "ckplus/S010/002/00000006": (1, "5", "annotation"),  # CK+ 5 happy
        "ckplus/S014/001/00000005": (7, "2", "annotation"),  # CK+ 2 contempt
    }
    assert all(r["label_raw"] is None and r["label_source"] is None for sid, r in rows.items() if sid not in labelled)
    sequence_labels = {r["sequence_id"]: r["sequence_label"] for r in rows.values()}
    assert sequence_labels == {
        "S005/001": 5, "S005/002": None, "S010/002": 1, "S010/004": None, "S011/001": None,
        "S011/002": None, "S011/003": None, "S014/001": 7, "S020/001": None,
    }  # fmt: skip
    assert all(r["sequence_label"] == sequence_labels[r["sequence_id"]] for r in rows.values())
    assert read_card(out).null_labels == 36


def test_label_map():
    assert get_loader("ckplus").label_map == {
        "0": 0, "1": 6, "2": 7, "3": 5, "4": 4, "5": 1, "6": 2, "7": 3,
        "anger": 6, "contempt": 7, "disgust": 5, "fear": 4, "happy": 1, "sadness": 2, "surprise": 3,
    }  # fmt: skip


def test_action_units_on_the_facs_frame(quirky):
    _, _, _, rows = quirky
    aus = {sid: r["aus"] for sid, r in rows.items() if r["aus"] is not None}
    assert aus == {
        "ckplus/S005/001/00000005": [
            {"au": 4, "intensity": 1.0, "side": None},
            {"au": 9, "intensity": None, "side": None},  # intensity 0: not coded
            {"au": 17, "intensity": 2.0, "side": None},
        ],
        "ckplus/S005/002/00000004": [{"au": 1, "intensity": 3.0, "side": None}],
        "ckplus/S010/002/00000006": [
            {"au": 6, "intensity": 3.0, "side": None},
            {"au": 12, "intensity": 4.0, "side": None},
        ],
        "ckplus/S011/001/00000004": [{"au": 4, "intensity": 2.0, "side": None}],
    }  # S014/001's FACS file is malformed


def test_landmarks_per_frame(quirky):
    q, _, _, rows = quirky
    missing = {"ckplus/S010/002/00000003", "ckplus/S014/001/00000004"}  # no file / malformed file
    for sid, row in rows.items():
        seq = q.sequences[row["sequence_id"]]
        if seq.landmarks is None or sid in missing:
            assert (row["landmarks"], row["landmark_scheme"]) == (None, None), sid
            continue
        points = np.array(row["landmarks"], dtype=np.float32)
        assert points.shape == (68, 2) and row["landmark_scheme"] == "ibug68-2d"
        np.testing.assert_array_equal(points, seq.landmarks[row["frame_index"] - 1].astype(np.float32))
    assert sum(r["landmarks"] is not None for r in rows.values()) == 39 - 4 - 2


def test_png_bytes_pass_through(quirky):
    q, _, _, rows = quirky
    for row in rows.values():
        assert row["rgb"]["bytes"] == (q.root / row["rgb"]["path"]).read_bytes()
    assert rows["ckplus/S010/002/00000001"]["rgb"]["path"] == "cohn-kanade-images/S010/002/S010_002_00000001.png"
    assert decode(rows["ckplus/S010/002/00000001"]["rgb"]["bytes"]).shape == (8, 8, 3)  # colour stays colour
    gray = decode(rows["ckplus/S005/001/00000002"]["rgb"]["bytes"])
    np.testing.assert_array_equal(gray, q.sequences["S005/001"].frames[1])


def test_planted_faults_reported_with_file_and_reason(quirky):
    q, _, result, _ = quirky
    faults = result.report["faults"]
    assert {(f["kind"], f["file"]) for f in faults} == q.faults
    assert len(faults) == 6
    reasons = {f["kind"] + ":" + f["file"].rsplit("/", 1)[1]: f["reason"] for f in faults}
    assert "9" in reasons["unknown-label:S011_002_00000004_emotion.txt"]
    assert "99" in reasons["missing-frame:S011_003_00000099_emotion.txt"]
    assert "67" in reasons["malformed-annotation:S014_001_00000004_landmarks.txt"]
    assert "truncated" in reasons["bad-image:S014_001_00000002.png"]


def test_strict_stops_at_first_fault(quirky, tmp_path):
    q = quirky[0]
    with pytest.raises(ConversionError, match="malformed-annotation in Emotion_labels/Emotion/S011/001/"):
        _convert(q.root, tmp_path / "ds", strict=True)
    assert not (tmp_path / "ds").exists()


@pytest.mark.parametrize(
    "images_dir", ["extended-cohn-kanade-images", "extended-cohn-kanade-images/cohn-kanade-images"]
)
def test_extended_image_folder_names(quirky, tmp_path, images_dir):
    _, _, _, rows = quirky
    fx.write_quirky(tmp_path / "raw", images_dir=images_dir)
    got = read_table(_convert(tmp_path / "raw", tmp_path / "ds").out_dir).to_pylist()
    assert {r["sample_id"] for r in got} == set(rows)
    assert all(r["rgb"]["path"].startswith(images_dir + "/S0") for r in got)


def test_flat_annotation_copy_wins_over_nested_one(quirky, tmp_path):
    q = quirky[0]
    shutil.copytree(q.root, tmp_path / "raw")
    flat = tmp_path / "raw/Emotion/S005/001/S005_001_00000005_emotion.txt"
    flat.parent.mkdir(parents=True)
    flat.write_text("   1.0000000e+00\n")
    result = _convert(tmp_path / "raw", tmp_path / "ds")
    dupes = [(f["file"], f["reason"]) for f in result.report["faults"] if f["kind"] == "duplicate-annotation"]
    assert dupes == [
        (
            "Emotion_labels/Emotion/S005/001/S005_001_00000005_emotion.txt",
            "another emotion file already read: Emotion/S005/001/S005_001_00000005_emotion.txt",
        )
    ]
    rows = {r["sample_id"]: r for r in read_table(tmp_path / "ds", ["sample_id", "label"]).to_pylist()}
    assert rows["ckplus/S005/001/00000005"]["label"] == 6  # CK+ 1 anger, from the flat copy


def test_two_image_trees_are_refused(tmp_path):
    seqs = fx.quirky_sequences()[:1]
    write_official(tmp_path, seqs)
    write_official(tmp_path / "copy", seqs, CKLayout(images_dir="extended-cohn-kanade-images"))
    with pytest.raises(FerbenchError, match="several image trees"):
        _convert(tmp_path, tmp_path.with_name(tmp_path.name + "-out"))


def test_writer_uses_matlab_ascii_style(quirky):
    q = quirky[0]
    seq = q.sequences["S005/001"]
    assert (q.root / fx.QUIRKY_LAYOUT.annotation_path("Emotion", seq, 5)).read_text() == "   3.0000000e+00\n"
    facs = (q.root / fx.QUIRKY_LAYOUT.annotation_path("FACS", seq, 5)).read_text()
    assert facs.splitlines()[0] == "   4.0000000e+00   1.0000000e+00"
    empty = q.root / "Emotion_labels/Emotion/S020/001"
    assert empty.is_dir() and not any(empty.iterdir())
    assert (q.root / "cohn-kanade-images/S005/001/.DS_Store").is_file()


def test_hugging_face_round_trip(quirky):
    _, out, _, rows = quirky
    ds = hf.load(out)
    assert len(ds) == 39 and ds.features["label"].names == list(EMOTIONS)
    by_id = {sid: i for i, sid in enumerate(ds["sample_id"])}
    peak = ds[by_id["ckplus/S010/002/00000006"]]
    assert ds.features["label"].int2str(peak["label"]) == "happiness"
    assert (peak["rgb"].mode, peak["rgb"].size, peak["sequence_label"], peak["is_peak"]) == ("RGB", (8, 8), 1, True)
    assert peak["aus"] == rows["ckplus/S010/002/00000006"]["aus"]
    assert ds[by_id["ckplus/S005/001/00000001"]]["rgb"].mode == "L"


# -- the real 10-fold list ---------------------------------------------------------------------
def test_fold_file_parsing(tmp_path):
    entries = fx.read_fold_file(FOLD_FILE)
    assert len(entries) == len({e.sequence_id for e in entries}) == 327
    assert [sum(e.fold == k for e in entries) for k in range(1, 11)] == [33, 39, 40, 35, 30, 37, 29, 29, 33, 22]
    bad = tmp_path / "folds.txt"
    bad.write_text("1-fold 2 Angry 2\nS005/001 Angry\n")
    with pytest.raises(ValueError, match="do not match"):
        fx.read_fold_file(bad)


def test_fold_list_tree_counts(folds):
    tree, result, table = folds
    rows = table.to_pylist()
    assert result.num_rows == tree.frames == len(rows)
    assert result.report["faults_total"] == 0
    peaks = [r for r in rows if r["label"] is not None]
    assert len(peaks) == 327 and all(r["is_peak"] for r in peaks)
    assert Counter(EMOTIONS[r["label"]] for r in peaks) == SEQUENCE_COUNTS
    assert len({r["subject_id"] for r in peaks}) == 118
    assert len({r["subject_id"] for r in rows}) == 123
    assert len({r["sequence_id"] for r in rows}) == 335
    loader = get_loader("ckplus")
    expected = {e.sequence_id: loader.label_map[str(e.ck_id)] for e in tree.entries}
    got = {r["sequence_id"]: r["sequence_label"] for r in rows if r["sequence_label"] is not None}
    assert got == expected


# -- CK+48 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("subdir", ["CK+48", ""])
def test_ck48_variant(tmp_path, subdir):
    tree = fx.write_ck48_from_fold_list(tmp_path / "raw", FOLD_FILE, subdir=subdir)
    junk = tmp_path / "raw" / subdir / "anger" / "not_a_frame.png"
    junk.write_bytes(b"x")
    result = _convert(tmp_path / "raw", tmp_path / "ds", workers=2)
    rows = read_table(tmp_path / "ds").drop(["rgb"]).to_pylist()
    assert result.num_rows == len(rows) == 981
    assert result.report["layout"] == "CK+48" and "CK+48 layout" in result.report["notes"][0]
    assert [(f["kind"], f["file"]) for f in result.report["faults"]] == [
        ("malformed-name", junk.relative_to(tmp_path / "raw").as_posix())
    ]
    assert Counter(EMOTIONS[r["label"]] for r in rows) == {k: 3 * n for k, n in SEQUENCE_COUNTS.items()}
    assert len({r["subject_id"] for r in rows}) == 118
    n = next(s.peak for s in tree.sequences if s.folder == "S005/001")  # Disgust in the fold list
    got = [(r["sample_id"], r["subject_id"], r["frame_index"], r["label"], r["label_raw"], r["label_source"])
           for r in rows if r["sequence_id"] == "S005/001"]  # fmt: skip
    assert got == [(f"ckplus/S005/001/{k:08d}", "ckplus:S005", k, 5, "disgust", "folder") for k in range(n - 2, n + 1)]
    assert all(r["n_frames"] is None and r["is_peak"] is None and r["sequence_label"] == r["label"] for r in rows)


# -- not found ------------------------------------------------------------------------------------
def test_empty_dir_is_not_found(tmp_path):
    (tmp_path / "raw" / "cohn-kanade-images").mkdir(parents=True)  # present but holds no subject
    with pytest.raises(DatasetNotFoundError) as err:
        _convert(tmp_path / "raw", tmp_path / "ds")
    text = str(err.value)
    assert "CK+ (Extended Cohn-Kanade) not found" in text
    assert "no cohn-kanade-images/ or extended-cohn-kanade-images/ folder with Sxxx/ subject folders" in text
    assert "CK+48/" in text and "Emotion_labels/Emotion/" in text and "jeffcohn.net" in text
