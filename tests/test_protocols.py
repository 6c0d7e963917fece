"""Protocols: the CK+ folds against the published list, official splits, class variants, cross-dataset,
the manifest file and the CLI."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest

from ferbench.build import convert

from ferbench.converted import read_card
from ferbench.cli import main
from ferbench.errors import FerbenchError
from ferbench.protocols import list_protocols, materialise, read_manifest
from ferbench.protocols.manifest import content_hash
from ferbench.datasets.ckplus import fixture as CK
from tests.fixtures import tables as T

FOLD_FILE = Path(__file__).parent / "fixtures/data/ckplus/CK+_10-fold_sample_IDascendorder_step10.txt"
PUBLISHED_FOLD_SIZES = [33, 39, 40, 35, 30, 37, 29, 29, 33, 22]
SEVEN = (0, 1, 2, 3, 4, 5, 6)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FERBENCH_CACHE", str(tmp_path / "cache"))


# -- CK+ --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ckplus(tmp_path_factory):
    root = tmp_path_factory.mktemp("ck")
    CK.write_from_fold_list(root / "raw", FOLD_FILE)
    return convert("ckplus", root / "raw", root / "ckplus", workers=1, progress=False).out_dir


@pytest.fixture(scope="module")
def ck48(tmp_path_factory):
    root = tmp_path_factory.mktemp("ck48")
    CK.write_ck48_from_fold_list(root / "raw", FOLD_FILE)
    return convert("ckplus", root / "raw", root / "ckplus", workers=1, progress=False).out_dir


def _published_folds() -> dict[int, set[str]]:
    folds: dict[int, set[str]] = defaultdict(set)
    for e in CK.read_fold_file(FOLD_FILE):
        folds[e.fold - 1].add(e.sequence_id)  # the published folds are 1-based
    return folds


def _test_sequences(manifest) -> dict[int, set[str]]:
    t = manifest.table
    out: dict[int, set[str]] = defaultdict(set)
    for sid, fold, role in zip(t["sample_id"].to_pylist(), t["fold"].to_pylist(), t["role"].to_pylist()):
        if role == "test":
            out[fold].add("/".join(sid.split("/")[1:3]))
    return out


def test_ckplus_reproduces_the_published_10_folds(ckplus):
    m = materialise("ckplus", [ckplus])
    published = _published_folds()
    assert [len(published[f]) for f in range(10)] == PUBLISHED_FOLD_SIZES
    got = _test_sequences(m)
    assert all(got[f] == published[f] for f in range(10))
    assert m.meta["counts"]["samples"] == 1308 and m.meta["counts"]["subjects"] == 118
    assert m.meta["classes"] == ["neutral", "happiness", "sadness", "surprise", "fear", "disgust", "anger", "contempt"]
    per_class = Counter(m.table.filter(pc.equal(m.table["fold"], 0))["label_canonical"].to_pylist())
    assert per_class[0] == 327 and sum(per_class.values()) == 1308
    # per sequence: frame 1 is neutral, the last three frames carry the sequence label
    t = m.table.filter(pc.equal(m.table["fold"], 0))
    frames = defaultdict(dict)
    for sid, label in zip(t["sample_id"].to_pylist(), t["label_canonical"].to_pylist()):
        _, subj, seq, frame = sid.split("/")
        frames[f"{subj}/{seq}"][int(frame)] = label
    for seq, labels in frames.items():
        first, *last = sorted(labels)
        assert labels[first] == 0 and first == 1 and len(last) == 3
        assert len({labels[f] for f in last}) == 1 and labels[last[0]] != 0


@pytest.mark.parametrize("name,images,classes", [("ckplus7", 981, 7), ("ckplus7n", 1236, 7), ("ckplus6", 927, 6)])
def test_ckplus_variants_share_the_folds(ckplus, name, images, classes):
    m = materialise(name, [ckplus])
    assert m.meta["counts"]["samples"] == images and len(m.meta["classes"]) == classes
    published = _published_folds()
    for f, seqs in _test_sequences(m).items():
        assert seqs <= published[f]
    if "contempt" not in m.meta["classes"]:
        assert 7 not in set(m.table["label_canonical"].to_pylist())


def test_ck48_crop_set(ck48):
    m = materialise("ckplus7", [ck48])
    assert m.meta["counts"]["samples"] == 981
    assert all(_test_sequences(m)[f] == _published_folds()[f] for f in range(10))
    with pytest.raises(FerbenchError, match="neutral"):
        materialise("ckplus", [ck48])


# -- official splits --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fer2013(tmp_path_factory):
    rows = T.split_rows("fer2013", {"Training": 40, "PublicTest": 5, "PrivateTest": 6}, SEVEN)
    return T.write(tmp_path_factory.mktemp("fer"), "fer2013", rows)


def _roles(m) -> Counter:
    return Counter(zip(m.table["role"].to_pylist(), (s.split("/")[1] for s in m.table["sample_id"].to_pylist())))


def test_fer2013_official(fer2013):
    m = materialise("fer2013", [fer2013])
    assert _roles(m) == Counter({("train", "Training"): 280, ("val", "PublicTest"): 35, ("test", "PrivateTest"): 42})
    assert m.meta["n_folds"] == 1 and m.meta["classes"][0] == "neutral" and len(m.meta["classes"]) == 7
    assert m.table["subject_id"].null_count == m.table.num_rows  # FER2013 has no subjects


def test_fer2013_holdout_is_stratified(fer2013):
    m = materialise("fer2013-holdout", [fer2013], seed=2)
    counts = Counter(zip(m.table["role"].to_pylist(), m.table["label"].to_pylist()))
    for c in range(7):  # 51 rows per class: 64/16/20
        assert abs(counts[("test", c)] - 51 * 0.2) <= 1 and abs(counts[("val", c)] - 51 * 0.16) <= 1
        assert counts[("train", c)] + counts[("val", c)] + counts[("test", c)] == 51
    assert materialise("fer2013-holdout", [fer2013], seed=3).meta["content_hash"] != m.meta["content_hash"]


def test_fer2013_holdout_of_the_training_rows_as_report_001(fer2013):
    """``source_split=Training, split=two-stage``: only Training rows (280 here), test = ceil(20 %) = 56,
    then val = ceil(20 % of the rest) = 45, train the 179 others."""
    m = materialise("fer2013-holdout", [fer2013], seed=2, source_split="Training", split="two-stage")
    assert {s.split("/")[1] for s in m.table["sample_id"].to_pylist()} == {"Training"}
    assert Counter(m.table["role"].to_pylist()) == {"test": 56, "val": 45, "train": 179}
    with pytest.raises(FerbenchError, match="source_split='Train' is not 'all' or one of"):
        materialise("fer2013-holdout", [fer2013], source_split="Train")


def test_two_stage_holdout_allocates_like_scikit_learn():
    """On FER2013's published Training class counts: report 001's 18,373 / 4,594 / 5,742, and per class
    exactly what two stratified ``train_test_split`` calls give."""
    from sklearn.model_selection import train_test_split

    from ferbench.protocols.base import stream
    from ferbench.protocols.kfold import two_stage_holdout

    y = np.concatenate([np.full(c, i) for i, c in enumerate([3995, 436, 4097, 7215, 4830, 3171, 4965])])
    rest, test = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=0)
    train, val = train_test_split(rest, test_size=0.2, stratify=y[rest], random_state=0)
    roles = two_stage_holdout(y, 0.2, 0.2, stream(0, "t"))
    per_class = {role: np.bincount(y[roles == code], minlength=7).tolist() for role, code in (("train", 1), ("val", 2), ("test", 0))}
    assert {k: sum(v) for k, v in per_class.items()} == {"train": 18373, "val": 4594, "test": 5742}
    assert per_class == {name: np.bincount(y[idx], minlength=7).tolist() for name, idx in (("train", train), ("val", val), ("test", test))}


def test_ferplus_majority_labels(tmp_path):
    rows = T.split_rows("ferplus", {"Training": 6, "PublicTest": 2, "PrivateTest": 2}, tuple(range(8)), null_labels=4)
    m = materialise("ferplus", [T.write(tmp_path, "ferplus", rows)])
    assert len(m.meta["classes"]) == 8 and m.meta["counts"]["samples"] == 80  # rows without a majority are left out


@pytest.fixture(scope="module")
def affectnet(tmp_path_factory):
    rows = T.split_rows("affectnet", {"train": 20, "val": 5}, tuple(range(8)), null_labels=7)
    return T.write(tmp_path_factory.mktemp("aff"), "affectnet", rows)


def test_affectnet8_and_7(affectnet):
    m8 = materialise("affectnet8", [affectnet], val_per_class=4)
    roles = Counter(zip(m8.table["role"].to_pylist(), m8.table["label_canonical"].to_pylist()))
    for c in range(8):
        assert roles[("test", c)] == 5 and roles[("val", c)] == 4 and roles[("train", c)] == 16
    assert {s.split("/")[1] for s, r in zip(m8.table["sample_id"].to_pylist(), m8.table["role"].to_pylist()) if r == "test"} == {"val"}
    m7 = materialise("affectnet7", [affectnet], val_per_class=4)
    assert "contempt" not in m7.meta["classes"] and m7.meta["counts"]["samples"] == 7 * 25
    with pytest.raises(FerbenchError, match="unknown parameter"):
        materialise("affectnet8", [affectnet], val_per_klass=4)
    with pytest.raises(FerbenchError, match="no train"):  # the default 500 per class takes all 20 training rows
        materialise("affectnet8", [affectnet])


def test_rafdb_val_carved_from_train(tmp_path):
    rows = T.split_rows("rafdb", {"train": 30, "test": 8}, SEVEN)
    m = materialise("rafdb", [T.write(tmp_path, "rafdb", rows)], val_fraction=0.2)
    roles = Counter(zip(m.table["role"].to_pylist(), m.table["label"].to_pylist()))
    assert all(roles[("val", c)] == 6 and roles[("train", c)] == 24 and roles[("test", c)] == 8 for c in range(7))


# -- Bosphorus ------------------------------------------------------------------------------------------
def _bosphorus_rows():
    rows = []
    emotions = {"HAPPY": 1, "SADNESS": 2, "SURPRISE": 3, "FEAR": 4, "DISGUST": 5, "ANGER": 6}
    for s in range(24):
        sid = f"bs{s:03d}"
        have = list(emotions.items()) if s < 20 else list(emotions.items())[:5]  # 4 subjects lack one emotion
        scans = [("E", code, lab, rep) for code, lab in have for rep in ((0, 1) if s % 5 == 0 else (0,))]
        scans += [("N", "N", 0, 0), ("N", "N", 0, 1), ("LFAU", "12", None, 0), ("YR", "R45", None, 0)]
        for cls, code, lab, rep in scans:
            rows.append(T.row("bosphorus", f"{sid}/{sid}_{cls}_{code}_{rep}", lab, subject=sid, scan_class=cls, scan_code=code, repetition=rep))
    return rows


def test_bosphorus_protocols(tmp_path):
    data = T.write(tmp_path, "bosphorus", _bosphorus_rows())
    m = materialise("bosphorus", [data])
    assert m.meta["counts"]["samples"] == 20 * 6 and m.meta["counts"]["subjects"] == 20
    assert all(s.endswith("_0") for s in m.table["sample_id"].to_pylist())  # lowest repetition only
    assert all("_E_" in s for s in m.table["sample_id"].to_pylist())
    m7 = materialise("bosphorus7", [data])
    assert m7.meta["counts"]["samples"] == 20 * 7 and m7.meta["classes"][0] == "neutral"
    drawn = materialise("bosphorus", [data], subjects=12, seed=1)
    assert drawn.meta["counts"]["subjects"] == 12
    with pytest.raises(FerbenchError, match="eligible"):
        materialise("bosphorus", [data], subjects=21)


# -- cross-dataset -------------------------------------------------------------------------------------
def test_cross_uses_the_shared_classes(fer2013, affectnet):
    m = materialise("cross", [fer2013, affectnet], train="fer2013", test="affectnet", test_splits="val")
    assert m.meta["classes"] == ["neutral", "happiness", "sadness", "surprise", "fear", "disgust", "anger"]
    datasets = Counter(zip(m.table["role"].to_pylist(), m.table["dataset"].to_pylist()))
    assert datasets[("test", "affectnet")] == 35 and datasets[("test", "fer2013")] == 0
    assert datasets[("val", "fer2013")] + datasets[("train", "fer2013")] == 357 and datasets[("val", "fer2013")] > 0
    with pytest.raises(FerbenchError, match="not named"):
        materialise("cross", [fer2013, affectnet], train="fer2013", test="rafdb")


# -- the manifest and the CLI ----------------------------------------------------------------------------
def test_manifest_file_round_trip(fer2013, tmp_path):
    m = materialise("fer2013", [fer2013], seed=7)
    path = m.write(tmp_path / "m.parquet")
    back = read_manifest(path)
    assert back.table.equals(m.table) and back.meta == m.meta
    meta = back.meta
    assert {k: meta[k] for k in ("protocol", "version", "seed", "n_folds", "n_repeats")} == {
        "protocol": "fer2013",
        "version": "1",
        "seed": 7,
        "n_folds": 1,
        "n_repeats": 1,
    }
    assert meta["datasets"] == [{"name": "fer2013", "fingerprint": read_card(fer2013).fingerprint, "path": str(fer2013)}]
    assert meta["content_hash"] == content_hash(back.table) and meta["leakage"]["verdict"] == "clean"
    keys = list(zip(*(back.table[c].to_pylist() for c in ("repeat", "fold", "role", "sample_id"))))
    assert keys == sorted(keys)
    parts = back.select(0, 0)
    assert set(parts) == {"train", "val", "test"} and sum(p.num_rows for p in parts.values()) == back.table.num_rows
    assert back.table.schema.field("label").type == "int8" and back.table.schema.field("fold").type == "int16"


def test_input_dataset_checks(fer2013, affectnet, tmp_path):
    with pytest.raises(FerbenchError, match="reads"):
        materialise("fer2013", [fer2013, affectnet])
    with pytest.raises(FerbenchError, match="unknown protocol"):
        materialise("fer2014", [fer2013])
    bad = T.write(tmp_path, "fer2013", T.split_rows("fer2013", {"train": 3, "test": 3}, SEVEN))
    with pytest.raises(FerbenchError, match="no test"):
        materialise("fer2013", [bad])


def test_cli_split_protocols_verify(fer2013, tmp_path, capsys):
    assert set(list_protocols()) >= {
        "fer2013", "fer2013-holdout", "ferplus", "affectnet8", "affectnet7", "rafdb", "ckplus", "ckplus7",
        "ckplus7n", "ckplus6", "bu3dfe-p1", "bu3dfe7", "bu3dfe6", "bosphorus", "bosphorus7", "caldr_menders7",
        "caldr_menders6", "global", "avfer", "cross",
    }  # fmt: skip
    assert main(["protocols"]) == 0
    assert "bu3dfe-p1" in capsys.readouterr().out
    out = tmp_path / "m.parquet"
    assert main(["split", "fer2013-holdout", "--data", str(fer2013), "--out", str(out), "--seed", "4", "-p", "test=0.3", "-p", "val=0.1", "-p", "train=0.6"]) == 0
    m = read_manifest(out)
    assert m.meta["seed"] == 4 and m.meta["params"] == {"train": 0.6, "val": 0.1, "test": 0.3, "source_split": "all",
                                                        "split": "one-pass"}
    assert abs(np.mean(np.array(m.table["role"].to_pylist()) == "test") - 0.3) < 0.02
    assert main(["verify", str(out)]) == 0
    assert "clean" in capsys.readouterr().out
