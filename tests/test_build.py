"""The builder's contract, with a minimal loader defined here: ordering, faults, atomicity, metadata."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ferbench.build import convert
from ferbench.converted import REPORT_FILE as BUILD_REPORT, read_card, read_table
from ferbench.synth import SYNTHETIC_MARKER
from ferbench.datasets import DatasetLoader, Item, register_dataset
from ferbench.errors import ConversionError, DatasetNotFoundError, FerbenchError, SampleError
from ferbench.imageio import check_image, encode_png
from ferbench.schema import EMOTIONS, ferbench_metadata, image, namespaced


@register_dataset
class FlatPngs(DatasetLoader):
    """Test-only dataset: ``<root>/<subject>_<label>_<n>.png``."""

    name = "_flat_pngs"
    title = "Flat PNG test set"
    version = "0"
    homepage = "https://example.invalid/request"
    license = "test-only licence"
    citation = "none"
    layouts = {"flat": "root/\n  <subject>_<label>_<n>.png"}
    label_map = {"neutral": 0, "happy": 1, "none": None}
    extra_fields = (pa.field("n", pa.int16()),)

    def detect(self) -> str:
        if not any(self.root.glob("*.png")):
            raise self.not_found("no <subject>_<label>_<n>.png files")
        return "flat"

    def scan(self, report):
        for path in self.root.glob("*.png"):
            parts = path.stem.split("_")
            if len(parts) != 3:
                report.fault("bad-name", "expected <subject>_<label>_<n>", self.rel(path))
                continue
            yield Item(f"{self.name}/{path.stem}", self.rel(path), payload=(str(path), parts))

    def load(self, item):
        path, (subject, label, n) = item.payload
        if item.sample_id.endswith("_interrupt"):
            raise KeyboardInterrupt
        data = Path(path).read_bytes()
        check_image(data, item.source)
        if label not in self.label_map:
            raise SampleError("unknown-label", f"label {label!r}")
        return {
            "sample_id": item.sample_id,
            "source_split": "train",
            "subject_id": namespaced(self.name, subject),
            "label_raw": label,
            "label_source": "annotation",
            "rgb": image(data, item.source),
            "n": int(n),
        }


def _write(root: Path, names: list[str]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        (root / f"{name}.png").write_bytes(encode_png(np.full((6, 6), i * 10, np.uint8)))


GOOD = ["s1_neutral_0", "s1_happy_1", "s2_happy_0", "s2_none_3", "s3_neutral_2"]


def test_rows_labels_faults_and_card(tmp_path):
    raw = tmp_path / "raw"
    _write(raw, GOOD + ["badname", "s4_angry_0"])
    (raw / "s5_happy_9.png").write_bytes(encode_png(np.zeros((6, 6), np.uint8))[:-20])  # truncated
    res = convert("_flat_pngs", raw, tmp_path / "out", workers=1)
    table = read_table(tmp_path / "out")
    assert table.column("sample_id").to_pylist() == sorted(f"_flat_pngs/{n}" for n in GOOD)
    by_id = dict(zip(table.column("sample_id").to_pylist(), table.column("label").to_pylist()))
    assert by_id == {
        "_flat_pngs/s1_happy_1": 1,
        "_flat_pngs/s1_neutral_0": 0,
        "_flat_pngs/s2_happy_0": 1,
        "_flat_pngs/s2_none_3": None,
        "_flat_pngs/s3_neutral_2": 0,
    }
    assert set(table.column("subject_id").to_pylist()) == {"_flat_pngs:s1", "_flat_pngs:s2", "_flat_pngs:s3"}
    assert table.schema.field("label").type == pa.int8()
    faults = {(f["kind"], f["file"]) for f in res.report["faults"]}
    assert faults == {("bad-name", "badname.png"), ("unknown-label", "s4_angry_0.png"), ("bad-image", "s5_happy_9.png")}
    card = read_card(tmp_path / "out")
    assert card.num_rows == 5 and card.null_labels == 1 and card.synthetic is False
    assert card.counts["per_split_label"] == {"train": {"0": 2, "1": 2, "None": 1}}
    meta = ferbench_metadata(pq.read_schema(tmp_path / "out" / card.shards[0]))
    assert meta["label_names"] == list(EMOTIONS)
    assert meta["dataset"] == "_flat_pngs" and meta["converter_fingerprint"] == card.converter_fingerprint
    report = json.loads((tmp_path / "out" / BUILD_REPORT).read_text())
    assert report["faults_total"] == 3 and report["fault_kinds"] == {"bad-image": 1, "bad-name": 1, "unknown-label": 1}


def test_deterministic_across_creation_order_and_workers(tmp_path):
    _write(tmp_path / "a", GOOD)
    _write(tmp_path / "b", list(reversed(GOOD)))
    # same content under both roots, created in opposite orders
    for name in GOOD:
        (tmp_path / "b" / f"{name}.png").write_bytes((tmp_path / "a" / f"{name}.png").read_bytes())
    r1 = convert("_flat_pngs", tmp_path / "a", tmp_path / "o1", workers=1)
    r2 = convert("_flat_pngs", tmp_path / "b", tmp_path / "o2", workers=2)
    assert r1.fingerprint == r2.fingerprint
    shards = read_card(tmp_path / "o1").shards
    for s in shards:
        assert (tmp_path / "o1" / s).read_bytes() == (tmp_path / "o2" / s).read_bytes()


def test_strict_stops_and_leaves_nothing(tmp_path):
    _write(tmp_path / "raw", GOOD + ["s4_angry_0"])
    with pytest.raises(ConversionError, match="unknown-label"):
        convert("_flat_pngs", tmp_path / "raw", tmp_path / "out", strict=True, workers=1)
    assert sorted(os.listdir(tmp_path)) == ["out.build_report.json", "raw"]  # the failure's report, no dataset


def test_interrupted_conversion_leaves_no_partial_dataset(tmp_path):
    _write(tmp_path / "raw", GOOD + ["s9_happy_interrupt"])
    with pytest.raises(KeyboardInterrupt):
        convert("_flat_pngs", tmp_path / "raw", tmp_path / "out", workers=1)
    assert sorted(os.listdir(tmp_path)) == ["raw"]


def test_existing_output_needs_overwrite(tmp_path):
    _write(tmp_path / "raw", GOOD)
    convert("_flat_pngs", tmp_path / "raw", tmp_path / "out", workers=1)
    with pytest.raises(FerbenchError, match="--overwrite"):
        convert("_flat_pngs", tmp_path / "raw", tmp_path / "out", workers=1)
    (tmp_path / "raw" / "s1_neutral_0.png").unlink()
    convert("_flat_pngs", tmp_path / "raw", tmp_path / "out", workers=1, overwrite=True)
    assert read_card(tmp_path / "out").num_rows == 4
    assert sorted(os.listdir(tmp_path)) == ["out", "raw"]


def test_missing_dataset_error_names_layout_licence_and_where(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError) as err:
        convert("_flat_pngs", tmp_path / "empty", tmp_path / "out")
    text = str(err.value)
    assert "<subject>_<label>_<n>.png" in text and "test-only licence" in text and "example.invalid/request" in text


def test_synthetic_marker_sets_metadata(tmp_path):
    _write(tmp_path / "raw", GOOD)
    (tmp_path / "raw" / SYNTHETIC_MARKER).write_text("")
    convert("_flat_pngs", tmp_path / "raw", tmp_path / "out", workers=1)
    card = read_card(tmp_path / "out")
    assert card.synthetic is True
    assert ferbench_metadata(pq.read_schema(tmp_path / "out" / card.shards[0]))["synthetic"] is True


def test_hf_datasets_round_trip(tmp_path):
    from ferbench import hf

    _write(tmp_path / "raw", GOOD)
    convert("_flat_pngs", tmp_path / "raw", tmp_path / "out", workers=1)
    ds = hf.load(tmp_path / "out", cache_dir=str(tmp_path / "hf"))
    assert ds.features["label"].names == list(EMOTIONS)
    rows = {r["sample_id"]: r for r in ds}
    assert ds.features["label"].int2str(rows["_flat_pngs/s1_happy_1"]["label"]) == "happiness"
    assert rows["_flat_pngs/s2_none_3"]["label"] is None
    img = rows["_flat_pngs/s1_happy_1"]["rgb"]
    assert img.mode == "L" and img.size == (6, 6)


@pytest.mark.parametrize("cut", [10, 40])
def test_check_image_rejects_truncated_png_and_jpeg(cut):
    import io

    from PIL import Image

    arr = (np.arange(64 * 64 * 3) % 251).astype(np.uint8).reshape(64, 64, 3)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG")
    jpeg, png = buf.getvalue(), encode_png(arr)
    assert check_image(jpeg).format == "JPEG" and check_image(png).width == 64
    for data in (jpeg, png):
        with pytest.raises(SampleError) as err:
            check_image(data[: len(data) - cut], "x")
        assert err.value.kind == "bad-image"


def _many(root: Path, count: int) -> list[str]:
    """``count`` samples whose PNGs all have the same size (one grey level, 6×6)."""
    names = [f"s{i % 4}_{('neutral', 'happy', 'none')[i % 3]}_{i}" for i in range(count)]
    root.mkdir(parents=True)
    for name in names:
        (root / f"{name}.png").write_bytes(encode_png(np.full((6, 6), 128, np.uint8)))
    return names


@pytest.mark.parametrize("group_rows, group_images", [(2, 100), (3, 2)])  # row groups cut by rows / by bytes
def test_blocks_files_and_row_groups_do_not_depend_on_workers(tmp_path, monkeypatch, group_rows, group_images):
    import ferbench.build as build

    names = _many(tmp_path / "raw", 23)
    (tmp_path / "raw" / "s9_angry_99.png").write_bytes(encode_png(np.zeros((6, 6), np.uint8)))  # unknown label
    sizes = {len((tmp_path / "raw" / f"{n}.png").read_bytes()) for n in names}
    assert len(sizes) == 1  # constant images: every PNG has the same size
    image_bytes = sizes.pop()
    # blocks of 5 items, row groups of 2 rows (by count or by bytes), a new file at 3 images' bytes
    monkeypatch.setattr(FlatPngs, "block_items", 5)
    monkeypatch.setattr(build, "ROW_GROUP_ROWS", group_rows)
    monkeypatch.setattr(build, "ROW_GROUP_BYTES", group_images * image_bytes)
    monkeypatch.setattr(build, "SHARD_BYTES", 3 * image_bytes)
    one = convert("_flat_pngs", tmp_path / "raw", tmp_path / "one", workers=1)
    three = convert("_flat_pngs", tmp_path / "raw", tmp_path / "three", workers=3)
    shards = read_card(tmp_path / "one").shards
    # 24 items → blocks of 5, 5, 5, 5 and 4 items; the unknown label (sorted last) leaves 3 rows
    # in the last block. A block's rows go to a file of 3 rows (groups of 2 + 1), then one of 2.
    assert read_card(tmp_path / "three").shards == shards
    groups = [pq.ParquetFile(tmp_path / "one" / s).metadata for s in shards]
    assert [[m.row_group(g).num_rows for g in range(m.num_row_groups)] for m in groups] == [[2, 1], [2]] * 4 + [[2, 1]]
    for s in shards:
        assert (tmp_path / "one" / s).read_bytes() == (tmp_path / "three" / s).read_bytes()
    table = read_table(tmp_path / "one")
    assert table.column("sample_id").to_pylist() == sorted(f"_flat_pngs/{n}" for n in names)
    assert one.fingerprint == three.fingerprint and one.num_rows == 23
    assert [(f["kind"], f["file"]) for f in three.report["faults"]] == [("unknown-label", "s9_angry_99.png")]


def test_a_row_must_keep_its_items_sample_id(tmp_path, monkeypatch):
    _write(tmp_path / "raw", GOOD)
    load = FlatPngs.load
    monkeypatch.setattr(FlatPngs, "load", lambda self, item: {**load(self, item), "sample_id": "_flat_pngs/same"})
    with pytest.raises(FerbenchError, match="gave sample_id '_flat_pngs/same' for item '_flat_pngs/s1_happy_1'"):
        convert("_flat_pngs", tmp_path / "raw", tmp_path / "out", workers=1)
    assert sorted(os.listdir(tmp_path)) == ["raw"]


@pytest.mark.parametrize(
    "shape, dtype, mode",
    [((48, 48), np.uint8, "L"), ((7, 5, 3), np.uint8, "RGB"), ((33, 17), np.uint16, "I;16"), ((1, 1), np.uint8, "L"), ((3, 1, 3), np.uint8, "RGB")],
)
def test_encode_png_round_trips_through_pil(shape, dtype, mode):
    import io

    from PIL import Image

    from ferbench.imageio import decode

    pixels = np.random.default_rng(len(shape)).integers(0, np.iinfo(dtype).max, shape, dtype=dtype, endpoint=True)
    data = encode_png(pixels)
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        assert im.format == "PNG" and im.mode == mode and im.size == (shape[1], shape[0])
    assert np.array_equal(decode(data), pixels)
    with pytest.raises(TypeError):
        encode_png(pixels.astype(np.float32))
