"""ferbench's subject-grouped stratified k-fold as a scikit-learn cross-validator.

``SubjectStratifiedKFold`` runs ``ferbench.protocols.kfold.assign_folds``, the splitter behind every
k-fold protocol: no group (subject) is ever on both sides of a split, every group is in exactly
one test fold, and class ratios per fold stay as close to the overall ones as the groups allow
(exact stratified k-fold for samples without a group). It works wherever scikit-learn takes a
``cv``: ``cross_val_score(est, X, y, groups=subjects, cv=SubjectStratifiedKFold(5))``,
``GridSearchCV(..., cv=...)``, ``check_cv``; with metadata routing enabled it requests ``groups``.

Groups may be any hashable labels; ``None`` / NaN marks a sample without a group (it is placed
alone). ``groups=None`` means no sample has one (plain stratified k-fold).

Randomness: the assignment breaks ties with a seeded generator. ``shuffle=False`` uses a fixed
seed (the folds then depend only on the data and its order); with ``shuffle=True`` an int
``random_state`` gives the same folds on every call, a ``RandomState`` instance or ``None`` new
ones, as scikit-learn's own splitters do. The folds are those of ferbench's algorithm, not the
ones of a particular manifest (a protocol also seeds by its name; use ``ferbench.load_fold`` for
the benchmark's folds).

scikit-learn is not a ferbench dependency: install it (``pip install scikit-learn``) to use this.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

try:
    from sklearn.model_selection import BaseCrossValidator
    from sklearn.utils import check_random_state
    from sklearn.utils.multiclass import type_of_target
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("ferbench.protocols.sklearn needs scikit-learn: pip install scikit-learn") from exc

from ..errors import FerbenchError
from .kfold import assign_folds

__all__ = ["SubjectStratifiedKFold"]

#: The seed used when ``shuffle=False``.
FIXED_SEED = 0


class SubjectStratifiedKFold(BaseCrossValidator):
    """Stratified k-fold with non-overlapping groups (subjects), ferbench's algorithm.

    Parameters
    ----------
    n_splits : int, default 5
        Number of folds, at least 2 (and at most the number of groups plus group-less samples).
    shuffle : bool, default True
        Seed the tie-breaking from ``random_state``; ``False`` uses a fixed seed.
    random_state : int, RandomState instance or None, default None
        Only with ``shuffle=True`` (as in scikit-learn, setting it otherwise is an error).
    """

    #: Request ``groups`` under scikit-learn's metadata routing (what ``GroupsConsumerMixin`` does).
    __metadata_request__split = {"groups": True}

    def __init__(self, n_splits: int = 5, *, shuffle: bool = True, random_state: Any = None):
        if isinstance(n_splits, bool) or not isinstance(n_splits, (int, np.integer)):
            raise ValueError(f"n_splits must be an integer, got {n_splits!r} of type {type(n_splits).__name__}")
        if n_splits < 2:
            raise ValueError(f"k-fold cross-validation needs n_splits >= 2, got {n_splits}")
        if not isinstance(shuffle, bool):
            raise TypeError(f"shuffle must be True or False, got {shuffle!r}")
        if not shuffle and random_state is not None:
            raise ValueError("random_state has no effect since shuffle is False; leave it None or set shuffle=True")
        self.n_splits = int(n_splits)
        self.shuffle = shuffle
        self.random_state = random_state

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """The number of splits (``n_splits``); the arguments are ignored."""
        return self.n_splits

    def split(self, X: Any, y: Any = None, groups: Any = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (train indices, test indices) for each of the ``n_splits`` folds, fold 0 first.

        ``y`` (binary or multiclass labels) is required; ``groups`` (one label per sample) keeps
        each group on one side of every split."""
        return super().split(X, y, groups)

    def _iter_test_indices(self, X: Any = None, y: Any = None, groups: Any = None) -> Iterator[np.ndarray]:
        folds = self.assign(y, groups)
        for f in range(self.n_splits):
            yield np.flatnonzero(folds == f)

    def assign(self, y: Any, groups: Any = None) -> np.ndarray:
        """The test fold (0 .. n_splits-1) of every sample."""
        if y is None:
            raise ValueError("SubjectStratifiedKFold stratifies: the labels y are required")
        y = np.asarray(y)
        kind = type_of_target(y, input_name="y")
        if kind not in ("binary", "multiclass"):
            raise ValueError(f"supported target types are binary and multiclass, got {kind!r}")
        y = y.ravel()
        codes = _group_codes(groups, len(y))
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max) if self.shuffle else FIXED_SEED
        _, labels = np.unique(y, return_inverse=True)
        try:
            return assign_folds(labels.ravel(), codes, self.n_splits, np.random.default_rng(seed))
        except FerbenchError as exc:
            raise ValueError(str(exc)) from None


def _group_codes(groups: Any, n: int) -> np.ndarray:
    """Integer code per sample for its group, -1 where it has none (None or NaN)."""
    if groups is None:
        return np.full(n, -1, dtype=np.int64)
    g = np.asarray(groups)
    if g.ndim != 1 or len(g) != n:
        raise ValueError(f"groups must be one label per sample: got shape {g.shape} for {n} samples")
    if g.dtype.kind in "iub" or g.dtype.kind in "USM":
        return np.unique(g, return_inverse=True)[1].astype(np.int64)
    codes = np.full(n, -1, dtype=np.int64)
    seen: dict[Any, int] = {}
    for i, v in enumerate(g.tolist()):
        if v is None or (isinstance(v, float) and v != v):
            continue
        codes[i] = seen.setdefault(v, len(seen))
    return codes
