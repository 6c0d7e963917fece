"""Classification metrics computed from predictions, so any run can be re-scored from its files.

Per confusion matrix (rows = true class, columns = predicted): accuracy; balanced accuracy (mean
recall over the classes present in the truth: the FER literature's "average accuracy"); macro-F1
(mean F1 over the classes present in the truth or the predictions, as scikit-learn does by default);
support-weighted precision, recall and F1; per-class recall (None for an absent class).

Beside every model: a majority-class baseline (always the most frequent *training* class) and a
class-prior baseline (the expected confusion matrix of guessing with the training class frequencies).
Aggregates: mean ± sample std over runs (folds × seeds), and a percentile bootstrap CI that resamples
subjects (clusters of rows; a row without a subject is its own cluster) with replacement.

``per_class`` gives precision, recall and F1 of every class of one confusion matrix. ``cell_bootstrap``
is the leaderboard's paired test: several systems evaluated on the same runs ("cells": one run's test
set, reduced to one confusion matrix per cluster) are rescored under the *same* resamples of the
clusters, so differences between systems come with an interval (``percentile``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

SCALARS = ("accuracy", "balanced_accuracy", "macro_f1", "weighted_precision", "weighted_recall", "weighted_f1")


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(C, C) int64 counts, rows = true class, columns = predicted class."""
    return np.bincount(np.asarray(y_true) * n_classes + np.asarray(y_pred), minlength=n_classes * n_classes).reshape(
        n_classes, n_classes
    )


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros(np.broadcast(a, b).shape), where=b > 0)


def scores(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Every scalar metric of one confusion matrix (C, C) or a stack of them (..., C, C)."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    support, predicted = cm.sum(-1), cm.sum(-2)
    total = support.sum(-1)
    recall, precision = _div(tp, support), _div(tp, predicted)
    f1 = _div(2 * precision * recall, precision + recall)
    present = support > 0
    seen = present | (predicted > 0)
    return {
        "accuracy": _div(tp.sum(-1), total),
        "balanced_accuracy": _div((recall * present).sum(-1), present.sum(-1)),
        "macro_f1": _div((f1 * seen).sum(-1), seen.sum(-1)),
        "weighted_precision": _div((precision * support).sum(-1), total),
        "weighted_recall": _div((recall * support).sum(-1), total),
        "weighted_f1": _div((f1 * support).sum(-1), total),
        "recall": np.where(present, recall, np.nan),
    }


def report(cm: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """JSON-ready metrics of one confusion matrix: scalars, per-class recall by name, the matrix, n."""
    s = scores(cm)
    out: dict[str, Any] = {k: float(s[k]) for k in SCALARS}
    out["per_class_recall"] = {c: (None if np.isnan(r) else float(r)) for c, r in zip(classes, s["recall"])}
    out["confusion"] = np.asarray(cm).tolist()
    out["n"] = int(np.asarray(cm).sum())
    return out


def evaluate(y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    return report(confusion(y_true, y_pred, len(classes)), classes)


def baselines(train_counts: Sequence[int], y_true: np.ndarray, classes: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Majority-class and class-prior baselines, both fitted on the training counts only."""
    c = len(classes)
    counts = np.asarray(train_counts, dtype=np.float64)
    truth = np.bincount(np.asarray(y_true), minlength=c).astype(np.float64)
    majority = np.zeros((c, c))
    majority[:, int(np.argmax(counts))] = truth
    prior = np.outer(truth, counts / counts.sum())
    return {"majority": report(majority, classes), "prior": report(prior, classes)}


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for a single value)."""
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def bootstrap_ci(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    groups: Sequence[Any],
    n_classes: int,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Percentile CI of every scalar metric, resampling the clusters ``groups`` (None = own cluster)."""
    keys: dict[Any, int] = {}
    cluster = np.array([keys.setdefault(g if g is not None else ("row", i), len(keys)) for i, g in enumerate(groups)])
    s = len(keys)
    per_cluster = np.zeros((s, n_classes, n_classes))
    np.add.at(per_cluster, (cluster, np.asarray(y_true), np.asarray(y_pred)), 1)
    rng = np.random.default_rng(seed)
    stats: dict[str, list[np.ndarray]] = {k: [] for k in SCALARS}
    chunk = max(1, min(n_boot, 20_000_000 // max(s, 1)))
    for start in range(0, n_boot, chunk):
        w = rng.multinomial(s, np.full(s, 1.0 / s), size=min(chunk, n_boot - start)).astype(np.float64)
        sc = scores(np.einsum("bs,scd->bcd", w, per_cluster))
        for k in SCALARS:
            stats[k].append(sc[k])
    lo, hi = (1 - ci) / 2, 1 - (1 - ci) / 2
    return {k: tuple(float(q) for q in np.quantile(np.concatenate(v), [lo, hi])) for k, v in stats.items()}


def per_class(cm: np.ndarray, classes: Sequence[str]) -> list[dict[str, Any]]:
    """Precision, recall, F1 and support of every class (None where undefined: recall of a class absent
    from the truth, precision of a class never predicted; F1 is None only when it is neither)."""
    cm = np.asarray(cm, dtype=np.float64)
    tp, support, predicted = np.diagonal(cm), cm.sum(1), cm.sum(0)
    out = []
    for i, name in enumerate(classes):
        p = float(tp[i] / predicted[i]) if predicted[i] > 0 else None
        r = float(tp[i] / support[i]) if support[i] > 0 else None
        f1 = None if p is None and r is None else (0.0 if not p or not r else 2 * p * r / (p + r))
        out.append({"class": name, "precision": p, "recall": r, "f1": f1, "support": int(round(support[i]))})
    return out


def cluster_confusions(clusters: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray,
                       n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids, cm): the distinct cluster ids of a test set and one (C, C) confusion matrix per id."""
    ids, local = np.unique(np.asarray(clusters), return_inverse=True)
    cm = np.zeros((len(ids), n_classes, n_classes))
    np.add.at(cm, (local, np.asarray(y_true), np.asarray(y_pred)), 1)
    return ids, cm


Cell = tuple[np.ndarray, np.ndarray]  # (cluster ids (K,), per-cluster confusion matrices (K, C, C))


def scalar_values(cms: np.ndarray) -> np.ndarray:
    """The SCALARS of a stack of confusion matrices (..., C, C) → (..., len(SCALARS))."""
    sc = scores(cms)
    return np.stack([sc[s] for s in SCALARS], -1)


def cell_bootstrap(systems: Sequence[Sequence[Cell]], n_boot: int = 1000, seed: int = 0,
                   weights: Sequence[Sequence[float] | None] | None = None,
                   measure: Callable[[np.ndarray], np.ndarray] = scalar_values) -> np.ndarray:
    """Paired cluster bootstrap of the mean-over-runs metrics of several systems.

    ``systems[k]`` lists system k's cells (one per run). Every resample draws the clusters of all
    cells (their union) with replacement, once, and rescores every cell of every system with those
    weights; a system's statistic is the mean of its cells' metrics (a cell whose clusters were all
    left out of a resample does not count in it). ``weights[k]``, when given, weighs system k's cells
    in that mean (a cell standing for several identical runs). ``measure`` maps confusion matrices
    (..., C, C) to the statistics (..., M), by default the SCALARS. Returns (n_boot, n_systems, M)."""
    union = np.unique(np.concatenate([ids for cells in systems for ids, _ in cells]))
    n, c = len(union), systems[0][0][1].shape[-1]
    flat = [[(np.searchsorted(union, ids), cm.reshape(len(ids), c * c)) for ids, cm in cells] for cells in systems]
    mult = [np.ones(len(cells)) if weights is None or weights[k] is None else np.asarray(weights[k], dtype=np.float64)
            for k, cells in enumerate(systems)]
    out = np.full((n_boot, len(systems), measure(np.zeros((c, c))).shape[-1]), np.nan)
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_boot, 5_000_000 // max(n, max(map(len, systems)) * c * c, 1)))
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        w = rng.multinomial(n, np.full(n, 1.0 / n), size=b).astype(np.float64)
        for k, cells in enumerate(flat):
            m = np.stack([w[:, pos] @ cm for pos, cm in cells]).reshape(len(cells), b, c, c)
            valid = (m.sum((2, 3)) > 0) * mult[k][:, None]  # (cells, b): the weight of each cell that counts
            values = measure(m)  # (cells, b, metrics)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[start:start + b, k] = (values * valid[..., None]).sum(0) / valid.sum(0)[:, None]
    return out


def cell_means(cells: Sequence[Cell], weights: Sequence[float] | None = None,
               measure: Callable[[np.ndarray], np.ndarray] = scalar_values) -> np.ndarray:
    """The point estimate ``cell_bootstrap`` resamples: each statistic's (weighted) mean over the cells (M,)."""
    return np.average(measure(np.stack([cm.sum(0) for _, cm in cells])), axis=0, weights=weights)


def percentile(values: np.ndarray, level: float = 0.95) -> tuple[float, float] | tuple[None, None]:
    """The central percentile interval of bootstrap values (NaN resamples ignored; (None, None) if none)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if not len(v):
        return None, None
    lo, hi = np.quantile(v, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def rescore(predictions: str | Path, role: str = "test") -> dict[str, Any]:
    """Metrics of one role recomputed from a ``predictions.parquet`` (its schema metadata names the classes)."""
    import json

    import pyarrow.parquet as pq

    table = pq.read_table(predictions)
    classes = json.loads(table.schema.metadata[b"ferbench_classes"])
    rows = table.filter(table.column("role").to_numpy(zero_copy_only=False) == role)
    return evaluate(rows.column("label").to_numpy(), rows.column("pred").to_numpy(), classes)


def confusion_png(cm: np.ndarray, classes: Sequence[str], title: str = "") -> bytes:
    """PNG of a row-normalised confusion matrix (counts in the cells)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(cm, dtype=np.float64)
    rows = _div(cm, cm.sum(1, keepdims=True))
    n = len(classes)
    fig, ax = plt.subplots(figsize=(1.2 + 0.55 * n, 1.0 + 0.5 * n), dpi=100)
    ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{cm[i, j]:.0f}", ha="center", va="center", fontsize=7, color="white" if rows[i, j] > 0.5 else "black")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
