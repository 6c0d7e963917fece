"""Who is ranked against whom, and how sure the ranking is.

**Groups.** An entry (one recipe content hash on one manifest) is ranked only against entries scored
on exactly the same (repeat, fold, seed) runs of the same manifest. The ranked coverage is every
(repeat, fold) of the protocol (``n_repeats × n_folds`` from the manifest metadata each run recorded),
or the ``folds`` / ``repeats`` asked for, times a seed set: the ``seeds`` asked for, else each entry's
seeds that cover all of those folds; entries with the same seed set form one ranked group (other runs
of an entry are not counted, with a note; of several runs of one cell, e.g. before and after a code
change, only the newest counts). An entry that does not cover the coverage is *partial*: a
group of its own (its runs), shown unranked as "partial k/K folds".

**Statistics.** Within a group every system (the entries, and the majority-class and class-prior
baselines rebuilt per fold from its training class counts, each fold weighted by its runs) is scored as the mean over the group's runs
of the run's metric (± sample std over runs). ``metrics.cell_bootstrap`` resamples the test clusters
(subjects; a row without a subject is its own cluster) of all the group's runs with replacement, B
times with a fixed seed, and rescores every run of every system under the same resample, giving each
system a percentile CI and each pair of systems a paired interval of their difference. Entries are
ordered by mean; walking down that order, an entry whose interval of the difference to the current
tier's leader contains 0 is statistically tied with it (same tier, same rank: the leader's position).
Each entry is compared with the best baseline (higher mean) the same way: "above", "not
distinguishable" or "below". Paired differences need the same test samples: when a group's runs
of one cell saw different test samples the group is marked unpaired and no difference is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..fingerprint import hash_obj
from ..metrics import SCALARS, cell_bootstrap, cell_means, cluster_confusions, percentile, scores
from .collect import Run

BASELINES = ("majority", "prior")


@dataclass
class Group:
    group_id: str
    protocol: str
    manifest_hash: str
    section: str  # ranked | partial
    rf: list[tuple[int, int]]  # (repeat, fold) pairs covered
    seeds: list[int]
    total_folds: int
    members: dict[str, list[Run]] = field(default_factory=dict)  # recipe hash -> counted runs, in cell order

    @property
    def coverage(self) -> str:
        return describe(self.rf, self.seeds)


def describe(rf: Sequence[tuple[int, int]], seeds: Sequence[int]) -> str:
    """"repeat 0: folds 0-2 × seeds 0,1" (repeats with the same folds together, consecutive values as ranges)."""
    by_repeat: dict[int, list[int]] = {}
    for r, f in sorted(set(rf)):
        by_repeat.setdefault(r, []).append(f)
    same: dict[tuple[int, ...], list[int]] = {}
    for r, folds in by_repeat.items():
        same.setdefault(tuple(folds), []).append(r)
    parts = [f"{_noun('repeat', rs)} {_ranges(rs)}: {_noun('fold', fs)} {_ranges(fs)}" for fs, rs in same.items()]
    return "; ".join(parts) + f" × {_noun('seed', seeds)} {_ranges(seeds)}"


def _noun(word: str, values: Sequence[int]) -> str:
    return word if len(set(values)) == 1 else word + "s"


def _ranges(values: Sequence[int]) -> str:
    out, values = [], sorted(set(values))
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[j] + 1:
            j += 1
        out.append(str(values[i]) if j == i else f"{values[i]}-{values[j]}" if j > i + 1 else f"{values[i]},{values[j]}")
        i = j + 1
    return ",".join(out)


def plan_groups(runs: list[Run], folds: Sequence[int] | None = None, repeats: Sequence[int] | None = None,
                seeds: Sequence[int] | None = None) -> tuple[list[Group], list[tuple[str | None, str, str]]]:
    """The comparison groups of every manifest (see the module docstring), and notes on runs not counted."""
    by_cell: dict[tuple, list[Run]] = {}
    for run in runs:
        by_cell.setdefault((*run.entry, *run.cell), []).append(run)
    by_manifest: dict[str, dict[str, dict[tuple[int, int, int], Run]]] = {}
    groups, notes = [], []
    for (manifest, recipe, r, f, s), same in sorted(by_cell.items()):
        same.sort(key=lambda x: (x.record.created_at, x.record.run_id), reverse=True)
        by_manifest.setdefault(manifest, {}).setdefault(recipe, {})[(r, f, s)] = same[0]
        if len(same) > 1:  # e.g. the code changed between two runs of the same recipe
            notes.append((manifest, "superseded", f"entry {recipe[:8]} has {len(same)} runs of repeat {r} fold {f} seed {s} "
                                                  f"({', '.join(x.path.parent.name for x in same)}): only the newest, "
                                                  f"{same[0].path.parent.name}, is counted"))
    for manifest, entries in sorted(by_manifest.items()):
        proto = next(iter(next(iter(entries.values())).values())).record.protocol
        total = [(r, f) for r in range(proto["n_repeats"]) for f in range(proto["n_folds"])]
        rf = [(r, f) for r, f in total if (folds is None or f in folds) and (repeats is None or r in repeats)]
        if not rf:
            notes.append((manifest, "not-counted", f"the folds/repeats asked for do not exist in {proto['name']} "
                                                   f"({proto['n_repeats']} repeat(s) × {proto['n_folds']} fold(s)): "
                                                   "none of its runs is shown"))
            continue
        ranked: dict[tuple[int, ...], Group] = {}
        for recipe, cells in sorted(entries.items()):
            wanted = {c: run for c, run in cells.items() if (c[0], c[1]) in rf and (seeds is None or c[2] in seeds)}
            have = {c[2] for c in wanted}
            full = sorted(s for s in have if all((r, f, s) in wanted for r, f in rf))
            complete = set(seeds) <= set(full) if seeds is not None else bool(full)
            chosen = sorted(seeds) if seeds is not None else full
            if complete:
                key = tuple(chosen)
                group = ranked.get(key)
                if group is None:
                    gid = f"{manifest[:12]}:ranked:{hash_obj([rf, list(key)], 8)}"
                    group = ranked[key] = Group(gid, proto["name"], manifest, "ranked", rf, list(key), len(total))
                counted = [wanted[(r, f, s)] for r, f in rf for s in key]
            else:
                counted = [wanted[c] for c in sorted(wanted)]
                if not counted:
                    notes.append((manifest, "not-counted", f"entry {recipe[:8]} has no run in the coverage asked for"))
                    continue
                covered = sorted({(c[0], c[1]) for c in wanted})
                group = Group(f"{manifest[:12]}:partial:{recipe}", proto["name"], manifest, "partial", covered,
                              sorted(have), len(total))
                groups.append(group)
            group.members[recipe] = counted
            left = len(cells) - len(counted)
            if left:
                notes.append((manifest, "not-counted", f"entry {recipe[:8]}: {left} of its {len(cells)} runs are outside "
                                                       f"the coverage it is shown on ({group.coverage}) and not counted"))
        groups += sorted(ranked.values(), key=lambda g: (-len(g.seeds), g.seeds))
    groups.sort(key=lambda g: (g.manifest_hash, g.section != "ranked", g.group_id))
    return groups, notes


def score_group(group: Group, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> dict[str, list[dict[str, Any]]]:
    """The rows of ``groups``, ``group_runs`` and ``standings`` for one group."""
    recipes = sorted(group.members)
    runs = [run for r in recipes for run in group.members[r]]
    classes = runs[0].record.classes
    uniq, inverse = np.unique(np.concatenate([run.clusters for run in runs]), return_inverse=True)
    bounds = np.cumsum([0] + [len(run.clusters) for run in runs])
    cells: dict[str, list] = {}
    for i, run in enumerate(runs):
        cells.setdefault(run.record.recipe_hash, []).append(
            cluster_confusions(inverse[bounds[i]:bounds[i + 1]], run.truth, run.pred, len(classes)))
    first = group.members[recipes[0]]
    # a baseline depends on the (repeat, fold) only: one cell per fold, weighted by its runs (seeds)
    folds_of = [(run.record.repeat, run.record.fold) for run in first]
    once = {f: i for i, f in reversed(list(enumerate(folds_of)))}
    distinct = sorted(once.values())
    for name in BASELINES:
        cells[name] = [_baseline(name, first[i], cells[recipes[0]][i]) for i in distinct]
    paired = all(len({group.members[r][i].digest for r in recipes}) == 1 for i in range(len(first)))
    systems = [*recipes, *BASELINES]
    weights = {s: None for s in recipes} | {s: [folds_of.count(folds_of[i]) for i in distinct] for s in BASELINES}
    boot = cell_bootstrap([cells[s] for s in systems], n_boot=n_boot, seed=seed, weights=[weights[s] for s in systems])
    point = np.stack([cell_means(cells[s], weights[s]) for s in systems])
    per_run = {s: np.stack([_values(cm.sum(0)) for _, cm in cells[s]]) for s in systems}
    unit = "subject" if all(r.subjects for r in runs) else "sample" if not any(r.subjects for r in runs) else \
        "subject (rows without one: sample)"
    common = {"group_id": group.group_id, "ci_level": level, "ci_unit": unit, "clusters": len(uniq)}
    standings = []
    for j, metric in enumerate(SCALARS):
        b_best = max(range(len(recipes), len(systems)), key=lambda k: (point[k, j], -k))
        order = sorted(range(len(recipes)), key=lambda k: (-point[k, j], recipes[k]))
        ranks = _tiers(order, boot[:, :, j], level) if group.section == "ranked" and paired else {}
        for pos, k in enumerate(order, 1):
            row = {**common, "system": "model", "recipe_hash": recipes[k], "metric": metric,
                   **_summary(point[k, j], per_run[recipes[k]][:, j], boot[:, k, j], level),
                   "n_runs": len(per_run[recipes[k]]), "n_folds": len(set(folds_of)) if group.section == "ranked"
                   else len({(r.record.repeat, r.record.fold) for r in group.members[recipes[k]]}),
                   "n_seeds": len({r.record.seed for r in group.members[recipes[k]]})}
            if group.section == "ranked":
                row["position"] = pos
                row.update(ranks.get(k, {"rank": pos, "tier": pos}))
                if paired:
                    best = order[0]
                    lo, hi = percentile(boot[:, k, j] - boot[:, best, j], level)
                    row.update(diff_best=float(point[k, j] - point[best, j]), diff_best_lo=lo, diff_best_hi=hi,
                               tied_with_best=ranks[k]["tier"] == 1)
            if paired:
                lo, hi = percentile(boot[:, k, j] - boot[:, b_best, j], level)
                row.update(best_baseline=systems[b_best], diff_baseline=float(point[k, j] - point[b_best, j]),
                           diff_baseline_lo=lo, diff_baseline_hi=hi,
                           vs_baseline=None if lo is None else "above" if lo > 0 else "below" if hi < 0
                           else "not distinguishable")
            standings.append(row)
        for k in range(len(recipes), len(systems)):
            standings.append({**common, "system": systems[k], "recipe_hash": None, "metric": metric,
                              **_summary(point[k, j], per_run[systems[k]][:, j], boot[:, k, j], level),
                              "n_runs": len(distinct), "n_folds": len(distinct), "n_seeds": None})
    group_row = {"group_id": group.group_id, "protocol": group.protocol, "manifest_hash": group.manifest_hash,
                 "section": group.section, "coverage": group.coverage, "k_folds": len(set(group.rf)),
                 "total_folds": group.total_folds, "seeds": group.seeds, "n_cells": len(first), "paired": paired}
    links = [{"group_id": group.group_id, "recipe_hash": r, "run_id": run.record.run_id}
             for r in recipes for run in group.members[r]]
    return {"groups": [group_row], "group_runs": links, "standings": standings}


def _baseline(name: str, run: Run, cell: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """A baseline's per-cluster confusion matrices on a run's test set (as ``metrics.baselines``)."""
    ids, cm = cell
    truth = cm.sum(2)  # (K, C): true-class counts per cluster
    counts = np.asarray(run.record.metrics["train_class_counts"], dtype=np.float64)
    if name == "majority":
        out = np.zeros_like(cm)
        out[:, :, int(np.argmax(counts))] = truth
    else:
        out = truth[:, :, None] * (counts / counts.sum())[None, None, :]
    return ids, out


def _values(cm: np.ndarray) -> np.ndarray:
    sc = scores(cm)
    return np.array([float(sc[s]) for s in SCALARS])


def _summary(mean: float, values: np.ndarray, boot: np.ndarray, level: float) -> dict[str, Any]:
    lo, hi = percentile(boot, level)
    return {"mean": float(mean), "std": float(np.std(values, ddof=1)) if len(values) > 1 else None,
            "ci_lo": lo, "ci_hi": hi}


def _tiers(order: list[int], boot: np.ndarray, level: float) -> dict[int, dict[str, int]]:
    """Tiers of statistically tied entries, walking down the order (``boot``: (B, systems))."""
    out: dict[int, dict[str, int]] = {}
    tier, leader, leader_pos = 0, None, 0
    for pos, k in enumerate(order, 1):
        tied = False
        if leader is not None:
            lo, hi = percentile(boot[:, k] - boot[:, leader], level)
            tied = lo is not None and lo <= 0 <= hi
        if not tied:
            tier, leader, leader_pos = tier + 1, k, pos
        out[k] = {"rank": leader_pos, "tier": tier}
    return out
