"""``SubjectStratifiedKFold`` against scikit-learn's cross-validator contract and ferbench's fold invariants."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.dummy import DummyClassifier  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import (  # noqa: E402
    BaseCrossValidator,
    GridSearchCV,
    check_cv,
    cross_val_predict,
    cross_val_score,
    cross_validate,
)

from ferbench.protocols.kfold import assign_folds  # noqa: E402
from ferbench.protocols.sklearn import FIXED_SEED, SubjectStratifiedKFold  # noqa: E402

#: Largest gap between a class's share of a test fold and its share overall (as in test_kfold).
RATIO_TOLERANCE = 0.02


def _subjects(seed: int, n_subjects: int = 150, classes: int = 7):
    """Subjects of 4-16 samples each with a skewed, subject-specific class mix; X carries the class."""
    rng = np.random.default_rng(seed)
    labels, groups = [], []
    for s in range(n_subjects):
        size = int(rng.integers(4, 17))
        labels += rng.choice(classes, size, p=rng.dirichlet(np.ones(classes) * 0.7)).tolist()
        groups += [f"subject-{s:03d}"] * size
    y = np.array(labels)
    X = rng.normal(size=(len(y), 4)) + np.eye(classes)[y][:, :4] * 2
    return X, y, np.array(groups)


def _folds(cv, X, y, groups):
    return [(train, test) for train, test in cv.split(X, y, groups)]


def test_is_a_scikit_learn_cross_validator():
    cv = SubjectStratifiedKFold(4, random_state=0)
    assert isinstance(cv, BaseCrossValidator)
    X, y, g = _subjects(0, 30)
    assert check_cv(cv, y, classifier=True) is cv
    assert cv.get_n_splits() == cv.get_n_splits(X, y, g) == 4
    assert repr(cv) == "SubjectStratifiedKFold(n_splits=4, random_state=0, shuffle=True)"
    assert len(_folds(cv, X, y, g)) == 4


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_groups_disjoint_test_folds_partition_and_stratified(seed):
    X, y, g = _subjects(seed)
    folds = _folds(SubjectStratifiedKFold(5, random_state=seed), X, y, g)
    tests = np.concatenate([test for _, test in folds])
    assert np.array_equal(np.sort(tests), np.arange(len(y)))  # the test folds partition the samples
    test_fold_of_group = defaultdict(set)
    overall = np.bincount(y, minlength=7) / len(y)
    for f, (train, test) in enumerate(folds):
        assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(len(y)))
        assert not set(g[train]) & set(g[test])  # no group on both sides
        for group in set(g[test]):
            test_fold_of_group[group].add(f)
        share = np.bincount(y[test], minlength=7) / len(test)
        assert np.abs(share - overall).max() <= RATIO_TOLERANCE
    assert set(test_fold_of_group) == set(g) and all(len(fs) == 1 for fs in test_fold_of_group.values())


def test_deterministic_for_a_fixed_random_state():
    X, y, g = _subjects(3)
    a = _folds(SubjectStratifiedKFold(5, random_state=7), X, y, g)
    b = _folds(SubjectStratifiedKFold(5, random_state=7), X, y, g)
    cv = SubjectStratifiedKFold(5, random_state=7)
    assert all(np.array_equal(t1, t2) for (_, t1), (_, t2) in zip(a, b))
    assert all(np.array_equal(t1, t2) for (_, t1), (_, t2) in zip(_folds(cv, X, y, g), _folds(cv, X, y, g)))
    c = _folds(SubjectStratifiedKFold(5, random_state=8), X, y, g)
    assert any(not np.array_equal(t1, t2) for (_, t1), (_, t2) in zip(a, c))
    fixed = [_folds(SubjectStratifiedKFold(5, shuffle=False), X, y, g) for _ in range(2)]
    assert all(np.array_equal(t1, t2) for (_, t1), (_, t2) in zip(*fixed))


def test_a_random_state_instance_draws_new_folds_per_call():
    X, y, g = _subjects(4)
    cv = SubjectStratifiedKFold(5, random_state=np.random.RandomState(0))
    first, second = _folds(cv, X, y, g), _folds(cv, X, y, g)
    assert any(not np.array_equal(t1, t2) for (_, t1), (_, t2) in zip(first, second))


def test_runs_ferbench_assign_folds():
    X, y, g = _subjects(5, 40)
    _, codes = np.unique(g, return_inverse=True)
    expected = assign_folds(y, codes, 5, np.random.default_rng(FIXED_SEED))
    for f, (_, test) in enumerate(SubjectStratifiedKFold(5, shuffle=False).split(X, y, g)):
        assert np.array_equal(test, np.flatnonzero(expected == f))


def test_cross_val_score_cross_validate_and_grid_search():
    X, y, g = _subjects(6, 60)
    cv = SubjectStratifiedKFold(5, random_state=0)
    scores = cross_val_score(LogisticRegression(max_iter=500), X, y, groups=g, cv=cv)
    assert scores.shape == (5,) and (scores > 0.3).all()  # X carries the class: better than chance (1/7)
    dummy = cross_val_score(DummyClassifier(strategy="most_frequent"), X, y, groups=g, cv=cv)
    assert scores.mean() > dummy.mean()
    result = cross_validate(LogisticRegression(max_iter=500), X, y, groups=g, cv=cv, return_indices=True)
    for test, (_, expected) in zip(result["indices"]["test"], cv.split(X, y, g)):
        assert np.array_equal(test, expected)
    assert cross_val_predict(LogisticRegression(max_iter=500), X, y, groups=g, cv=cv).shape == y.shape
    search = GridSearchCV(LogisticRegression(max_iter=500), {"C": [0.1, 1.0]}, cv=cv).fit(X, y, groups=g)
    assert search.n_splits_ == 5 and search.best_params_["C"] in (0.1, 1.0)
    assert clone(search.estimator).get_params()["max_iter"] == 500


def test_groups_are_requested_under_metadata_routing():
    X, y, g = _subjects(7, 40)
    cv = SubjectStratifiedKFold(5, random_state=0)
    with sklearn.config_context(enable_metadata_routing=True):
        result = cross_validate(LogisticRegression(max_iter=500), X, y, params={"groups": g}, cv=cv, return_indices=True)
    for (train, test) in zip(result["indices"]["train"], result["indices"]["test"]):
        assert not set(g[train]) & set(g[test])


def test_without_groups_it_is_exact_stratified_kfold():
    rng = np.random.default_rng(8)
    y = rng.choice(["neutral", "happiness", "anger"], 203, p=[0.5, 0.3, 0.2])
    X = np.zeros((len(y), 1))
    tests = [test for _, test in SubjectStratifiedKFold(5, random_state=1).split(X, y)]
    for c in np.unique(y):
        per_fold = [int((y[t] == c).sum()) for t in tests]
        assert max(per_fold) - min(per_fold) <= 1
    sizes = [len(t) for t in tests]
    assert max(sizes) - min(sizes) <= 1


def test_samples_without_a_group_are_placed_alone():
    X, y, g = _subjects(9, 40)
    g = g.astype(object)
    g[::5] = None
    g[1::7] = np.nan
    folds = _folds(SubjectStratifiedKFold(5, random_state=0), X, y, g)
    named = np.array([isinstance(v, str) for v in g])
    for train, test in folds:
        assert not set(g[train][named[train]]) & set(g[test][named[test]])
    assert np.array_equal(np.sort(np.concatenate([t for _, t in folds])), np.arange(len(y)))
    ints = _folds(SubjectStratifiedKFold(5, random_state=0), X, y, np.unique(_subjects(9, 40)[2], return_inverse=True)[1])
    assert len(ints) == 5


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: SubjectStratifiedKFold(1), "n_splits >= 2"),
        (lambda: SubjectStratifiedKFold(2.5), "integer"),
        (lambda: SubjectStratifiedKFold(5, shuffle=False, random_state=0), "shuffle is False"),
    ],
)
def test_bad_parameters_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()
    with pytest.raises(TypeError, match="shuffle"):
        SubjectStratifiedKFold(5, shuffle=1)


def test_bad_inputs_are_refused():
    X, y, g = _subjects(10, 4)
    cv = SubjectStratifiedKFold(5, random_state=0)
    with pytest.raises(ValueError, match="subject-disjoint"):
        next(cv.split(X, y, g))  # 4 groups for 5 folds
    with pytest.raises(ValueError, match="labels y are required"):
        next(cv.split(X))
    with pytest.raises(ValueError, match="binary and multiclass"):
        next(cv.split(X, np.linspace(0, 1, len(y)), g))
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):  # scikit-learn's own check
        next(cv.split(X, y, g[:-1]))
    with pytest.raises(ValueError, match="one label per sample"):
        next(cv.split(X, y, np.stack([g, g], axis=1)))
