"""``load_fold`` / ``export_fold`` / ``ferbench export-fold``: one fold of a manifest as a standard
dataset, checked with the real readers (datasets, torchvision ImageFolder, timm) rather than ferbench's."""

from __future__ import annotations

import csv
import io
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image

import ferbench as fb
from ferbench.cli import main
from ferbench.converted import read_table
from ferbench.errors import FerbenchError
from ferbench.folds import FOLD_FILE, SAMPLES_FILE, class_dirs
from ferbench.protocols import materialise, read_manifest
from ferbench.protocols.manifest import META_KEY
from ferbench.schema import EMOTIONS, image
from tests.fixtures import tables as T

sys.path.insert(0, str(Path(__file__).parent))
import train_fixtures as tf  # noqa: E402

SPLIT_OF_ROLE = {"train": "train", "val": "validation", "test": "test"}


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FERBENCH_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def bu3dfe(tmp_path_factory):
    """bu3dfe-p1: classes happiness … anger, so every protocol index differs from the canonical one."""
    root = tmp_path_factory.mktemp("bu")
    data = T.write(root, "bu3dfe", T.bu3dfe_rows(60), depth=T.RENDERED_DEPTH)
    return data, materialise("bu3dfe-p1", [data], seed=1, repeats=2).write(root / "p1.parquet")


@pytest.fixture(scope="module")
def caldr(tmp_path_factory):
    """caldr_menders6: 7 canonical classes present, surprise (3) dropped, so fear … anger shift by one."""
    root = tmp_path_factory.mktemp("cm")
    data = T.write(root, "caldr_menders", T.subject_rows("caldr_menders", 15, 14, (0, 1, 2, 3, 4, 5, 6), seed=4))
    return data, materialise("caldr_menders6", [data], seed=0).write(root / "cm6.parquet")


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """toyfer (RGB + 16-bit depth, real PNGs converted by ``convert``) with toy-kfold, k=3."""
    root = tmp_path_factory.mktemp("toy")
    data = tf.make_dataset(root)
    return data, tf.write_manifest(data, root / "toy.parquet")


def _fold_ids(manifest_path, repeat, fold):
    return {SPLIT_OF_ROLE[role]: t.column("sample_id").to_pylist() for role, t in read_manifest(manifest_path).select(repeat, fold).items()}


# -- load_fold ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["bu3dfe", "caldr"])
def test_labels_are_protocol_indices_with_protocol_names(which, request):
    data, path = request.getfixturevalue(which)
    meta = read_manifest(path).meta
    fold = fb.load_fold(path, fold=1, repeat=1 if which == "bu3dfe" else 0)
    assert list(fold) == ["train", "validation", "test"]
    differ = 0
    for split, ds in fold.items():
        assert ds.features["label"].names == meta["classes"]
        assert ds.features["label_canonical"].names == list(EMOTIONS)
        labels, canon = ds["label"], ds["label_canonical"]
        assert set(labels) <= set(range(len(meta["classes"])))
        for lab, can in zip(labels, canon):
            assert ds.features["label"].int2str(lab) == EMOTIONS[can]  # protocol index → right name
            assert meta["class_canonical"][lab] == can
        differ += sum(lab != can for lab, can in zip(labels, canon))
    assert differ > 0  # the protocol maps labels differently: canonical ids would be wrong here
    if which == "bu3dfe":
        assert fold["train"].features["label"].int2str(0) == "happiness" and fold["train"].features["label"].str2int("anger") == 5


def test_splits_are_the_manifest_roles_in_order_subjects_disjoint(bu3dfe):
    _, path = bu3dfe
    for repeat, f in ((0, 0), (1, 7)):
        fold = fb.load_fold(path, fold=f, repeat=repeat)
        expected = _fold_ids(path, repeat, f)
        assert {s: fold[s]["sample_id"] for s in fold} == expected
        assert all(ids == sorted(ids) for ids in expected.values())
        test_subjects = set(fold["test"]["subject_id"])
        assert not test_subjects & (set(fold["train"]["subject_id"]) | set(fold["validation"]["subject_id"]))
        assert set(fold["test"]["dataset"]) == {"bu3dfe"}


def test_images_decode_to_pil_with_the_stored_pixels_and_depth(toy):
    data, path = toy
    fold = fb.load_fold(path, 0)
    src = read_table(data, ["sample_id", "rgb", "depth"]).to_pylist()
    by_id = {r["sample_id"]: r for r in src}
    row = fold["test"][3]
    assert isinstance(row["image"], Image.Image) and isinstance(row["depth"], Image.Image)
    stored = by_id[row["sample_id"]]
    assert np.array_equal(np.asarray(row["image"]), np.asarray(Image.open(io.BytesIO(stored["rgb"]["bytes"]))))
    assert row["depth"].mode in ("I;16", "I") and np.array_equal(
        np.asarray(row["depth"]), np.asarray(Image.open(io.BytesIO(stored["depth"]["bytes"]))))
    assert row["subject_id"].startswith("toyfer:") and row["sample_id"].startswith("toyfer/")
    assert fold["train"].features["label"].names == list(tf.CLASSES)


def test_no_depth_column_where_no_dataset_has_depth(caldr):
    _, path = caldr
    fold = fb.load_fold(path, 0)
    assert "depth" not in fold["train"].column_names
    assert fold["train"].column_names == ["sample_id", "dataset", "subject_id", "image", "label", "label_canonical"]


def test_no_validation_split_when_the_protocol_has_none(toy, tmp_path):
    data, _ = toy
    path = tf.write_manifest(data, tmp_path / "noval.parquet", val="none")
    assert list(fb.load_fold(path, 2)) == ["train", "test"]


def test_accepts_a_manifest_object_and_gives_stable_fingerprints(caldr):
    data, path = caldr
    a = fb.load_fold(materialise("caldr_menders6", [data], seed=0), 2)
    b = fb.load_fold(path, 2)
    assert a["test"]["sample_id"] == b["test"]["sample_id"]
    assert a["test"]._fingerprint == b["test"]._fingerprint != b["train"]._fingerprint


@pytest.mark.parametrize("fold, repeat", [(5, 0), (-1, 0), (0, 1), (True, 0)])
def test_fold_or_repeat_out_of_range_is_refused(caldr, fold, repeat):
    _, path = caldr
    with pytest.raises(FerbenchError, match="does not exist"):
        fb.load_fold(path, fold, repeat)


def test_a_manifest_edited_after_split_is_refused(caldr, tmp_path):
    _, path = caldr
    table = pq.read_table(path)
    labels = table.column("label").to_numpy().copy()
    labels[0] = (labels[0] + 1) % 6
    edited = table.set_column(table.schema.get_field_index("label"), "label", pa.array(labels, pa.int8()))
    pq.write_table(edited.replace_schema_metadata(table.schema.metadata), tmp_path / "edited.parquet")
    with pytest.raises(FerbenchError, match="content hash"):
        fb.load_fold(tmp_path / "edited.parquet", 0)
    with pytest.raises(FerbenchError, match="content hash"):
        fb.export_fold(tmp_path / "edited.parquet", tmp_path / "out", 0)
    assert not (tmp_path / "out").exists()


def test_a_dataset_with_another_fingerprint_is_refused_and_data_dirs_relocate(caldr, tmp_path):
    data, path = caldr
    moved = tmp_path / "elsewhere" / "caldr_menders"
    shutil.copytree(data, moved)
    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[META_KEY])
    meta["datasets"][0]["path"] = str(tmp_path / "gone")  # the recorded path no longer exists
    pq.write_table(table.replace_schema_metadata({META_KEY: json.dumps(meta).encode()}), tmp_path / "m.parquet")
    with pytest.raises(FerbenchError):
        fb.load_fold(tmp_path / "m.parquet", 0)
    assert fb.load_fold(tmp_path / "m.parquet", 0, data_dirs=[moved])["test"]["sample_id"] == fb.load_fold(path, 0)["test"]["sample_id"]
    other = T.write(tmp_path / "other", "caldr_menders", T.subject_rows("caldr_menders", 15, 14, (0, 1, 2, 3, 4, 5, 6), seed=5))
    with pytest.raises(FerbenchError, match="fingerprint"):
        fb.load_fold(path, 0, data_dirs=[other])


# -- export: hf ------------------------------------------------------------------------------------
def test_export_hf_reads_back_with_datasets_load_dataset(bu3dfe, tmp_path):
    import datasets

    _, path = bu3dfe
    out = fb.export_fold(path, tmp_path / "fold", fold=4, repeat=1)
    assert out == tmp_path / "fold"
    assert sorted(p.name for p in (out / "data").iterdir()) == [
        "test-00000-of-00001.parquet", "train-00000-of-00001.parquet", "validation-00000-of-00001.parquet"]
    front = yaml.safe_load((out / "README.md").read_text().split("---\n")[1])
    assert front["configs"][0]["data_files"] == [{"split": s, "path": f"data/{s}-*.parquet"} for s in ("train", "validation", "test")]
    loaded = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "hf-cache"))
    fold = fb.load_fold(path, fold=4, repeat=1)
    assert list(loaded) == list(fold)
    for split in fold:
        assert loaded[split].features == fold[split].features
        for col in ("sample_id", "subject_id", "label", "label_canonical"):
            assert loaded[split][col] == fold[split][col]
    assert loaded["train"].features["label"].names == ["happiness", "sadness", "surprise", "fear", "disgust", "anger"]
    a, b = loaded["test"][5], fold["test"][5]
    assert np.array_equal(np.asarray(a["image"]), np.asarray(b["image"])) and np.array_equal(np.asarray(a["depth"]), np.asarray(b["depth"]))
    record = json.loads((out / FOLD_FILE).read_text())
    assert record["manifest_hash"] == read_manifest(path).content_hash and (record["repeat"], record["fold"]) == (1, 4)
    assert record["classes"] == loaded["train"].features["label"].names and record["format"] == "hf"
    assert record["splits"]["test"]["rows"] == loaded["test"].num_rows
    # and plain Parquet readers see the protocol labels too
    assert pq.read_table(out / "data" / "test-00000-of-00001.parquet").column("label").to_pylist() == fold["test"]["label"]


def test_export_hf_cuts_large_splits_into_shards(caldr, tmp_path, monkeypatch):
    import datasets

    from ferbench import folds

    _, path = caldr
    monkeypatch.setattr(folds, "SHARD_BYTES", 4000)
    out = fb.export_fold(path, tmp_path / "fold", fold=3)
    train_files = sorted(p.name for p in (out / "data").glob("train-*.parquet"))
    assert len(train_files) > 2 and train_files[-1].endswith(f"-of-{len(train_files):05d}.parquet")
    loaded = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "hf-cache"))
    fold = fb.load_fold(path, fold=3)
    assert {s: loaded[s]["sample_id"] for s in loaded} == {s: fold[s]["sample_id"] for s in fold}


def test_export_hf_reads_with_timm_hfds(toy, tmp_path):
    from timm.data import create_dataset

    _, path = toy
    out = fb.export_fold(path, tmp_path / "fold", fold=1)
    fold = fb.load_fold(path, fold=1)
    for split in ("train", "validation", "test"):
        ds = create_dataset(f"hfds/{out}", root=str(tmp_path / "timm-cache"), split=split)
        assert len(ds) == fold[split].num_rows
        assert ds.reader.class_to_idx == {c: i for i, c in enumerate(tf.CLASSES)}
        img, target = ds[0]
        assert isinstance(img, Image.Image) and target == fold[split][0]["label"]
        assert [ds[i][1] for i in range(len(ds))] == fold[split]["label"]


# -- export: imagefolder ---------------------------------------------------------------------------
def _listing(out: Path) -> list[dict[str, str]]:
    with open(out / SAMPLES_FILE, newline="") as fh:
        return list(csv.DictReader(fh))


def test_export_imagefolder_reads_with_torchvision_timm_and_datasets(bu3dfe, tmp_path):
    import datasets
    from timm.data import create_dataset
    from torchvision.datasets import ImageFolder

    data, path = bu3dfe
    out = fb.export_fold(path, tmp_path / "folders", fold=2, format="imagefolder")
    fold = fb.load_fold(path, fold=2)
    classes = fold["train"].features["label"].names
    assert sorted(p.name for p in out.iterdir()) == sorted([FOLD_FILE, SAMPLES_FILE, "test", "train", "validation"])
    listing = _listing(out)
    by_file = {r["file"]: r for r in listing}
    stored = {r["sample_id"]: r["rgb"]["bytes"] for r in read_table(data, ["sample_id", "rgb"]).to_pylist()}
    for split in fold:
        tv = ImageFolder(str(out / split))
        assert tv.classes == class_dirs(classes) and [c.split("_", 1)[1] for c in tv.classes] == classes
        assert tv.class_to_idx == {d: i for i, d in enumerate(class_dirs(classes))}  # = protocol indices
        assert len(tv) == fold[split].num_rows
        got = {}
        for file, target in tv.samples:
            row = by_file[Path(file).relative_to(out).as_posix()]
            assert row["split"] == split and classes[target] == row["label"]
            got[row["sample_id"]] = target
            assert Path(file).read_bytes() == stored[row["sample_id"]]  # PNG bytes kept as they are
        assert got == dict(zip(fold[split]["sample_id"], fold[split]["label"]))
        timm_ds = create_dataset("", root=str(out), split=split)
        assert len(timm_ds) == len(tv) and timm_ds.reader.class_to_idx == tv.class_to_idx
        assert sorted(timm_ds[i][1] for i in range(len(timm_ds))) == sorted(fold[split]["label"])
    hf = datasets.load_dataset("imagefolder", data_dir=str(out), cache_dir=str(tmp_path / "hf-cache"))
    assert set(hf) == {"train", "validation", "test"}
    assert hf["test"].features["label"].names == class_dirs(classes) and hf["test"].num_rows == fold["test"].num_rows
    assert sorted(hf["test"]["label"]) == sorted(fold["test"]["label"])


def test_imagefolder_reencodes_other_formats_as_png(tmp_path):
    rows = T.subject_rows("caldr_menders", 10, 6, (0, 1, 2, 4, 5, 6), seed=2)
    pixels = {}
    for r in rows[::3]:  # every third image stored as BMP
        px = T.noise("bmp" + r["sample_id"], channels=3)
        buf = io.BytesIO()
        Image.fromarray(px).save(buf, format="BMP")
        r["rgb"] = image(buf.getvalue(), "x.bmp")
        pixels[r["sample_id"]] = px
    data = T.write(tmp_path, "caldr_menders", rows)
    path = materialise("caldr_menders6", [data]).write(tmp_path / "m.parquet")
    out = fb.export_fold(path, tmp_path / "folders", 0, format="imagefolder")
    seen = 0
    for row in _listing(out):
        file = out / row["file"]
        assert file.suffix == ".png"
        if row["sample_id"] in pixels:
            assert np.array_equal(np.asarray(Image.open(file)), pixels[row["sample_id"]])
            seen += 1
    assert seen == len(pixels)


def test_imagefolder_class_dirs_sort_in_protocol_order():
    names = [f"c{i}" for i in range(12)][::-1]
    dirs = class_dirs(names)
    assert sorted(dirs) == dirs and dirs[0] == "00_c11" and dirs[11] == "11_c0"
    assert class_dirs(["a/b c"]) == ["00_a_b_c"]


# -- atomic writes, the command line ------------------------------------------------------------------
def test_export_is_atomic_and_refuses_to_overwrite(caldr, tmp_path):
    data, path = caldr
    out = tmp_path / "fold"
    fb.export_fold(path, out, 0)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    with pytest.raises(FerbenchError, match="exists"):
        fb.export_fold(path, out, 1)
    assert json.loads((out / FOLD_FILE).read_text())["fold"] == 0
    fb.export_fold(path, out, 1, overwrite=True, format="imagefolder")
    assert json.loads((out / FOLD_FILE).read_text())["fold"] == 1 and not (out / "data").exists()
    # a failure half-way leaves the previous export and no temporary directory
    rows = T.subject_rows("caldr_menders", 15, 14, (0, 1, 2, 4, 5, 6), seed=4)
    rows[-1]["rgb"] = None
    broken = T.write(tmp_path / "broken", "caldr_menders", rows)
    bpath = materialise("caldr_menders6", [broken]).write(tmp_path / "broken.parquet")
    for f in range(5):
        try:
            fb.export_fold(bpath, out, f, overwrite=True, format="imagefolder")
        except FerbenchError as exc:
            assert "no RGB image" in str(exc)
            break
    else:
        pytest.fail("the sample without an image was in no fold")
    assert json.loads((out / FOLD_FILE).read_text())["fold"] == 1
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    assert before  # the first export was complete


def test_cli_export_fold(toy, tmp_path, capsys):
    _, path = toy
    out = tmp_path / "cli"
    assert main(["export-fold", str(path), "--fold", "2", "--repeat", "0", "--out", str(out), "--format", "imagefolder"]) == 0
    assert "toy-kfold repeat 0 fold 2" in capsys.readouterr().out
    assert (out / "train" / "00_neutral").is_dir() and json.loads((out / FOLD_FILE).read_text())["format"] == "imagefolder"
    assert main(["export-fold", str(path), "--fold", "2", "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["export-fold", str(path), "--fold", "9", "--out", str(tmp_path / "x")]) == 2
    assert "fold 9 does not exist" in capsys.readouterr().err
    assert main(["export-fold", str(path), "--fold", "0", "--out", str(tmp_path / "hf")]) == 0
    assert sorted(p.name for p in (tmp_path / "hf" / "data").iterdir())[0] == "test-00000-of-00001.parquet"
