"""Subject-grouped stratified k-fold, stratified hold-outs and the fold → role expansion.

``assign_folds`` is the default splitter wherever subjects exist: no subject is ever in two
folds, and class ratios are kept as close as the subjects allow. It works in three steps:

1. Subjects with two or more samples are placed greedily, largest first (equal sizes in a seeded
   random order): each goes to the fold that keeps the per-class fold shares most even (sum over
   classes of the standard deviation across folds of fold_count / class_total); ties go to the
   fold with the fewest samples, then the lowest index.
2. Samples without a subject (or the only sample of their subject) are independent: they are
   spread class by class in a seeded order, topping up the folds with the fewest samples of
   that class first ("water filling"), which is exact stratification when no subject exists.
3. With no subjects at all, that is plain stratified k-fold: per class, per-fold counts differ by
   at most one, and so do fold sizes.

Everything is vectorised except the loop over multi-sample subjects in step 1 (hundreds to a
few thousand in real FER sets). Inputs must already be sorted by sample_id (``load_inputs``
does it), so the result depends only on the data and the seed.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import FerbenchError
from .base import ABSENT, TEST, TRAIN, VAL, np_col

#: How the validation role is carved in k-fold protocols.
VAL_MODES = ("next-fold", "none")


def group_codes(subjects: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Integer code per row for its subject (codes follow sorted subject ids); -1 where null."""
    arr = subjects.combine_chunks() if isinstance(subjects, pa.ChunkedArray) else subjects
    enc = arr.dictionary_encode()
    order = pc.sort_indices(enc.dictionary).to_numpy()
    rank = np.empty(len(order) + 1, dtype=np.int64)
    rank[order] = np.arange(len(order))
    rank[-1] = -1
    return rank[pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False)]


def assign_folds(labels: np.ndarray, groups: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Fold index 0..k-1 per row: subject-grouped (``groups`` ≥ 0) and stratified by ``labels``."""
    n = len(labels)
    if k < 2:
        raise FerbenchError(f"k-fold needs k ≥ 2, got {k}")
    classes, y = np.unique(labels, return_inverse=True)
    units = len(np.unique(groups[groups >= 0])) + int((groups < 0).sum())
    if units < k:
        raise FerbenchError(f"cannot make {k} subject-disjoint folds from {units} subjects / independent samples")
    folds = np.full(n, -1, dtype=np.int64)
    counts = np.zeros((k, len(classes)), dtype=np.int64)
    group_size = np.bincount(groups[groups >= 0]) if (groups >= 0).any() else np.zeros(0, np.int64)
    multi = (groups >= 0) & (group_size[np.maximum(groups, 0)] >= 2) if len(group_size) else np.zeros(n, bool)
    if multi.any():
        n_groups = int(groups.max()) + 1
        gy = np.zeros((n_groups, len(classes)), dtype=np.int64)
        np.add.at(gy, (groups[multi], y[multi]), 1)
        fold_of_group = _greedy_groups(gy, np.bincount(y, minlength=len(classes)), k, rng)
        folds[multi] = fold_of_group[groups[multi]]
        np.add.at(counts, (folds[multi], y[multi]), 1)
    single = np.flatnonzero(~multi)
    if len(single):
        folds[single] = _water_fill(y[single], counts, rng)
    return folds


def _greedy_groups(gy: np.ndarray, totals: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Fold per group (class counts ``gy``), largest first, to the fold keeping class shares most even."""
    sizes = gy.sum(1)
    perm = rng.permutation(len(gy))
    order = perm[np.argsort(-sizes[perm], kind="stable")]
    order = order[sizes[order] >= 2]
    w = 1.0 / np.maximum(totals, 1)
    x = np.zeros((k, gy.shape[1]))
    fold_sizes = np.zeros(k)
    out = np.full(len(gy), -1, dtype=np.int64)
    for g in order:
        ys = gy[g] * w
        s1 = x.sum(0) + ys
        s2 = (x**2).sum(0)
        var = (s2 + (x + ys) ** 2 - x**2) / k - (s1 / k) ** 2
        cost = np.sqrt(np.maximum(var, 0)).sum(1)
        best = np.flatnonzero(cost <= cost.min() + 1e-12)
        f = best[np.argmin(fold_sizes[best])]
        out[g] = f
        x[f] += ys
        fold_sizes[f] += sizes[g]
    return out


def _water_fill(y: np.ndarray, counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Folds for independent samples of classes ``y``, evening out ``counts`` (k, C) per class."""
    k = counts.shape[0]
    out = np.empty(len(y), dtype=np.int64)
    perm = rng.permutation(len(y))
    order = perm[np.argsort(y[perm], kind="stable")]
    bounds = np.searchsorted(y[order], np.arange(counts.shape[1] + 1))
    for c in range(counts.shape[1]):
        idx = order[bounds[c] : bounds[c + 1]]
        if not len(idx):
            continue
        # per-class totals run on: fold sizes of earlier classes break ties, so sizes stay even
        add = _levels(counts[:, c], len(idx), tiebreak=counts.sum(1))
        out[idx] = np.repeat(np.arange(k), add)
        counts[:, c] += add
    return out


def _levels(x: np.ndarray, m: int, tiebreak: np.ndarray) -> np.ndarray:
    """How many of ``m`` items each bin gets so that ``x + add`` is as level as possible."""
    lo, hi = int(x.min()), int(x.max()) + m
    while lo < hi:  # largest level L with sum(max(0, L - x)) <= m
        mid = (lo + hi + 1) // 2
        if np.maximum(0, mid - x).sum() <= m:
            lo = mid
        else:
            hi = mid - 1
    add = np.maximum(0, lo - x)
    rest = m - int(add.sum())
    if rest:
        at_level = np.flatnonzero(x + add == lo)
        at_level = at_level[np.lexsort((at_level, tiebreak[at_level] + add[at_level]))]
        add[at_level[:rest]] += 1
    return add


def fold_roles(folds: np.ndarray, k: int, val: str = "next-fold") -> np.ndarray:
    """Roles (R, K, N) from folds (R, N): fold f tests, fold f+1 validates (``next-fold``), the rest trains."""
    if val not in VAL_MODES:
        raise FerbenchError(f"val={val!r}; choose one of {VAL_MODES}")
    if val == "next-fold" and k < 3:
        raise FerbenchError("val=next-fold needs k ≥ 3 (or val=none)")
    f = np.arange(k)[None, :, None]
    roles = np.full((folds.shape[0], k, folds.shape[1]), TRAIN, dtype=np.int8)
    roles[folds[:, None, :] == f] = TEST
    if val == "next-fold":
        roles[folds[:, None, :] == (f + 1) % k] = VAL
    roles[(folds < 0)[:, None, :].repeat(k, 1)] = ABSENT
    return roles


def stratified_holdout(labels: np.ndarray, fractions: tuple[float, float, float], rng: np.random.Generator) -> np.ndarray:
    """Role per row for (train, val, test) fractions, stratified per class (no subjects)."""
    if abs(sum(fractions) - 1) > 1e-9 or min(fractions) < 0:
        raise FerbenchError(f"hold-out fractions must be ≥ 0 and sum to 1, got {fractions}")
    _, y = np.unique(labels, return_inverse=True)
    perm = rng.permutation(len(y))
    order = perm[np.argsort(y[perm], kind="stable")]
    start = np.searchsorted(y[order], y[order])
    size = np.bincount(y)[y[order]]
    pos = (np.arange(len(order)) - start + 0.5) / size
    _, f_val, f_test = fractions
    roles = np.where(pos < f_test, TEST, np.where(pos < f_test + f_val, VAL, TRAIN)).astype(np.int8)
    out = np.empty(len(y), dtype=np.int8)
    out[order] = roles
    return out


def _allocate(counts: np.ndarray, total: int) -> np.ndarray:
    """``total`` split over classes in proportion to ``counts``: floors, then the largest remainders
    (ties to the lower class index), as scikit-learn's stratified splitters allocate."""
    exact = counts * total / max(int(counts.sum()), 1)
    base = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - base), kind="stable")
    base[order[: total - int(base.sum())]] += 1
    return base


def two_stage_holdout(labels: np.ndarray, test: float, val_of_rest: float, rng: np.random.Generator) -> np.ndarray:
    """Role per row as two stratified ``train_test_split`` calls: ``ceil(test · n)`` rows to test, then
    ``ceil(val_of_rest · rest)`` of the rest to val (scikit-learn's sizes and per-class allocation;
    which rows of a class go where is this generator's draw, not scikit-learn's)."""
    _, y = np.unique(labels, return_inverse=True)
    counts = np.bincount(y)
    n_test = math.ceil(test * len(y) - 1e-9)
    t = _allocate(counts, n_test)
    v = _allocate(counts - t, math.ceil(val_of_rest * (len(y) - n_test) - 1e-9))
    roles = np.full(len(y), TRAIN, np.int8)
    for c in range(len(counts)):
        rows = rng.permutation(np.flatnonzero(y == c))
        roles[rows[: t[c]]] = TEST
        roles[rows[t[c]: t[c] + v[c]]] = VAL
    return roles


def per_class_draw(labels: np.ndarray, candidates: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Mask of up to ``n`` rows per class drawn (seeded) among ``candidates``."""
    idx = np.flatnonzero(candidates)
    idx = idx[rng.permutation(len(idx))]
    idx = idx[np.argsort(labels[idx], kind="stable")]
    lab = labels[idx]
    rank = np.arange(len(idx)) - np.searchsorted(lab, lab)
    mask = np.zeros(len(labels), dtype=bool)
    mask[idx[rank < n]] = True
    return mask


def carve(labels: np.ndarray, groups: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Mask of a subject-disjoint, stratified share (about ``fraction``) of the rows."""
    if not 0 < fraction < 1:
        raise FerbenchError(f"val_fraction must be in (0, 1), got {fraction}")
    k = max(2, round(1 / fraction))
    return assign_folds(labels, groups, k, rng) == 0


def subject_kfold(rows: pa.Table, k: int, repeats: int, seed_stream, val: str) -> np.ndarray:
    """Roles (R, K, N) of a subject-grouped stratified k-fold over ``rows`` (plan rows)."""
    labels = np_col(rows, "label_canonical")
    groups = group_codes(rows.column("subject_id"))
    if not len(labels):
        return np.zeros((repeats, k, 0), np.int8)
    folds = np.stack([assign_folds(labels, groups, k, seed_stream(r)) for r in range(repeats)])
    return fold_roles(folds, k, val)


def complete_subjects(groups: np.ndarray, cells: np.ndarray, n_cells: int) -> np.ndarray:
    """Row mask: the row's subject has all ``n_cells`` distinct ``cells`` (e.g. class × intensity)."""
    pairs = np.unique(np.stack([groups, cells], axis=1)[groups >= 0], axis=0)
    full = np.flatnonzero(np.bincount(pairs[:, 0], minlength=groups.max() + 1) == n_cells) if len(pairs) else []
    return np.isin(groups, full)


def draw_subjects(groups: np.ndarray, eligible: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Row mask of ``n`` subjects drawn once (seeded) among the eligible rows' subjects; 0 = all."""
    pool = np.unique(groups[eligible & (groups >= 0)])
    if not len(pool):
        raise FerbenchError("no subject is eligible (none has every class the protocol needs)")
    if n == 0:
        return eligible & np.isin(groups, pool)
    if n > len(pool):
        raise FerbenchError(f"asked for {n} subjects, only {len(pool)} are eligible")
    return eligible & np.isin(groups, np.sort(rng.choice(pool, n, replace=False)))


def sample_kfold(n: int, k: int, seed: int) -> np.ndarray:
    """Fold 0..k-1 per row of scikit-learn's ``KFold(k, shuffle=True, random_state=seed)`` over
    ``n`` rows in their given order (sample-level: subjects are ignored, so they leak).

    Same arithmetic as scikit-learn: the indices are shuffled by ``RandomState(seed)``, then cut
    into k consecutive runs, the first ``n % k`` one longer. Applied to rows sorted by sample_id
    (ferbench's order), not to the order a reference script listed its files in."""
    if k < 2:
        raise FerbenchError(f"k-fold needs k ≥ 2, got {k}")
    if n < k:
        raise FerbenchError(f"cannot make {k} folds from {n} samples")
    idx = np.arange(n)
    np.random.RandomState(int(seed) % 2**32).shuffle(idx)
    sizes = np.full(k, n // k, dtype=np.int64)
    sizes[: n % k] += 1
    folds = np.empty(n, dtype=np.int64)
    folds[idx] = np.repeat(np.arange(k), sizes)
    return folds


def sample_holdout(n: int, test_fraction: float, seed: int) -> np.ndarray:
    """Roles (TRAIN/TEST) of scikit-learn's ``train_test_split(..., test_size=f, shuffle=True,
    random_state=seed)`` over ``n`` rows in their given order: ``ceil(f * n)`` rows test."""
    if not 0 < test_fraction < 1:
        raise FerbenchError(f"test fraction must be in (0, 1), got {test_fraction}")
    n_test = int(np.ceil(test_fraction * n))
    if not 0 < n_test < n:
        raise FerbenchError(f"a {test_fraction:.0%} test split of {n} samples leaves a side empty")
    perm = np.random.RandomState(int(seed) % 2**32).permutation(n)
    roles = np.full(n, TRAIN, dtype=np.int8)
    roles[perm[:n_test]] = TEST
    return roles
