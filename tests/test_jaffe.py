"""JAFFE's quirks only: file-name parsing, the label map, poser → subject ids, root-independent
ids, the lossless TIFF → PNG re-encode and leave-one-poser-out. Rows, faults, --strict, file
order, workers, standard readers and the synthetic round trip are the dataset contract's
(``tests/test_dataset_contract.py``), not repeated here."""

from __future__ import annotations

import io
from collections import defaultdict

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from ferbench.build import convert
from ferbench.converted import read_card, read_table
from ferbench.datasets.jaffe.fixture import flat_tree, good_samples, pixels
from ferbench.datasets.jaffe.layout import POSERS, Sample, encode_tiff, write_tree
from ferbench.datasets.jaffe.loader import parse_name
from ferbench.errors import DatasetNotFoundError
from ferbench.imageio import decode
from ferbench.schema import EMOTIONS, ferbench_metadata


@pytest.mark.parametrize(
    ("name", "parsed"),
    [
        ("KA.AN1.39.tiff", ("KA", "AN", 1, 39)),
        ("KA.AN1.39.tif", ("KA", "AN", 1, 39)),
        ("YM.SU3.63.TIFF", ("YM", "SU", 3, 63)),
        ("NM.NE2.130.TIF", ("NM", "NE", 2, 130)),
        ("UY.DI1.151.Tiff", ("UY", "DI", 1, 151)),
        ("ka.ha4.032.tiff", ("KA", "HA", 4, 32)),  # lower case, leading zeros: normalised
        ("KA.XX1.39.tiff", ("KA", "XX", 1, 39)),  # well formed; the code is checked by the scan
    ],
)
def test_names_that_parse(name, parsed):
    p = parse_name(name)
    assert (p["poser"], p["code"], p["repetition"], p["number"]) == parsed


@pytest.mark.parametrize(
    "name",
    [
        "KA.AN1.tiff",  # no image number
        "KA.AN.39.tiff",  # no repetition index
        "KA.ANG1.39.tiff",  # three-letter code
        "KAT.AN1.39.tiff",  # three-letter initials
        "KA.AN1.39.png",
        "KA.AN1.39",
        "KA_AN1_39.tiff",
        "KA.AN1.39.tiff.bak",
        "KA.AN123.39.tiff",  # repetition beyond two digits (int8 column)
    ],
)
def test_names_that_do_not_parse(name):
    assert parse_name(name) is None


def test_label_map_is_the_published_table(tmp_path):
    flat_tree(tmp_path / "raw")
    convert("jaffe", tmp_path / "raw", tmp_path / "out", workers=1, progress=False)
    card = read_card(tmp_path / "out")
    meta = ferbench_metadata(pq.read_schema(tmp_path / "out" / card.shards[0]))
    names = {raw: EMOTIONS[i] for raw, i in meta["label_map"].items()}
    assert names == {
        "NE": "neutral", "HA": "happiness", "SA": "sadness", "SU": "surprise", "FE": "fear", "DI": "disgust", "AN": "anger",
    }  # fmt: skip
    rows = read_table(tmp_path / "out").to_pylist()
    assert {r["label_raw"] for r in rows} == set(names)
    assert all(r["source_split"] is None and r["label_source"] == "annotation" for r in rows)
    # poser initials → namespaced subject ids; image number and repetition from the name
    by_id = {r["sample_id"]: r for r in rows}
    ka = by_id["jaffe/KA.HA2.3"]
    assert (ka["subject_id"], ka["label_raw"], ka["image_number"], ka["repetition"]) == ("jaffe:KA", "HA", 3, 2)
    assert {r["subject_id"] for r in rows} == {"jaffe:KA", "jaffe:KM", "jaffe:YM"}
    assert card.counts["subjects"] == 3


def test_ids_do_not_depend_on_the_folder_pointed_at(tmp_path):
    flat_tree(tmp_path / "raw")
    parent = convert("jaffe", tmp_path / "raw", tmp_path / "a", workers=1, progress=False)
    inside = convert("jaffe", tmp_path / "raw" / "jaffe", tmp_path / "b", workers=1, progress=False)
    assert parent.fingerprint == inside.fingerprint
    assert read_table(tmp_path / "a", ["sample_id"]).equals(read_table(tmp_path / "b", ["sample_id"]))
    assert ("bad-name", "KM.AN2.tiff", None) in {(f["kind"], f["file"], f["row"]) for f in inside.report["faults"]}


def test_tiff_becomes_a_lossless_grayscale_png(tmp_path):
    gray = pixels(7)
    rgb = np.repeat(pixels(8)[..., None], 3, axis=2)  # a 3-channel copy of a gray face: kept exactly
    buf = io.BytesIO()
    Image.fromarray(np.zeros((4, 4), np.uint16) + 300).save(buf, format="TIFF")
    write_tree(
        tmp_path / "raw",
        [Sample("KA", "NE", 1, 1, gray)],
        raw_files={"KA.HA1.2.tiff": _tiff(rgb), "KA.SA1.3.tiff": buf.getvalue()},
    )
    result = convert("jaffe", tmp_path / "raw", tmp_path / "out", workers=1, progress=False)
    rows = {r["sample_id"]: r for r in read_table(tmp_path / "out").to_pylist()}
    for sid, want in (("jaffe/KA.NE1.1", gray), ("jaffe/KA.HA1.2", rgb[..., 0])):
        png = rows[sid]["rgb"]
        assert png["bytes"].startswith(b"\x89PNG") and png["path"] == f"{sid}.png"
        got = decode(png["bytes"])
        assert got.dtype == np.uint8 and got.ndim == 2 and np.array_equal(got, want)
    [fault] = result.report["faults"]
    assert (fault["kind"], fault["file"]) == ("bad-image", "jaffe/KA.SA1.3.tiff") and "I;16" in fault["reason"]


def _tiff(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="TIFF")
    return buf.getvalue()


def test_not_found_when_no_tiff_is_named_like_jaffe(tmp_path):
    (tmp_path / "raw" / "jaffe").mkdir(parents=True)
    (tmp_path / "raw" / "jaffe" / "face1.tiff").write_bytes(encode_tiff(pixels(1)))
    with pytest.raises(DatasetNotFoundError, match="1 TIFF file\\(s\\), none named like KA.AN1.39.tiff"):
        convert("jaffe", tmp_path / "raw", tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_protocols_leave_one_poser_out(tmp_path, monkeypatch):
    from ferbench.protocols import materialise

    monkeypatch.setenv("FERBENCH_CACHE", str(tmp_path / "cache"))
    write_tree(tmp_path / "raw", good_samples(POSERS, ()))
    convert("jaffe", tmp_path / "raw", tmp_path / "out", workers=1, progress=False)
    seven = materialise("jaffe7", [tmp_path / "out"])
    six = materialise("jaffe6", [tmp_path / "out"])
    assert seven.meta["n_folds"] == 10 and seven.meta["counts"]["samples"] == 70
    assert six.meta["counts"]["samples"] == 60 and "neutral" not in six.meta["classes"]
    t = seven.table
    tested = defaultdict(set)
    for fold, role, subject in zip(t["fold"].to_pylist(), t["role"].to_pylist(), t["subject_id"].to_pylist()):
        if role == "test":
            tested[fold].add(subject)
    assert sorted(len(s) for s in tested.values()) == [1] * 10
    assert set().union(*tested.values()) == {f"jaffe:{p}" for p in POSERS}
