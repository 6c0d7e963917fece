"""Merged datasets: provenance, harmonised labels and depth, build-report counts, AVFER test/val/balancing."""

from __future__ import annotations

import json
from pathlib import Path
from collections import Counter

import numpy as np
import pytest

from ferbench.converted import read_card, read_table
from ferbench.cli import main
from ferbench.errors import FerbenchError
from ferbench.imageio import decode, encode_png
from ferbench.merges import merge
from ferbench.protocols import materialise
from ferbench.schema import ferbench_metadata, image
from tests.fixtures import tables as T

RENDERED = {**T.RENDERED_DEPTH, "camera": {"margin_mm": 50.0}, "up": "+y"}


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FERBENCH_CACHE", str(tmp_path / "cache"))


# -- Global --------------------------------------------------------------------------------------------
def _bosphorus_rows() -> list[dict]:
    rows = []
    for s in range(6):
        sid = f"bs{s:03d}"
        for cls, code, label, rep in [("N", "N", 0, 0), ("N", "N", 0, 1), ("E", "HAPPY", 1, 0), ("E", "ANGER", 6, 0),
                                      ("LFAU", "12", None, 0), ("UFAU", "1", None, 0), ("LFAU", "12L", None, 0), ("YR", "R10", None, 0)]:  # fmt: skip
            key = f"{sid}/{sid}_{cls}_{code}_{rep}"
            rows.append(T.row("bosphorus", key, label, subject=sid, scan_class=cls, scan_code=code, repetition=rep, depth=image(T.depth_png(key), None)))
    return rows


def _caldr_rows() -> list[dict]:
    rows = []
    for s in range(8):
        for i in range(7):
            key = f"CalD3r/F_{s:03d}_{i}"
            depth = None if (s, i) == (0, 0) else image(T.depth_png(key, 2000, 9785), None)  # one missing depth partner
            rows.append(T.row("caldr_menders", key, i, subject=f"CalD3r-{s:03d}", source_set="CalD3r", depth=depth))
    return rows


@pytest.fixture(scope="module")
def sources3d(tmp_path_factory):
    root = tmp_path_factory.mktemp("src3d")
    return [
        T.write(root, "bu3dfe", T.bu3dfe_rows(10), depth=RENDERED),
        T.write(root, "bosphorus", _bosphorus_rows(), depth=RENDERED),
        T.write(root, "caldr_menders", _caldr_rows(), depth=T.SENSOR_DEPTH),
    ]


@pytest.fixture(scope="module")
def global_set(sources3d, tmp_path_factory):
    return merge("global", sources3d, tmp_path_factory.mktemp("g") / "global")


def _by_id(data_dir) -> dict[str, dict]:
    return {r["sample_id"]: r for r in read_table(data_dir).to_pylist()}


def test_global_provenance_and_labels(global_set, sources3d):
    rows = _by_id(global_set.out_dir)
    assert Counter(r["dataset"] for r in rows.values()) == {"bu3dfe": 250, "bosphorus": 36, "caldr_menders": 55}
    for src in sources3d:
        for sid, r in _by_id(src).items():
            if sid in rows:  # ids, subjects and the origin split are kept as they were
                assert rows[sid]["subject_id"] == r["subject_id"] and rows[sid]["subject_id"].startswith(f"{r['dataset']}:")
                assert rows[sid]["rgb"] == r["rgb"] and rows[sid]["label_raw"] == r["label_raw"]
    assert {r["label"] for r in rows.values()} <= set(range(7))
    assert rows["bosphorus/bs000/bs000_LFAU_12_0"]["label"] == 1 and rows["bosphorus/bs000/bs000_LFAU_12_0"]["label_source"] == "au-rule"
    assert rows["bosphorus/bs000/bs000_UFAU_1_0"]["label"] == 4
    assert "bosphorus/bs000/bs000_LFAU_12L_0" not in rows and "bosphorus/bs000/bs000_N_N_1" in rows  # exact codes; every neutral kept
    assert rows["caldr_menders/CalD3r/F_001_2"]["source_set"] == "CalD3r" and rows["bu3dfe/F0001/F0001_31"]["intensity"] == 1
    card = read_card(global_set.out_dir)
    assert card.name == "global" and card.num_rows == 341
    assert {s["name"]: s["fingerprint"] for s in card.sources} == {read_card(d).name: read_card(d).fingerprint for d in sources3d}


def test_global_build_report(global_set):
    rep = json.loads((global_set.out_dir / "build_report.json").read_text())
    cm = rep["sources"]["caldr_menders"]
    assert (cm["rows_in"], cm["rows_out"]) == (56, 55) and cm["excluded"] == {"missing-rgb-or-depth": 1}
    bos = rep["sources"]["bosphorus"]
    assert bos["rows_out"] == 36 and bos["excluded"] == {"no-label-in-7-classes": 12}
    assert bos["per_class"] == {"neutral": 12, "happiness": 12, "fear": 6, "anger": 6}
    assert rep["per_class"]["neutral"] == 10 + 12 + 8 - 1 and rep["rows_out"] == 341
    assert rep["reference"]["total_text"] == 12098 and rep["reference"]["explanations"]
    assert rep["difference_to_reference"] == {"caldr_menders": 55 - 8716, "bu3dfe": 250 - 2500, "bosphorus": 36 - 902}


def test_global_depth_is_harmonised(global_set, sources3d):
    merged = _by_id(global_set.out_dir)
    meta = ferbench_metadata(read_table(global_set.out_dir).schema)["depth"]
    assert meta["unit_mm"] == 0.1 and meta["up"] == "+y" and meta["from"]["caldr_menders"]["assumed_unit"] is True
    for sid, r in _by_id(sources3d[0]).items():  # rendered 0.1 mm at the same reference: bytes untouched
        assert merged[sid]["depth"]["bytes"] == r["depth"]["bytes"]
    raw = _by_id(sources3d[2])["caldr_menders/CalD3r/F_003_4"]["depth"]["bytes"]
    got = decode(merged["caldr_menders/CalD3r/F_003_4"]["depth"]["bytes"])
    mm = decode(raw).astype(float) * 0.125  # sensor units → mm with the default (UNVERIFIED) unit
    assert np.array_equal(got, np.rint((mm - mm.min() + 50) / 0.1).astype(np.uint16))
    assert got.min() == 500  # nearest point 50 mm behind the reference plane, like the rendered sets


def test_global_options(sources3d, tmp_path):
    r = merge("global", sources3d, tmp_path / "g", bosphorus_au_rule=False, sensor_unit_mm=0.5, depth_reference="source")
    rows = _by_id(r.out_dir)
    assert not any(s.get("label_source") == "au-rule" for s in rows.values()) and r.report["sources"]["bosphorus"]["rows_out"] == 24
    raw = decode(_by_id(sources3d[2])["caldr_menders/CalD3r/F_003_4"]["depth"]["bytes"])
    assert np.array_equal(decode(rows["caldr_menders/CalD3r/F_003_4"]["depth"]["bytes"]), raw * 5)  # 0.5 mm → 0.1 mm
    assert "images_saturated" not in r.report["images"]["caldr_menders"]
    mm = merge("global", sources3d, tmp_path / "g1", sensor_unit_mm=1.0, depth_reference="source")  # up to 9.8 m: beyond 16 bits
    assert mm.report["images"]["caldr_menders"]["images_saturated"] == 55
    with pytest.raises(FerbenchError, match="needs exactly"):
        merge("global", sources3d[:2], tmp_path / "g2")
    with pytest.raises(FerbenchError, match="unknown parameter"):
        merge("global", sources3d, tmp_path / "g3", au_rule=True)


def test_global_as_published_keeps_one_bosphorus_scan_per_subject_and_label(sources3d, tmp_path):
    """``bosphorus_scans=as-published``: the reference code's overwriting, one scan per (subject, label);
    of two neutral scans the later repetition survives."""
    r = merge("global", sources3d, tmp_path / "p", bosphorus_scans="as-published")
    rows = [x for x in _by_id(r.out_dir).values() if x["dataset"] == "bosphorus"]
    subjects = {x["subject_id"] for x in rows}
    assert len(subjects) == 6 and Counter((x["subject_id"], x["label"]) for x in rows) == {
        (s, label): 1 for s in subjects for label in (0, 1, 4, 6)}  # neutral, happiness (E + LFAU_12), fear, anger
    assert all(x["sample_id"].endswith("_N_N_1") for x in rows if x["label"] == 0)
    assert r.report["sources"]["bosphorus"]["excluded"]["overwritten-as-published"] == 12  # 36 labelled → 24
    with pytest.raises(FerbenchError, match="bosphorus_scans='some'"):
        merge("global", sources3d, tmp_path / "x", bosphorus_scans="some")


def test_global_protocol_on_the_merge(global_set):
    m = materialise("global", [global_set.out_dir])
    assert m.meta["leakage"]["verdict"] == "clean" and len(m.meta["classes"]) == 7
    t = m.table
    for f in range(5):
        roles: dict[str, set] = {"train": set(), "val": set(), "test": set()}
        for fold, role, subj in zip(t["fold"].to_pylist(), t["role"].to_pylist(), t["subject_id"].to_pylist()):
            if fold == f:
                roles[role].add(subj)
        assert not roles["test"] & (roles["train"] | roles["val"])


# -- AVFER ------------------------------------------------------------------------------------------------
def _ckplus_rows() -> list[dict]:
    rows = []
    for s in range(10):
        for q, n in ((1, 6), (2, 5)):
            seq, label = f"S{s:03d}/{q:03d}", (s + q) % 7 + 1
            for f in range(1, n + 1):
                rows.append(T.row("ckplus", f"{seq}/{f:08d}", label if f == n else None, subject=f"S{s:03d}",
                                  sequence_id=seq, frame_index=f, n_frames=n, sequence_label=label, is_peak=f == n))  # fmt: skip
    return rows


@pytest.fixture(scope="module")
def sources2d(tmp_path_factory):
    root = tmp_path_factory.mktemp("src2d")
    affectnet = T.split_rows("affectnet", {"train": 12, "val": 7}, tuple(range(8)), null_labels=3)
    affectnet = [T.with_image(r, T.jpeg(T.noise(r["sample_id"], 16, 3))) for r in affectnet]  # colour JPEGs
    return [
        T.write(root, "fer2013", T.split_rows("fer2013", {"Training": 5, "PublicTest": 1, "PrivateTest": 1}, (0, 1, 2, 3, 4, 5, 6))),
        T.write(root, "affectnet", affectnet),
        T.write(root, "ckplus", _ckplus_rows()),
    ]


def test_avfer_splits_labels_and_channels(sources2d, tmp_path):
    r = merge("avfer", sources2d, tmp_path / "avfer", test_per_class=5, val_per_class=3)
    rows = _by_id(r.out_dir)
    split = Counter((x["avfer_split"], x["dataset"]) for x in rows.values())
    assert split[("test", "affectnet")] == 40 and split[("val", "affectnet")] == 24
    assert {d for (s, d) in split if s in ("test", "val")} == {"affectnet"}
    assert split[("train", "affectnet")] == 8 * 12 - 24 and split[("train", "fer2013")] == 49 and split[("train", "ckplus")] == 60
    tests = [x for x in rows.values() if x["avfer_split"] == "test"]
    assert all(x["source_split"] == "val" for x in tests) and Counter(x["label"] for x in tests) == {c: 5 for c in range(8)}
    ck = [x for x in rows.values() if x["dataset"] == "ckplus"]
    assert all(int(x["sample_id"][-8:]) > x["n_frames"] - 3 and x["label"] == x["sequence_label"] for x in ck)
    assert Counter(x["label_source"] for x in ck) == {"annotation": 20, "sequence-label": 40}
    gray = decode(rows["fer2013/Training/0-00000"]["rgb"]["bytes"])
    assert gray.shape == (8, 8, 3) and (gray[:, :, 0] == gray[:, :, 2]).all()
    assert np.array_equal(gray[:, :, 0], T.noise("fer2013/Training/0-00000"))
    src = _by_id(sources2d[1])
    assert all(rows[k]["rgb"]["bytes"] == src[k]["rgb"]["bytes"] for k in rows if k.startswith("affectnet/"))  # RGB untouched
    assert r.report["sources"]["affectnet"]["excluded"] == {"no-label": 3, "affectnet-val-beyond-test-quota": 16}
    assert r.report["sources"]["ckplus"]["excluded"] == {"not-a-peak-frame": 50}
    m = materialise("avfer", [r.out_dir])
    assert m.meta["leakage"]["verdict"] == "clean" and m.meta["counts"]["fold0"]["test"] == {c: 5 for c in m.meta["classes"]}


def test_avfer_balancing_records_copies_deterministically(sources2d, tmp_path):
    a = merge("avfer", sources2d, tmp_path / "a", test_per_class=5, val_per_class=3, balance_per_class=20, seed=4,
              augmentation="mild")
    rows = _by_id(a.out_dir)
    train = [x for x in rows.values() if x["avfer_split"] == "train"]
    assert Counter(x["label"] for x in train) == {c: 20 for c in range(8)}
    copies = [x for x in train if x["augmented_from"] is not None]
    assert len(copies) == sum(s.get("augmented_copies", 0) for s in a.report["sources"].values()) > 0
    for c in copies:
        source = rows[c["augmented_from"]]
        assert c["sample_id"].startswith(c["augmented_from"] + "#aug") and c["dataset"] == source["dataset"]
        assert c["label"] == source["label"] and source["augmented_from"] is None and source["avfer_split"] == "train"
        assert set(json.loads(c["augment"])) == {"rotate", "zoom", "brightness", "flip"}
        assert decode(c["rgb"]["bytes"]).shape == decode(source["rgb"]["bytes"]).shape
    per_source = Counter(c["augmented_from"] for c in copies)
    for label in range(8):  # copies spread evenly over a class's originals
        counts = [n for sid, n in per_source.items() if rows[sid]["label"] == label]
        assert not counts or max(counts) - min(counts) <= 1
    again = dict(test_per_class=5, val_per_class=3, balance_per_class=20, augmentation="mild")
    assert merge("avfer", sources2d, tmp_path / "b", seed=4, **again).fingerprint == a.fingerprint
    assert merge("avfer", sources2d, tmp_path / "c", seed=5, **again).fingerprint != a.fingerprint
    leak = materialise("avfer", [a.out_dir]).meta["leakage"]
    assert leak["verdict"] == "clean"  # copies stay in train with their sources


def test_avfer_as_the_report_built_it(sources2d, tmp_path):
    """By default AffectNet is capped at ``affectnet_images`` (the report's ~60,000; here 50: the 40 test
    and 8 val images, then 2 training images drawn) and copies follow the report's Keras settings."""
    r = merge("avfer", sources2d, tmp_path / "r", test_per_class=5, val_per_class=1, balance_per_class=40,
              affectnet_images=50, seed=2)
    rows = _by_id(r.out_dir)
    originals = Counter(x["avfer_split"] for x in rows.values() if x["dataset"] == "affectnet" and x["augmented_from"] is None)
    assert originals == {"test": 40, "val": 8, "train": 2}
    assert r.report["sources"]["affectnet"]["excluded"]["affectnet-beyond-draw"] == 8 * 12 - 8 - 2
    copies = [json.loads(x["augment"]) for x in rows.values() if x["augmented_from"] is not None]
    assert copies and all(set(c) == {"rotate", "zoom", "shift_x", "shift_y", "brightness", "flip"} for c in copies)
    assert all(0.4 <= c["zoom"] <= 1.6 and 0.2 <= c["brightness"] <= 0.6 and abs(c["shift_x"]) <= 0.2
               and abs(c["rotate"]) <= 10 and not c["flip"] for c in copies)
    with pytest.raises(FerbenchError, match="augmentation='keras' is not one of report, mild"):
        merge("avfer", sources2d, tmp_path / "x", augmentation="keras")


def test_avfer_report_augmentation_geometry():
    """Zoom < 1 shrinks the face onto a black canvas, a shift moves it, brightness scales it."""
    from ferbench.merges.avfer import augment

    img = np.full((20, 20, 3), 200, np.uint8)
    data = encode_png(img)

    class Fixed:  # an rng whose uniform() returns the lower (or given) bound
        def __init__(self, values):
            self.values = iter(values)

        def uniform(self, lo, hi):
            return next(self.values)

    out, p = augment(data, Fixed([0.0, 0.5, 0.0, 0.0, 0.5]), "report")  # rotate, zoom, shift x, shift y, brightness
    a = decode(out)
    assert p == {"rotate": 0.0, "zoom": 0.5, "shift_x": 0.0, "shift_y": 0.0, "brightness": 0.5, "flip": False}
    assert a[0, 0].max() == 0 and abs(int(a[10, 10, 0]) - 100) <= 2  # black border, centre at half brightness
    out, _ = augment(data, Fixed([0.0, 1.0, 0.2, 0.0, 0.5]), "report")  # shifted right by 4 px
    a = decode(out)
    assert a[10, :3].max() == 0 and abs(int(a[10, 10, 0]) - 100) <= 2


def test_cli_merge(sources2d, tmp_path, capsys):
    argv = ["merge", "avfer", "--out", str(tmp_path / "m"), "-p", "test_per_class=2", "-p", "val_per_class=1"]
    for d in sources2d:
        argv += ["--data", str(d)]
    assert main(argv) == 0
    assert "affectnet" in capsys.readouterr().out
    assert read_card(tmp_path / "m").params == {"test_per_class": 2, "val_per_class": 1, "balance_per_class": 0,
                                                "affectnet_images": 60000, "augmentation": "report"}
    assert main(argv) == 2  # exists, no --overwrite


def test_merge_out_may_not_be_hold_or_sit_inside_a_source(sources3d, tmp_path, capsys):
    """``--out`` on a source (even with --overwrite: a source is ferbench's own directory) would delete
    the data the merge reads: refused in one line, every source byte-identical."""
    before = {p: p.read_bytes() for d in sources3d for p in sorted(Path(d).rglob("*")) if p.is_file()}
    source = Path(sources3d[0])
    for out in (source, source / "inner", source.parent):
        argv = ["merge", "global", "--out", str(out), "--overwrite"] + [a for d in sources3d for a in ("--data", str(d))]
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "the source dataset" in err[0] and "choose an output directory outside it" in err[0]
    after = {p: p.read_bytes() for d in sources3d for p in sorted(Path(d).rglob("*")) if p.is_file()}
    assert after == before
