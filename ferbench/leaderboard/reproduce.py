"""Reported, reproduced as published, reproduced honestly — and the two gaps between them.

For every published figure of a recipe (its ``reported`` block), the same recipe's runs are looked up
on two sides: an *as-published* manifest (a ``*-published`` protocol, a ``split --folds`` list, a
``<protocol>-random-kfold``: leaky by design, stated) and an *honest* one (any other). Per side the
(manifest, recipe content) with the most runs counts; others are named in ``note``. Then:

* ``implementation_gap`` = as published − reported: what remains when the publication's own
  protocol and selection rule are rerun (code, weights, data version, chance);
* ``leakage_inflation`` = as published − honest: what the published protocol adds over a
  subject-independent one, on the same rows.

Each side's figure is the mean over its runs of the run's metric on its test predictions (as the
board's entries). Intervals: a paired cluster bootstrap (``metrics.cell_bootstrap``: clusters =
subjects, or samples without one; the union of both sides' clusters is resampled once per replicate,
so the two sides are paired wherever they test the same subjects); the implementation gap's interval
is the as-published side's, shifted by the constant reported figure. Percent; gaps in points. Model
figures (parameters, MACs) are the runs' means in their own units, without an interval.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..metrics import SCALARS, cell_bootstrap, cell_means, cluster_confusions, percentile, scalar_values
from .collect import Run

COLUMNS = ("recipe_name", "metric", "role", "source", "reported", "published_manifest", "published_protocol",
           "published_runs", "as_published", "honest_manifest", "honest_protocol", "honest_runs", "honest",
           "implementation_gap", "gap_lo", "gap_hi", "leakage_inflation", "inflation_lo", "inflation_hi", "note")


def _scaled(key: str, scale: float) -> Callable[[dict[str, Any]], float | None]:
    return lambda facts: None if facts.get(key) is None else facts[key] / scale


#: model figures (``recipe_checks.MODEL_FIGURES``) from a run's model facts
MODEL_FACTS = {"params_m": _scaled("params", 1e6), "trainable_params_m": _scaled("trainable_params", 1e6),
               "gmacs": _scaled("gflops", 2.0)}


def is_published(run: Run) -> bool:
    """Whether a run's manifest reproduces a publication's own (leaky, stated) protocol."""
    p = run.record.protocol
    return bool(p.get("published")) or (p.get("leakage") or {}).get("verdict") == "leaky-published"


def measure_for(metric: str, classes: list[str]) -> Callable[[np.ndarray], np.ndarray] | None:
    """The statistic of a figure's metric on confusion matrices (..., C, C) → (..., 1); None when the
    metric names a class these runs do not have."""
    if metric in SCALARS:
        i = SCALARS.index(metric)
        return lambda cms: scalar_values(cms)[..., i:i + 1]
    kind, _, name = metric.partition(":")
    if name not in classes:
        return None
    k = classes.index(name)

    def per_class(cms: np.ndarray) -> np.ndarray:
        cms = np.asarray(cms, dtype=np.float64)
        if kind == "accuracy_without":  # the full argmax, scored on the other classes' rows
            rest = np.delete(np.delete(cms, k, -2), k, -1)
            with np.errstate(invalid="ignore", divide="ignore"):
                return (np.trace(rest, axis1=-2, axis2=-1) / np.delete(cms, k, -2).sum((-2, -1)))[..., None]
        tp, support, predicted = cms[..., k, k], cms[..., k, :].sum(-1), cms[..., :, k].sum(-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            recall, precision = tp / support, tp / predicted
            f1 = np.where((precision + recall) > 0, 2 * precision * recall / (precision + recall), 0.0)
        return {"precision": precision, "recall": recall, "f1": f1}[kind][..., None]

    return per_class


def _side(runs: list[Run]) -> tuple[list[Run], str]:
    """The runs of the (manifest, recipe hash) with the most runs, and a note naming the others."""
    by: dict[tuple[str, str], list[Run]] = {}
    for r in runs:
        by.setdefault((r.record.manifest_hash, r.record.recipe_hash), []).append(r)
    (key, chosen), *rest = sorted(by.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    note = f"{len(rest)} other manifest/recipe combination(s) on this side left out" if rest else ""
    return sorted(chosen, key=lambda r: r.cell), note


def reproduction_rows(runs: list[Run], n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> list[dict[str, Any]]:
    """One row per published figure of every recipe name that has runs (see the module docstring)."""
    by_name: dict[str, dict[str, Run]] = {}  # recipe name → run id → run
    figures: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
    for run in runs:
        for rec in (run.record, *run.aliases):
            name = rec.recipe.get("name") or "?"
            by_name.setdefault(name, {})[run.record.run_id] = run
            for fig in rec.reported:
                if isinstance(fig.get("value"), (int, float)):
                    figures.setdefault(name, {}).setdefault((fig.get("metric") or "accuracy", fig.get("role") or "test"), fig)
    out = []
    for name in sorted(figures):
        sides = {flag: [r for r in by_name[name].values() if is_published(r) == flag] for flag in (True, False)}
        chosen = {flag: _side(rs) if rs else ([], "") for flag, rs in sides.items()}
        scored = _score_figures(sorted(figures[name]), chosen, n_boot, seed)
        for (metric, role), fig in sorted(figures[name].items()):
            out.append(_row(name, metric, role, fig, chosen, scored.get((metric, role)), level))
    return out


Scored = tuple[dict[bool, float], dict[bool, np.ndarray]]  # per side: the mean, and the bootstrap values


def _score_figures(keys: list[tuple[str, str]], chosen: dict[bool, tuple[list[Run], str]], n_boot: int,
                   seed: int) -> dict[tuple[str, str], Scored]:
    """Every test score figure of one recipe name at once: one confusion matrix per run and cluster,
    one bootstrap whose statistic holds every figure (the resamples depend on the seed and the
    clusters only, so each figure gets the values a bootstrap of its own would give)."""
    first = (chosen[True][0] or chosen[False][0] or [None])[0]
    if first is None:
        return {}
    classes = list(first.record.classes)
    measures = [(key, measure_for(key[0], classes)) for key in keys if key[1] == "test" and key[0] not in MODEL_FACTS]
    measures = [(key, m) for key, m in measures if m is not None]
    if not measures:
        return {}
    systems = [(flag, [cluster_confusions(r.clusters, r.truth, r.pred, len(r.record.classes)) for r in chosen[flag][0]])
               for flag in (True, False) if chosen[flag][0]]

    def every(cms: np.ndarray) -> np.ndarray:
        return np.concatenate([m(cms) for _, m in measures], -1)

    means = {flag: 100 * cell_means(cells, measure=every) for flag, cells in systems}
    boot = 100 * cell_bootstrap([cells for _, cells in systems], n_boot=n_boot, seed=seed, measure=every)
    return {key: ({flag: float(means[flag][j]) for flag, _ in systems},
                  {flag: boot[:, i, j] for i, (flag, _) in enumerate(systems)})
            for j, (key, _) in enumerate(measures)}


def _row(name: str, metric: str, role: str, fig: dict[str, Any], chosen: dict[bool, tuple[list[Run], str]],
         scored: Scored | None, level: float) -> dict[str, Any]:
    reported = float(fig["value"])
    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    row.update(recipe_name=name, metric=metric, role=role, source=fig.get("source"), reported=reported)
    notes = [n for _, n in chosen.values() if n]
    for flag, prefix in ((True, "published"), (False, "honest")):
        runs = chosen[flag][0]
        if runs:
            p = runs[0].record.protocol
            row.update({f"{prefix}_manifest": runs[0].record.manifest_hash, f"{prefix}_protocol": p.get("name"),
                        f"{prefix}_runs": len(runs)})
    if role != "test":
        row["note"] = "; ".join(notes + [f"a {role} figure: compared in the board's reported-vs-measured table only"])
        return row
    if metric in MODEL_FACTS:  # a model figure: the runs' mean, in its own unit, no interval (nothing to resample)
        for flag, key in ((True, "as_published"), (False, "honest")):
            values = [MODEL_FACTS[metric](r.record.model) for r in chosen[flag][0] if r.record.model]
            values = [v for v in values if v is not None]
            row[key] = float(np.mean(values)) if values else None
        if row["as_published"] is not None:
            row["implementation_gap"] = row["as_published"] - reported
            if row["honest"] is not None:
                row["leakage_inflation"] = row["as_published"] - row["honest"]
        row["note"] = "; ".join(notes) or None
        return row
    if scored is None:
        has_runs = bool(chosen[True][0] or chosen[False][0])
        row["note"] = "; ".join(notes + ([f"no class {metric.partition(':')[2]!r} in these runs"] if has_runs else []))
        return row
    means, boot = scored
    if True in means:
        row["as_published"] = means[True]
        row["implementation_gap"] = means[True] - reported
        row["gap_lo"], row["gap_hi"] = percentile(boot[True] - reported, level)
    if False in means:
        row["honest"] = means[False]
    if len(means) == 2:
        row["leakage_inflation"] = means[True] - means[False]
        row["inflation_lo"], row["inflation_hi"] = percentile(boot[True] - boot[False], level)
    row["note"] = "; ".join(notes) or None
    return row
