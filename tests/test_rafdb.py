"""RAF-DB converter: basic release (aligned/original), Kaggle repack, faults, determinism, HF view."""

from __future__ import annotations

import shutil

import pyarrow.parquet as pq
import pytest


from ferbench.build import convert
from ferbench.datasets.rafdb.fixture import ALIGNED_SIZE, ORIGINAL_SIZE, basic_tree, kaggle_tree

from ferbench.converted import read_card, read_table
from ferbench.errors import ConversionError, DatasetNotFoundError
from ferbench.schema import EMOTIONS, ferbench_metadata


def _faults(result) -> list[tuple]:
    return sorted(((f["kind"], f["file"], f["row"]) for f in result.report["faults"]), key=str)


def _rows(out) -> dict[str, dict]:
    return {r["sample_id"]: r for r in read_table(out).to_pylist()}


@pytest.fixture(scope="module")
def basic(tmp_path_factory):
    root = tmp_path_factory.mktemp("rafdb")
    return root, basic_tree(root / "raw")


@pytest.mark.parametrize("variant", ["aligned", "original"])
def test_basic_release_rows_labels_and_faults(basic, variant):
    root, expected = basic
    out = root / f"out-{variant}"
    result = convert("rafdb", root / "raw", out, workers=1, image=variant)
    assert result.report["layout"] == "basic"
    rows = _rows(out)
    got = {sid: (r["source_split"], r["label_raw"], r["label"]) for sid, r in rows.items()}
    assert got == expected.rows[variant]
    assert _faults(result) == expected.faults[variant]
    size = ALIGNED_SIZE if variant == "aligned" else ORIGINAL_SIZE
    for r in rows.values():
        assert r["dataset"] == "rafdb" and r["subject_id"] is None and r["label_source"] == "annotation"
        assert r["landmarks"] is None and r["rgb"]["bytes"] == (root / "raw" / r["rgb"]["path"]).read_bytes()
        assert r["rgb"]["path"].startswith(f"Image/{variant}/")
    from ferbench.imageio import check_image

    assert {(i.width, i.height) for i in (check_image(r["rgb"]["bytes"]) for r in rows.values())} == {size}
    assert read_card(out).options == {"image": variant}


def test_label_map_is_the_published_table(basic):
    root, _ = basic
    convert("rafdb", root / "raw", root / "out-map", workers=1)
    card = read_card(root / "out-map")
    meta = ferbench_metadata(pq.read_schema(root / "out-map" / card.shards[0]))
    assert meta["label_map"] == {"1": 3, "2": 4, "3": 5, "4": 1, "5": 2, "6": 6, "7": 0}
    names = {raw: EMOTIONS[i] for raw, i in meta["label_map"].items()}
    assert names == {"1": "surprise", "2": "fear", "3": "disgust", "4": "happiness", "5": "sadness", "6": "anger", "7": "neutral"}
    assert card.counts["per_split_label"]["test"] == {str(k): 1 for k in range(7)}


def test_correctly_spelled_label_file(tmp_path):
    expected = basic_tree(tmp_path / "raw", label_file="list_partition_label.txt")
    convert("rafdb", tmp_path / "raw", tmp_path / "out", workers=1)
    assert set(_rows(tmp_path / "out")) == set(expected.rows["aligned"])


def test_chosen_image_folder_missing_says_so(tmp_path):
    basic_tree(tmp_path / "raw")
    shutil.rmtree(tmp_path / "raw" / "Image" / "aligned")
    with pytest.raises(DatasetNotFoundError) as err:
        convert("rafdb", tmp_path / "raw", tmp_path / "out")
    assert "Image/aligned/ is missing (option image=aligned); Image/original/ is there: pass -o image=original" in str(err.value)
    assert convert("rafdb", tmp_path / "raw", tmp_path / "out", workers=1, image="original").num_rows == 19


def test_kaggle_repack(tmp_path):
    expected = kaggle_tree(tmp_path / "raw")
    result = convert("rafdb", tmp_path / "raw", tmp_path / "out", workers=1)
    assert result.report["layout"] == "kaggle" and result.report["faults"] == []
    rows = _rows(tmp_path / "out")
    assert {sid: (r["source_split"], r["label_raw"], r["label"]) for sid, r in rows.items()} == expected.rows["aligned"]
    assert {r["label_source"] for r in rows.values()} == {"folder"}
    with pytest.raises(DatasetNotFoundError, match="aligned faces only"):
        convert("rafdb", tmp_path / "raw", tmp_path / "out2", image="original")


def test_deterministic_whatever_the_file_order(tmp_path):
    basic_tree(tmp_path / "a", order_seed=1)
    basic_tree(tmp_path / "b", order_seed=2)
    r1 = convert("rafdb", tmp_path / "a", tmp_path / "o1", workers=1)
    r2 = convert("rafdb", tmp_path / "b", tmp_path / "o2", workers=2)
    assert r1.fingerprint == r2.fingerprint
    for shard in read_card(tmp_path / "o1").shards:
        assert (tmp_path / "o1" / shard).read_bytes() == (tmp_path / "o2" / shard).read_bytes()


def test_strict_stops_at_first_fault(tmp_path):
    basic_tree(tmp_path / "raw")
    with pytest.raises(ConversionError, match="--strict: missing-image in Image/aligned/train_00011_aligned.jpg"):
        convert("rafdb", tmp_path / "raw", tmp_path / "out", strict=True, workers=1)
    assert not (tmp_path / "out").exists()


def test_not_found_names_layouts_licence_and_where(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError) as err:
        convert("rafdb", tmp_path / "empty", tmp_path / "out")
    text = str(err.value)
    assert "no EmoLabel/ label file" in text and "list_patition_label.txt" in text and "DATASET/" in text
    assert "whdeng.cn/RAF" in text and "Non-commercial" in text
    (tmp_path / "empty" / "EmoLabel").mkdir()
    with pytest.raises(DatasetNotFoundError, match="EmoLabel/ holds neither list_patition_label.txt nor list_partition_label.txt"):
        convert("rafdb", tmp_path / "empty", tmp_path / "out")


def test_hf_round_trip(basic):
    from ferbench import hf

    root, expected = basic
    convert("rafdb", root / "raw", root / "out-hf", workers=1)
    ds = hf.load(root / "out-hf", cache_dir=str(root / "hf"))
    assert ds.features["label"].names == list(EMOTIONS) and len(ds) == len(expected.rows["aligned"])
    row = next(r for r in ds if r["sample_id"] == "rafdb/train_00004")
    assert ds.features["label"].int2str(row["label"]) == "happiness" and row["label_raw"] == "4"
    assert row["rgb"].mode == "RGB" and row["rgb"].size == ALIGNED_SIZE
