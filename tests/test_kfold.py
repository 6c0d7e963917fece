"""The subject-grouped stratified k-fold splitter and the k-fold protocols built on it: invariants, not snapshots."""

from __future__ import annotations

import json
import shutil
from collections import Counter, defaultdict

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ferbench.converted import read_table
from ferbench.errors import FerbenchError
from ferbench.protocols import materialise
from ferbench.protocols.base import TEST, TRAIN, VAL, stream
from ferbench.protocols.kfold import assign_folds, fold_roles, group_codes, stratified_holdout
from tests.fixtures import tables as T

#: Largest allowed gap between a class's share of a test fold and its share overall (subject data).
RATIO_TOLERANCE = 0.02


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FERBENCH_CACHE", str(tmp_path / "cache"))


def _random_subjects(seed: int, n_subjects: int = 150) -> tuple[np.ndarray, np.ndarray]:
    """Subjects of 4-16 samples each with a skewed, subject-specific class mix (7 classes)."""
    rng = np.random.default_rng(seed)
    labels, groups = [], []
    for s in range(n_subjects):
        mix = rng.dirichlet(np.ones(7) * 0.7)
        size = int(rng.integers(4, 17))
        labels += rng.choice(7, size, p=mix).tolist()
        groups += [s] * size
    return np.array(labels), np.array(groups)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grouped_folds_disjoint_complete_and_stratified(seed):
    labels, groups = _random_subjects(seed)
    folds = assign_folds(labels, groups, 5, stream(seed, "t"))
    assert folds.min() == 0 and folds.max() == 4
    per_subject = defaultdict(set)
    for g, f in zip(groups, folds):
        per_subject[g].add(f)
    assert all(len(fs) == 1 for fs in per_subject.values())  # no subject in two folds
    overall = np.bincount(labels, minlength=7) / len(labels)
    for f in range(5):
        share = np.bincount(labels[folds == f], minlength=7) / (folds == f).sum()
        assert np.abs(share - overall).max() <= RATIO_TOLERANCE
    sizes = np.bincount(folds)
    assert sizes.max() - sizes.min() <= 0.1 * len(labels) / 5


def test_stratified_without_subjects_is_exact():
    rng = np.random.default_rng(3)
    labels = rng.choice(8, 1003, p=[0.3, 0.25, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05])
    folds = assign_folds(labels, np.full(len(labels), -1), 7, stream(0, "t"))
    counts = np.array([np.bincount(labels[folds == f], minlength=8) for f in range(7)])
    assert (counts.max(0) - counts.min(0) <= 1).all()  # per class, folds differ by at most one
    sizes = counts.sum(1)
    assert sizes.max() - sizes.min() <= 1


def test_mixed_subjects_and_independent_rows():
    labels, groups = _random_subjects(4, 40)
    labels = np.concatenate([labels, np.arange(300) % 7])
    groups = np.concatenate([groups, np.full(300, -1)])
    folds = assign_folds(labels, groups, 5, stream(0, "t"))
    assert all(len(set(folds[groups == g])) == 1 for g in range(40))
    assert (folds >= 0).all()


def test_seed_changes_assignment_and_repeats_are_deterministic():
    labels, groups = _random_subjects(0)
    a = assign_folds(labels, groups, 5, stream(0, "t"))
    assert (a == assign_folds(labels, groups, 5, stream(0, "t"))).all()
    assert (a != assign_folds(labels, groups, 5, stream(1, "t"))).any()


def test_fold_roles_test_each_sample_once():
    folds = np.array([[0, 1, 2, 3, 0, 1, 2, 3, -1]])
    roles = fold_roles(folds, 4)
    assert ((roles == TEST).sum(1) == np.array([1] * 8 + [0])).all()
    assert ((roles == VAL).sum(1) == np.array([1] * 8 + [0])).all()
    for f in range(4):
        assert set(np.flatnonzero(roles[0, f] == VAL)) == set(np.flatnonzero(folds[0] == (f + 1) % 4))
    assert ((fold_roles(folds, 4, "none") == VAL).sum() == 0)
    with pytest.raises(FerbenchError):
        fold_roles(folds, 4, "random")


def test_too_few_subjects():
    with pytest.raises(FerbenchError, match="subject-disjoint"):
        assign_folds(np.zeros(6, int), np.array([0, 0, 0, 1, 1, 1]), 5, stream(0, "t"))


def test_group_codes_follow_sorted_ids_and_nulls():
    codes = group_codes(pa.array(["b", None, "a", "b", "c"]))
    assert codes.tolist() == [1, -1, 0, 1, 2]


def test_stratified_holdout_fractions():
    labels = np.repeat(np.arange(7), [500, 60, 300, 250, 200, 120, 90])
    roles = stratified_holdout(labels, (0.64, 0.16, 0.20), stream(0, "h"))
    for c, n in zip(range(7), [500, 60, 300, 250, 200, 120, 90]):
        sel = roles[labels == c]
        assert abs((sel == TEST).sum() - 0.2 * n) <= 1
        assert abs((sel == VAL).sum() - 0.16 * n) <= 1
        assert (sel == TRAIN).sum() + (sel == VAL).sum() + (sel == TEST).sum() == n


# -- k-fold protocols on datasets ----------------------------------------------------------------
@pytest.fixture(scope="module")
def bu3dfe(tmp_path_factory):
    return T.write(tmp_path_factory.mktemp("bu"), "bu3dfe", T.bu3dfe_rows(100), depth=T.RENDERED_DEPTH)


def _per_fold_subjects(manifest, repeat=0):
    out = defaultdict(lambda: defaultdict(set))
    t = manifest.table
    for r, f, role, s in zip(t["repeat"].to_pylist(), t["fold"].to_pylist(), t["role"].to_pylist(), t["subject_id"].to_pylist()):
        if r == repeat:
            out[f][role].add(s)
    return out


def test_bu3dfe_p1_published_counts(bu3dfe):
    m = materialise("bu3dfe-p1", [bu3dfe], seed=5, repeats=3)
    t = m.table
    assert m.meta["n_repeats"] == 3 and m.meta["n_folds"] == 10
    assert m.meta["classes"] == ["happiness", "sadness", "surprise", "fear", "disgust", "anger"]
    assert m.meta["counts"]["samples"] == 720 and m.meta["counts"]["subjects"] == 60
    assert len(m.meta["notes"]["subjects"]) == 60
    tests = Counter()
    for r in range(3):
        folds = _per_fold_subjects(m, r)
        for f in range(10):
            assert len(folds[f]["test"]) == 6
            assert len(folds[f]["train"] | folds[f]["val"]) == 54
            assert not folds[f]["test"] & (folds[f]["train"] | folds[f]["val"])
    for r, role, sid in zip(t["repeat"].to_pylist(), t["role"].to_pylist(), t["sample_id"].to_pylist()):
        if role == "test":
            tests[(r, sid)] += 1
    assert len(tests) == 3 * 720 and set(tests.values()) == {1}  # every sample tested exactly once per repeat
    intensities = dict(zip(*(read_table(bu3dfe, ["sample_id", "intensity"]).column(c).to_pylist() for c in ("sample_id", "intensity"))))
    assert {intensities[s] for s in set(t["sample_id"].to_pylist())} == {3, 4}
    # same 60 subjects in every repeat, different fold assignments across repeats
    assert _per_fold_subjects(m, 0)[0]["test"] != _per_fold_subjects(m, 1)[0]["test"]
    assert set(materialise("bu3dfe-p1", [bu3dfe], seed=6, repeats=1).meta["notes"]["subjects"]) != set(m.meta["notes"]["subjects"])


def test_bu3dfe7_subject_folds_and_class_ratios(bu3dfe):
    m = materialise("bu3dfe7", [bu3dfe], seed=0)
    folds = _per_fold_subjects(m)
    assert sorted(len(folds[f]["test"]) for f in range(5)) == [20] * 5
    t = m.table
    test = t.filter(pa.compute.equal(t["role"], "test"))
    per_fold = Counter(zip(test["fold"].to_pylist(), test["label"].to_pylist()))
    assert all(per_fold[(f, 0)] == 20 and per_fold[(f, 1)] == 80 for f in range(5))
    assert m.meta["counts"]["samples"] == 2500


def _shuffled_copy(src, dst):
    """The same rows as ``src`` in a shuffled order, split over two shards listed in reverse. The
    card drops its integrity fields (shard sizes, column digests), which a re-ordered copy breaks."""
    shutil.copytree(src, dst)
    card = json.loads((dst / "ferbench.json").read_text())
    table = read_table(src)
    for shard in card["shards"]:
        (dst / shard).unlink()
    perm = np.random.default_rng(9).permutation(table.num_rows)
    table = table.take(pa.array(perm))
    half = table.num_rows // 2
    pq.write_table(table.slice(0, half), dst / "b.parquet")
    pq.write_table(table.slice(half), dst / "a.parquet")
    card.update(shards=["b.parquet", "a.parquet"], shard_bytes=[], column_hashes={})
    (dst / "ferbench.json").write_text(json.dumps(card))
    return dst


def test_identical_manifest_for_shuffled_rows(bu3dfe, tmp_path):
    shuffled = _shuffled_copy(bu3dfe, tmp_path / "bu3dfe")
    for name, params in (("bu3dfe7", {}), ("bu3dfe-p1", {"repeats": 2})):
        a = materialise(name, [bu3dfe], seed=3, **params)
        b = materialise(name, [shuffled], seed=3, **params)
        assert a.meta["content_hash"] == b.meta["content_hash"]
        assert a.table.equals(b.table)
        assert materialise(name, [bu3dfe], seed=4, **params).meta["content_hash"] != a.meta["content_hash"]


def test_caldr_menders_six_classes_drop_surprise(tmp_path):
    rows = T.subject_rows("caldr_menders", 30, 12, (0, 1, 2, 3, 4, 5, 6), seed=1)
    data = T.write(tmp_path, "caldr_menders", rows)
    seven = materialise("caldr_menders7", [data])
    six = materialise("caldr_menders6", [data])
    assert seven.meta["counts"]["samples"] == 360
    assert "surprise" not in six.meta["classes"] and len(six.meta["classes"]) == 6
    assert 3 not in set(six.table["label_canonical"].to_pylist())
    assert six.meta["counts"]["samples"] == 360 - sum(r["label"] == 3 for r in rows)
    assert sorted(set(six.table["label"].to_pylist())) == list(range(6))  # contiguous protocol labels
    for f, roles in _per_fold_subjects(seven).items():
        assert not roles["test"] & (roles["train"] | roles["val"])
