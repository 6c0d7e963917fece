"""FER2013 converter on written replicas of every layout: ids, labels, pixels, fault reasons, quirks.

Rows, labels, faults, --strict, order/worker independence and standard readers of each layout are
checked by tests/test_dataset_contract.py (``ferbench/datasets/fer2013/fixture.py`` ``VARIANTS``).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from ferbench.build import convert
from ferbench.converted import read_card, read_table
from ferbench.datasets.fer2013.loader import FER2013, NUM_PIXELS, parse_pixels
from ferbench.errors import ConversionError, DatasetNotFoundError
from ferbench.imageio import decode
from ferbench.schema import ferbench_metadata
from ferbench.datasets.fer2013.layout import write_competition, write_csv
from ferbench.datasets.fer2013 import fixture as fx


def _convert(root: Path, out: Path, **kwargs):
    return convert("fer2013", root, out, workers=1, progress=False, **kwargs)


def _faults(result) -> set[tuple[str, str, int | None]]:
    return {(f["kind"], f["file"], f["row"]) for f in result.report["faults"]}


@pytest.fixture(scope="module", params=fx.CSV_LAYOUTS)
def csv_built(request, tmp_path_factory):
    root = tmp_path_factory.mktemp("fer_csv")
    exp = fx.build_csv(root, request.param)
    out = tmp_path_factory.mktemp("fer_csv_out") / "ds"
    result = _convert(root, out)
    return exp, out, result, {r["sample_id"]: r for r in read_table(out).to_pylist()}


@pytest.fixture(scope="module")
def folders_built(tmp_path_factory):
    root = tmp_path_factory.mktemp("fer_folders")
    exp = fx.build_folders(root, order_seed=1)
    out = tmp_path_factory.mktemp("fer_folders_out") / "ds"
    result = _convert(root, out)
    return root, exp, out, result, {r["sample_id"]: r for r in read_table(out).to_pylist()}


def test_label_map_is_the_documented_one():
    assert FER2013.label_map == {
        "0": 6, "1": 5, "2": 4, "3": 1, "4": 2, "5": 3, "6": 0,
        "angry": 6, "disgust": 5, "fear": 4, "happy": 1, "sad": 2, "surprise": 3, "neutral": 0,
    }  # fmt: skip


def test_csv_rows_ids_labels_and_splits(csv_built):
    exp, out, result, rows = csv_built
    assert result.report["layout"] == exp.layout
    assert set(rows) == set(exp.rows)
    for sid, (label, label_raw, split, csv_row) in exp.rows.items():
        row = rows[sid]
        assert (row["label"], row["label_raw"], row["source_split"], row["csv_row"]) == (label, label_raw, split, csv_row)
        assert row["label_source"] == (None if label is None else "annotation")
        assert row["subject_id"] is None and row["dataset"] == "fer2013"
    assert read_card(out).null_labels == sum(1 for v in exp.rows.values() if v[0] is None)


def test_csv_faults_name_file_row_and_reason(csv_built):
    exp, _, result, _ = csv_built
    assert _faults(result) == exp.faults
    reasons = {(f["file"].rsplit("/", 1)[-1], f["row"]): f["reason"] for f in result.report["faults"]}
    first = "test.csv" if exp.layout == "train.csv+test.csv" else exp.layout
    assert reasons[(first, 1 if first == "test.csv" else 11)] == f"{NUM_PIXELS - 1} pixel values, expected {NUM_PIXELS}"
    data_file = "train.csv" if first == "test.csv" else first
    assert reasons[(data_file, 4)] == "pixel 100 is 'x7', not an integer"
    assert "300, outside 0..255" in reasons[(data_file, 8)]
    assert reasons[(data_file, 6)] == "emotion '9' is not one of 0..6"
    assert reasons[(data_file, 9)] == f"4 fields, expected {2 if data_file == 'train.csv' else 3}"


def test_csv_pixels_become_48x48_grayscale_png(csv_built):
    exp, _, _, rows = csv_built
    for sid, face in exp.faces.items():
        data = rows[sid]["rgb"]["bytes"]
        with Image.open(io.BytesIO(data)) as im:
            assert (im.format, im.mode, im.size) == ("PNG", "L", (48, 48))
        np.testing.assert_array_equal(decode(data), face)
        assert rows[sid]["rgb"]["path"] == f"{sid}.png"


def test_csv_layouts_give_the_same_ids_for_the_same_rows(tmp_path):
    ids = {}
    for layout in ("fer2013.csv", "icml_face_data.csv", "train.csv+test.csv"):
        fx.build_csv(tmp_path / layout, layout)
        _convert(tmp_path / layout, tmp_path / f"out-{layout}")
        table = read_table(tmp_path / f"out-{layout}", ["sample_id", "source_split", "rgb"]).to_pylist()
        ids[layout] = {r["sample_id"]: r["rgb"]["bytes"] for r in table if r["source_split"] == "Training"}
    assert ids["fer2013.csv"] == ids["icml_face_data.csv"] == ids["train.csv+test.csv"]
    assert sorted(ids["fer2013.csv"]) == [f"fer2013/{r:05d}" for r in (0, 1, 3, 5, 7)]


def test_detection_follows_torchvision_order(tmp_path):
    faces = fx.faces(6)
    emotions, usages = [0, 1, 2, 3, 4, 5], ["Training"] * 3 + ["PublicTest", "PrivateTest", "PrivateTest"]
    write_competition(tmp_path, faces, emotions, usages)
    assert FER2013(tmp_path).detect() == "fer2013.csv"
    (tmp_path / "fer2013" / "fer2013.csv").unlink()
    assert FER2013(tmp_path).detect() == "icml_face_data.csv"
    (tmp_path / "icml_face_data.csv").unlink()
    assert FER2013(tmp_path).detect() == "train.csv+test.csv"
    result = _convert(tmp_path, tmp_path.with_name(tmp_path.name + "-out"))
    rows = read_table(tmp_path.with_name(tmp_path.name + "-out"), ["sample_id", "label", "source_split"]).to_pylist()
    assert result.num_rows == 6 and not result.report["faults"]
    assert [r["sample_id"] for r in rows] == ["fer2013/00000", "fer2013/00001", "fer2013/00002", "fer2013/test/00000", "fer2013/test/00001", "fer2013/test/00002"]
    assert [r["label"] for r in rows] == [6, 5, 4, None, None, None]


def test_empty_dir_names_every_layout(tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        _convert(tmp_path, tmp_path.with_name(tmp_path.name + "-out"))
    text = str(err.value)
    for needle in ("fer2013.csv", "icml_face_data.csv", "emotion, Usage, pixels", "test.csv", "train/{angry", "archive/"):
        assert needle in text


def test_strict_stops_at_the_first_faulty_row(tmp_path):
    fx.build_csv(tmp_path, "fer2013.csv")
    with pytest.raises(ConversionError, match=r"bad-pixel-count in fer2013/fer2013.csv, row 2"):
        _convert(tmp_path, tmp_path.with_name(tmp_path.name + "-out"), strict=True)
    assert not (tmp_path.with_name(tmp_path.name + "-out")).exists()


def test_strict_stops_at_a_truncated_jpeg(tmp_path):
    fx.build_folders(tmp_path, stray=False)
    with pytest.raises(ConversionError, match=r"bad-image in archive/train/.*\.jpg"):
        _convert(tmp_path, tmp_path.with_name(tmp_path.name + "-out"), strict=True)


def test_folders_rows_labels_and_pass_through_bytes(folders_built):
    root, exp, _, result, rows = folders_built
    assert result.report["layout"] == "image-folders"
    assert set(rows) == set(exp.rows)
    assert {"fer2013/train/angry/Training_10022789", "fer2013/test/sad/PublicTest_10131363", "fer2013/test/fear/PrivateTest_77777"} <= set(rows)
    for sid, (label, label_raw, split, csv_row) in exp.rows.items():
        row = rows[sid]
        assert (row["label"], row["label_raw"], row["source_split"], row["csv_row"]) == (label, label_raw, split, csv_row)
        assert row["label_source"] == "folder" and row["subject_id"] is None
        assert row["rgb"]["path"].startswith(("train/", "test/"))  # relative to the layout root, not archive/
        assert row["rgb"]["bytes"] == (root / "archive" / row["rgb"]["path"]).read_bytes()
        with Image.open(io.BytesIO(row["rgb"]["bytes"])) as im:
            assert (im.format, im.mode, im.size) == ("JPEG", "L", (48, 48))
    assert _faults(result) == exp.faults


def test_folders_without_wrapper(tmp_path):
    exp = fx.build_folders(tmp_path, wrapper="fer2013", stray=False)
    result = _convert(tmp_path, tmp_path.with_name(tmp_path.name + "-out"))
    assert result.num_rows == len(exp.rows) == len(fx.FOLDER_SAMPLES) - 1


def test_schema_metadata_keeps_the_label_map(csv_built):
    _, out, _, _ = csv_built
    schema = pq.read_schema(out / read_card(out).shards[0])
    assert ferbench_metadata(schema)["label_map"] == FER2013.label_map


def test_pixel_parser_agrees_with_a_plain_parse():
    rng = np.random.default_rng(5)
    faces = rng.integers(0, 256, (4, NUM_PIXELS), dtype=np.uint8)
    texts = [
        " ".join(map(str, faces[0])),
        "  " + "\t".join(map(str, faces[1])) + " \r\n",
        "  ".join(f"{v:03d}" for v in faces[2]),
        " ".join(map(str, faces[3])),
    ]
    bad = ["1 2 3", " ".join(["256"] + ["0"] * (NUM_PIXELS - 1)), " ".join(["1000"] + ["0"] * (NUM_PIXELS - 1)), "é " * NUM_PIXELS]
    array = pa.array([t.encode() for t in [bad[0], *texts[:2], bad[1], bad[2], *texts[2:], bad[3]]], pa.binary())
    pixels, ok = parse_pixels(pa.chunked_array([array.slice(1), array.slice(0, 1)]))
    assert ok.tolist() == [True, True, False, False, True, True, False, False]
    np.testing.assert_array_equal(pixels, faces)


def test_writer_quirks_round_trip(tmp_path):
    faces = fx.faces(3)
    path = write_csv(tmp_path / "fer2013.csv", "fer2013", faces, [6, 3, 0], ["Training", "PublicTest", "PrivateTest"], quote_pixels=True, newline="\r\n")
    assert path.read_bytes().startswith(b'emotion,pixels,Usage\r\n6,"')
    result = _convert(tmp_path, tmp_path.with_name(tmp_path.name + "-out"))
    assert [r["label"] for r in read_table(tmp_path.with_name(tmp_path.name + "-out"), ["label"]).to_pylist()] == [0, 1, 6]
    assert result.report["faults"] == []
