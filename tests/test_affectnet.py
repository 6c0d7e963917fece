"""AffectNet converter: both releases, their quirks, planted faults, determinism, HF view.

Rows, labels, faults, --strict, file-order/worker independence and standard readers of both
releases are checked by tests/test_dataset_contract.py (``ferbench/datasets/affectnet/fixture.py``).
"""

from __future__ import annotations

import io
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ferbench.build import convert

from ferbench.converted import read_card, read_table
from ferbench.datasets.affectnet.fixture import BASE, full_tree, small_tree
from ferbench.datasets.affectnet.loader import read_npy
from ferbench.errors import ConversionError, DatasetNotFoundError
from ferbench.schema import EMOTIONS, ferbench_metadata

LABEL_MAP = {"0": 0, "1": 1, "2": 2, "3": 3, "4": 4, "5": 5, "6": 6, "7": 7, "8": None, "9": None, "10": None}


def _faults(result) -> list[tuple]:
    return sorted(((f["kind"], f["file"], f["row"]) for f in result.report["faults"]), key=str)


def _check_rows(out, expected) -> dict[str, dict]:
    rows = {r["sample_id"]: r for r in read_table(out).to_pylist()}
    assert sorted(rows) == sorted(expected.rows)
    for sample_id, want in expected.rows.items():
        got = rows[sample_id]
        for key in ("label", "label_raw", "source_split", "valence", "arousal", "face_box", "release"):
            assert got[key] == want[key], (sample_id, key)
        assert got["dataset"] == "affectnet" and got["subject_id"] is None and got["label_source"] == "annotation"
        assert got["landmark_scheme"] == "ibug68-2d"
        assert np.array_equal(np.array(got["landmarks"], dtype=np.float32), want["landmarks"])
    return rows


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("small")
    expected = small_tree(root / "raw")
    result = convert("affectnet", root / "raw", root / "out", workers=1)
    return root, expected, result


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    root = tmp_path_factory.mktemp("full")
    expected = full_tree(root / "raw")
    result = convert("affectnet", root / "raw", root / "out", workers=1)
    return root, expected, result


def test_small_release_rows_values_and_faults(small):
    root, expected, result = small
    assert result.report["layout"] == "small"
    assert result.num_rows == len(expected.rows) == 20
    rows = _check_rows(root / "out", expected)
    # the same id in both splits gives two samples
    assert {"affectnet/train/7", "affectnet/val/7"} <= set(rows)
    assert _faults(result) == expected.faults
    card = read_card(root / "out")
    assert card.counts["per_split_label"]["val"] == {str(k): 1 for k in range(8)}
    assert card.null_labels == 0


def test_small_release_image_bytes_untouched(small):
    root, _, _ = small
    table = read_table(root / "out", ["sample_id", "rgb"]).to_pylist()
    for row in table:
        assert row["rgb"]["bytes"] == (root / "raw" / row["rgb"]["path"]).read_bytes()
    assert table[0]["rgb"]["path"] == "train_set/images/0.jpg"


def test_full_release_rows_nulls_and_faults(full):
    root, expected, result = full
    assert result.report["layout"] == "full"
    assert result.num_rows == len(expected.rows) == 22
    rows = _check_rows(root / "out", expected)
    by_raw = {r["label_raw"]: r for r in rows.values() if r["source_split"] == "val"}
    assert [by_raw[k]["label"] for k in ("8", "9", "10")] == [None, None, None]
    assert by_raw["9"]["valence"] is None and by_raw["10"]["arousal"] is None
    assert by_raw["8"]["valence"] is not None  # id 8 keeps its real valence
    assert _faults(result) == expected.faults and len(result.report["notes"]) == expected.notes == 0
    assert result.report["null_labels"] == 6
    reasons = {f["kind"] + str(f["row"]): f["reason"] for f in result.report["faults"]}
    assert reasons["malformed-row4"] == "10 comma-separated fields, expected 9"
    assert "not on disk (listed in" in next(f["reason"] for f in result.report["faults"] if f["kind"] == "missing-image")


def test_full_release_keeps_mixed_extensions_untouched(full):
    from PIL import Image

    root, _, _ = full
    formats = {}
    for row in read_table(root / "out", ["rgb"]).column("rgb").to_pylist():
        assert row["path"].startswith("Manually_Annotated_Images/")  # relative to the layout root, not the raw root
        assert row["bytes"] == (root / "raw" / BASE / row["path"]).read_bytes()
        formats[row["path"].rsplit(".", 1)[1]] = Image.open(io.BytesIO(row["bytes"])).format
    assert formats == {"jpg": "JPEG", "png": "PNG", "jpeg": "JPEG", "JPG": "JPEG"}


def test_label_map_and_schema_metadata(full):
    root, _, _ = full
    card = read_card(root / "out")
    meta = ferbench_metadata(pq.read_schema(root / "out" / card.shards[0]))
    assert meta["label_map"] == LABEL_MAP and meta["label_names"] == list(EMOTIONS)
    schema = pq.read_schema(root / "out" / card.shards[0])
    assert schema.field("face_box").type == pa.list_(pa.int32()) and schema.field("valence").type == pa.float32()


def test_validation_csv_without_header(tmp_path):
    expected = full_tree(tmp_path / "raw", val_header=False)
    result = convert("affectnet", tmp_path / "raw", tmp_path / "out", workers=1)
    _check_rows(tmp_path / "out", expected)
    assert _faults(result) == expected.faults
    assert expected.notes == 1 and result.report["notes"] == [f"{BASE}/Manually_Annotated_file_lists/validation.csv has no header row; assumed the standard column order"]


def test_deterministic_across_worker_processes(tmp_path):
    """Enough images for the worker pool: the chunking must not change a byte."""
    from ferbench.bench.inputs import affectnet_small_samples
    from ferbench.datasets.affectnet.layout import write_small

    write_small(tmp_path / "raw", affectnet_small_samples(150, size=24))
    r1 = convert("affectnet", tmp_path / "raw", tmp_path / "o1", workers=1)
    r3 = convert("affectnet", tmp_path / "raw", tmp_path / "o3", workers=3)
    assert r1.num_rows == r3.num_rows == 150 and r1.fingerprint == r3.fingerprint
    assert (tmp_path / "o1/data/part-00000.parquet").read_bytes() == (tmp_path / "o3/data/part-00000.parquet").read_bytes()


def test_strict_stops_at_first_fault(tmp_path):
    small_tree(tmp_path / "raw")
    with pytest.raises(ConversionError, match="--strict: .*in train_set/"):
        convert("affectnet", tmp_path / "raw", tmp_path / "out", strict=True, workers=1)
    assert not (tmp_path / "out").exists()


def test_both_releases_present(tmp_path):
    small_tree(tmp_path / "raw" / "cropped")
    full_tree(tmp_path / "raw" / "orig")
    auto = convert("affectnet", tmp_path / "raw", tmp_path / "auto", workers=1)
    assert auto.report["layout"] == "full" and auto.num_rows == 22
    assert any("release=small" in note for note in auto.report["notes"])
    small = convert("affectnet", tmp_path / "raw", tmp_path / "small", workers=1, release="small")
    assert small.report["layout"] == "small" and small.num_rows == 20


def test_not_found_messages(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError) as err:
        convert("affectnet", tmp_path / "empty", tmp_path / "out")
    text = str(err.value)
    assert "no train_set/ or val_set/" in text and "Manually_Annotated_file_lists" in text
    assert "mohammadmahoor.com/affectnet" in text and "Research-only" in text
    small_tree(tmp_path / "small")
    with pytest.raises(DatasetNotFoundError, match="no Manually_Annotated_file_lists/ folder"):
        convert("affectnet", tmp_path / "small", tmp_path / "out", release="full")
    with pytest.raises(DatasetNotFoundError):  # one split folder alone is not the release
        convert("affectnet", tmp_path / "small" / "train_set", tmp_path / "out")
    full_tree(tmp_path / "full")
    shutil.rmtree(tmp_path / "full" / BASE / "Manually_Annotated_Images")
    with pytest.raises(DatasetNotFoundError, match="no Manually_Annotated_Images/ folder"):
        convert("affectnet", tmp_path / "full", tmp_path / "out")


def test_hf_round_trip(full):
    from ferbench import hf

    root, expected, _ = full
    ds = hf.load(root / "out", cache_dir=str(root / "hf"))
    assert ds.features["label"].names == list(EMOTIONS)
    assert len(ds) == len(expected.rows)
    rows = {r["sample_id"]: r for r in ds}
    row = next(r for r in rows.values() if r["label_raw"] == "1")
    assert ds.features["label"].int2str(row["label"]) == "happiness"
    assert row["rgb"].size == (16, 16) and len(row["landmarks"]) == 68
    assert next(r for r in rows.values() if r["label_raw"] == "10")["label"] is None


@pytest.mark.parametrize(
    "array",
    [
        np.array("3"),
        np.array(["-0.392238"]),
        np.array(b"7"),
        np.array(5),
        np.array([0.25], dtype=">f8"),
        np.arange(136, dtype=np.float32),
        np.asfortranarray(np.arange(136.0).reshape(68, 2)),
    ],
)
def test_read_npy_matches_np_load(array):
    buf = io.BytesIO()
    np.save(buf, array)
    got = read_npy(buf.getvalue(), "x.npy")
    want = np.load(io.BytesIO(buf.getvalue()))
    assert got.dtype == want.dtype and got.shape == want.shape and np.array_equal(got, want)
    v2 = io.BytesIO()
    np.lib.format.write_array(v2, array, version=(2, 0))
    assert np.array_equal(read_npy(v2.getvalue(), "x.npy"), want)


@pytest.mark.parametrize(
    "array, text",
    [
        (np.array("3"), "3"),
        (np.array(["-0.392238"]), "-0.392238"),
        (np.array(" 0.5 "), "0.5"),
        (np.array("7", dtype=">U1"), "7"),
        (np.array(b"7"), "7"),
        (np.array([b"-1.5\0"], dtype="S6"), "-1.5"),
        (np.array(5), "5"),
        (np.array([2.0], dtype=">f8"), "2"),
        (np.array(0.25, dtype=np.float32), "0.25"),
    ],
)
def test_npy_text_reads_every_scalar_variant(array, text):
    from ferbench.datasets.affectnet.loader import _npy_text, _scalar_text

    buf = io.BytesIO()
    np.save(buf, array)
    assert _npy_text(buf.getvalue(), "x.npy") == text == _scalar_text(np.load(io.BytesIO(buf.getvalue())), "x.npy")
