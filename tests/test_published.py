"""As-published protocols: stated leakage, sklearn-equal sample folds, fold lists, FER2013 duplicates,
near-duplicate confirmation on tiny crops."""

from __future__ import annotations

import zlib
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pytest
from PIL import Image

from ferbench.build import convert
from ferbench.cli import main
from ferbench.datasets.ckplus import fixture as CK
from ferbench.protocols import LeakageError, load_manifest, materialise, materialise_folds, read_folds_file, read_manifest
from ferbench.protocols.hashes import phash
from ferbench.protocols.kfold import sample_holdout, sample_kfold
from tests.fixtures import tables as T

SEVEN = (0, 1, 2, 3, 4, 5, 6)
FOLD_FILE = Path(__file__).parent / "fixtures/data/ckplus/CK+_10-fold_sample_IDascendorder_step10.txt"


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FERBENCH_CACHE", str(tmp_path / "cache"))


def _folds(m, repeat: int = 0) -> dict[str, int]:
    t = m.table.filter(pc.and_(pc.equal(m.table["repeat"], repeat), pc.equal(m.table["role"], "test")))
    return dict(zip(t["sample_id"].to_pylist(), t["fold"].to_pylist()))


# -- the splitters equal scikit-learn's ------------------------------------------------------------------
def test_sample_kfold_and_holdout_equal_sklearn():
    sk = pytest.importorskip("sklearn.model_selection")
    for n, k, seed in ((23, 5, 42), (720, 10, 3), (7, 5, 0)):
        want = np.empty(n, int)
        for f, (_, test) in enumerate(sk.KFold(k, shuffle=True, random_state=seed).split(np.zeros(n))):
            want[test] = f
        assert (sample_kfold(n, k, seed) == want).all()
    _, test = sk.train_test_split(np.arange(101), test_size=0.2, shuffle=True, random_state=42)
    assert set(np.flatnonzero(sample_holdout(101, 0.2, 42) == 0)) == set(test)


# -- published protocols build only with their leak stated -----------------------------------------------
@pytest.fixture()
def caldr(tmp_path):
    return T.write(tmp_path, "caldr_menders", T.subject_rows("caldr_menders", 10, 8, SEVEN))


def test_caldr_menders7_published_states_its_leak(caldr, tmp_path):
    honest = materialise("caldr_menders7", [caldr])
    assert honest.meta["published"] is False and honest.meta["leakage"]["verdict"] == "clean"
    m = materialise("caldr_menders7-published", [caldr], seed=42)  # no allow_leakage needed
    leak = m.meta["leakage"]
    assert leak["verdict"] == "leaky-published" and leak["subject_overlap"] > 0 and "KFold" in leak["stated"]
    assert m.meta["published"] is True and "subject" in m.meta["leakage_stated"] and "LEAKY" in m.meta["description"]
    assert set(m.table["role"].to_pylist()) == {"train", "test"}  # no val: the report selected on test
    ids = sorted(m.table["sample_id"].unique().to_pylist())
    expect = sample_kfold(len(ids), 5, 42)
    assert _folds(m) == {s: int(f) for s, f in zip(ids, expect)}
    # the sealed verdict survives loading; a tampered one is checked again and stays declared
    path = m.write(tmp_path / "m.parquet")
    assert load_manifest(path, [caldr]).meta["leakage"]["verdict"] == "leaky-published"
    t = read_manifest(path)
    t.meta["leakage"]["subject_overlap"] = 0
    t.write(tmp_path / "t.parquet")
    again = load_manifest(tmp_path / "t.parquet", [caldr], say=lambda _: None).meta["leakage"]
    assert again["verdict"] == "leaky-published" and again["subject_overlap"] > 0 and again["reverified"]


def test_bu3dfe_published_protocols(tmp_path):
    data = T.write(tmp_path, "bu3dfe", T.bu3dfe_rows(70))
    p1 = materialise("bu3dfe-p1-published", [data], seed=1)
    assert p1.meta["counts"]["samples"] == 720 and p1.meta["counts"]["subjects"] == 60 and p1.meta["n_folds"] == 10
    assert p1.meta["leakage"]["verdict"] == "leaky-published" and p1.meta["published"]
    honest = materialise("bu3dfe-p1", [data], seed=1, repeats=1)
    assert honest.meta["notes"]["subjects"] == p1.meta["notes"]["subjects"]  # the same 60 subjects, folded by sample
    b7 = materialise("bu3dfe7-published", [data], seed=42)
    assert b7.meta["counts"]["samples"] == 70 * 25 and b7.meta["n_folds"] == 5 and b7.meta["leakage"]["verdict"] == "leaky-published"


def test_global_published_and_8020(tmp_path):
    data = T.write(tmp_path, "global", T.subject_rows("global", 12, 10, SEVEN))
    m = materialise("global-published", [data], seed=42)
    assert m.meta["leakage"]["verdict"] == "leaky-published" and m.meta["n_folds"] == 5
    h = materialise("global-published-8020", [data], seed=42)
    roles = h.table["role"].to_pylist()
    assert h.meta["n_folds"] == 1 and roles.count("test") == 24 and roles.count("train") == 96
    assert h.meta["leakage"]["verdict"] == "leaky-published" and "80/20" in h.meta["leakage_stated"]


def test_random_kfold_factory(caldr, tmp_path):
    m = materialise("caldr_menders7-random-kfold", [caldr], seed=3)  # made on demand from caldr_menders7
    assert m.meta["published"] and m.meta["leakage"]["verdict"] == "leaky-published" and m.meta["n_folds"] == 5
    fer = T.write(tmp_path, "fer2013", T.split_rows("fer2013", {"Training": 3, "PrivateTest": 2}, SEVEN))
    clean = materialise("fer2013-random-kfold", [fer])  # no subjects, no duplicates: nothing leaks
    assert clean.meta["leakage"]["verdict"] == "clean" and clean.meta["counts"]["samples"] == 35


# -- fold lists -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ckplus(tmp_path_factory):
    root = tmp_path_factory.mktemp("ck")
    CK.write_from_fold_list(root / "raw", FOLD_FILE)
    return convert("ckplus", root / "raw", root / "ckplus", workers=1, progress=False).out_dir


def test_emotion_fan_fold_list_through_the_cli(ckplus, tmp_path):
    assignments, sha = read_folds_file(FOLD_FILE)
    assert len(assignments) == 327 and set(assignments.values()) == set(range(10)) and assignments["S130/007"] == 0
    out = tmp_path / "ck.parquet"
    assert main(["split", "ckplus", "--folds", str(FOLD_FILE), "--data", str(ckplus), "--out", str(out)]) == 0
    m = load_manifest(out, [ckplus])  # rows and derived labels checked against the dataset
    assert m.meta["protocol"] == "ckplus-folds" and m.meta["params"]["folds_sha256"] == sha
    assert m.meta["leakage"]["verdict"] == "clean" and m.meta["counts"]["samples"] == 1308
    got: dict[int, set[str]] = defaultdict(set)
    for sid, fold in _folds(m).items():
        got[fold].add("/".join(sid.split("/")[1:3]))
    want: dict[int, set[str]] = defaultdict(set)
    for key, fold in assignments.items():
        want[fold].add(key)
    assert got == want
    honest = materialise("ckplus", [ckplus])
    assert _folds(honest) == _folds(m)  # ferbench's own ckplus folds are this list
    rk = materialise("ckplus-random-kfold", [ckplus], seed=0)
    assert rk.meta["leakage"]["verdict"] == "leaky-published" and rk.meta["n_folds"] == 10


def test_leaky_fold_list_needs_a_statement(caldr, tmp_path):
    ids = sorted(r["sample_id"] for r in T.subject_rows("caldr_menders", 10, 8, SEVEN))
    lst = tmp_path / "folds.tsv"
    lst.write_text("sample_id\tfold\n" + "".join(f"{s}\t{i % 4 + 1}\n" for i, s in enumerate(ids)))
    with pytest.raises(LeakageError):
        materialise_folds("caldr_menders7", [caldr], lst)
    m = materialise_folds("caldr_menders7", [caldr], lst, leakage_stated="image-level folds of repo X")
    assert m.meta["leakage"]["verdict"] == "leaky-published" and m.meta["leakage_stated"] == "image-level folds of repo X"
    assert m.meta["n_folds"] == 4 and _folds(m)[ids[0]] == 0
    out = tmp_path / "m.parquet"
    assert main(["split", "caldr_menders7", "--folds", str(lst), "--data", str(caldr), "--out", str(out),
                 "--leakage-stated", "image-level"]) == 0
    assert load_manifest(out, [caldr]).meta["leakage"]["verdict"] == "leaky-published"


# -- FER2013 duplicates -----------------------------------------------------------------------------------
def _fer_with_duplicates(tmp_path):
    rows = T.split_rows("fer2013", {"Training": 4, "PublicTest": 2, "PrivateTest": 2}, SEVEN)
    train_a, train_b = "fer2013/Training/0-00000", "fer2013/Training/1-00001"
    plant = {"fer2013/PrivateTest/3-00001": train_a, "fer2013/PrivateTest/4-00000": train_b, "fer2013/PublicTest/5-00000": train_a}
    rows = [T.with_image(r, T.png(T.noise(plant[r["sample_id"]]))) if r["sample_id"] in plant else r for r in rows]
    return T.write(tmp_path, "fer2013", rows), plant


def test_fer2013_counts_and_lists_its_duplicates(tmp_path):
    data, plant = _fer_with_duplicates(tmp_path)
    m = materialise("fer2013", [data])  # not refused: the official split declares them
    leak = m.meta["leakage"]
    assert leak["verdict"] == "exact-duplicates-declared" and leak["exact_duplicates"] == 2 and leak["subject_overlap"] == 0
    tests = sorted(s for s in plant if "PrivateTest" in s)  # test images equal to a train/val image (val's twin is no test leak)
    assert sorted(leak["exact_duplicate_samples"]) == tests
    path = m.write(tmp_path / "m.parquet")
    assert load_manifest(path, [data]).meta["leakage"]["verdict"] == "exact-duplicates-declared"
    d = materialise("fer2013-dedup", [data])
    assert d.meta["leakage"]["verdict"] == "clean" and d.meta["leakage"]["exact_duplicates"] == 0
    assert sorted(d.meta["notes"]["removed_ids"]) == sorted(plant) and d.meta["counts"]["samples"] == 8 * 7 - 3
    with pytest.raises(LeakageError):  # a protocol without the declaration still refuses them
        _refuses_without_declaration(data)


def _refuses_without_declaration(data):
    from ferbench.protocols import published

    published.folds_protocol("fer2013")
    assignments = {"Training/0-00000": 0, "PrivateTest/3-00001": 1, "Training/1-00001": 1, "PrivateTest/4-00000": 0}
    materialise("fer2013-folds", [data], assignments=assignments, folds_sha256="x")


# -- near-duplicates on tiny crops ------------------------------------------------------------------------
def face(person: str, size: int = 48) -> np.ndarray:
    """A 48×48 aligned gray 'face': the same head, eyes and mouth, a person-specific skin texture."""
    rng = np.random.default_rng(zlib.crc32(person.encode()))
    y, x = np.mgrid[0:size, 0:size] / size
    base = 200 * np.exp(-(((x - 0.5) / 0.32) ** 2 + ((y - 0.5) / 0.42) ** 2))
    for ex in (0.35, 0.65):
        base -= 90 * np.exp(-(((x - ex) / 0.06) ** 2 + ((y - 0.4) / 0.04) ** 2))
    base -= 70 * np.exp(-(((x - 0.5) / 0.14) ** 2 + ((y - 0.72) / 0.03) ** 2))
    tex = np.asarray(Image.fromarray(rng.normal(0, 1, (24, 24)).astype(np.float32), mode="F").resize((size, size), Image.Resampling.BICUBIC))
    return np.clip(base + 40 * tex + 30, 0, 255).astype(np.uint8)


def test_near_duplicates_are_confirmed_by_pixels(tmp_path):
    rows = T.split_rows("fer2013", {"Training": 2, "PrivateTest": 1}, SEVEN)
    a, b, c = "fer2013/Training/0-00000", "fer2013/PrivateTest/1-00000", "fer2013/PrivateTest/2-00000"
    other, altered = face("person-b"), np.clip(face("person-a").astype(int) + 9 + np.random.default_rng(0).integers(-4, 5, (48, 48)), 0, 255).astype(np.uint8)
    images = {a: T.png(face("person-a")), b: T.png(other), c: T.jpeg(altered, 90)}
    rows = [T.with_image(r, images[r["sample_id"]]) if r["sample_id"] in images else r for r in rows]
    data = T.write(tmp_path, "fer2013", rows)
    threshold = bin(phash(face("person-a")) ^ phash(other)).count("1")  # wide enough that the hash alone pairs a and b
    leak = materialise("fer2013", [data], near_threshold=threshold).meta["leakage"]
    pairs = {frozenset((d["a"], d["b"])) for d in leak["details"] if d["kind"] == "near"}
    assert frozenset((a, c)) in pairs  # the slightly altered copy is still flagged
    assert frozenset((a, b)) not in pairs and leak["near_rejected"] >= 1  # two different people are not
    assert leak["verdict"] == "clean"
