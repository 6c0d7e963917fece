"""Bosphorus expression protocols (the FFNet-M / Li et al. setting).

``bosphorus``: the six posed emotions (``E_*`` scans), one scan per subject and emotion (the
lowest repetition), of the subjects that have all six (63 in the real data; the literature fixes
60 of them: ``subjects=60`` draws them once by seed, default 0 = all), subject-independent
10-fold. ``bosphorus7`` adds each such subject's first neutral scan (``N_N``). Action-unit,
pose and occlusion scans never take part (AU-derived labels are a Global-merge option only).
Parameters as BU-3DFE P1: ``k``, ``repeats`` (literature: 100 × 10-fold), ``val``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...protocols.base import Inputs, Plan, Protocol, in_classes, np_col, plan_rows, register, require_columns, stream
from ...protocols.official import SIX
from ...protocols.kfold import complete_subjects, draw_subjects, group_codes, subject_kfold

COLUMNS = ("scan_class", "repetition")


def bosphorus_plan(classes: tuple[int, ...]):
    def plan(inputs: Inputs, seed: int, params: dict[str, Any]) -> Plan:
        src = inputs.get("bosphorus")
        require_columns(src, *COLUMNS)
        t = src.table
        labels = np_col(t, "label", -1)
        scan = np_col(t, "scan_class", "")
        cand = ((scan == "E") & in_classes(labels, SIX)) | ((scan == "N") & (labels == 0))
        cand &= in_classes(labels, classes)
        groups = group_codes(t["subject_id"])
        cand &= _first_repetition(groups, labels, np_col(t, "repetition", 0), cand)
        eligible = cand & complete_subjects(np.where(cand, groups, -1), labels, len(classes))
        keep = draw_subjects(groups, eligible, params["subjects"], stream(seed, "bosphorus", "subjects"))
        rows = plan_rows(src, keep)
        roles = subject_kfold(rows, params["k"], params["repeats"], lambda r: stream(seed, "bosphorus", "folds", r), params["val"])
        return Plan(rows, roles, classes, {"subjects": rows["subject_id"].unique().sort().to_pylist()})

    return plan


def _first_repetition(groups: np.ndarray, labels: np.ndarray, repetition: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """Row mask: the lowest-repetition candidate scan of each (subject, label); rows sorted by sample_id break ties."""
    idx = np.flatnonzero(cand)
    order = idx[np.lexsort((idx, repetition[idx], labels[idx], groups[idx]))]
    key = np.stack([groups[order], labels[order]], axis=1)
    first = np.ones(len(order), bool)
    first[1:] = (key[1:] != key[:-1]).any(1)
    mask = np.zeros(len(groups), bool)
    mask[order[first]] = True
    return mask


_PARAMS = {"subjects": 0, "k": 10, "repeats": 1, "val": "next-fold"}
register(
    Protocol(
        "bosphorus",
        "Bosphorus 6 posed emotions, subjects with all six, one scan each, subject 10-fold",
        ("bosphorus",),
        bosphorus_plan(SIX),
        dict(_PARAMS),
        COLUMNS,
    )
)
register(
    Protocol(
        "bosphorus7",
        "Bosphorus 6 posed emotions + neutral, subjects with all seven, subject 10-fold",
        ("bosphorus",),
        bosphorus_plan((0,) + SIX),
        dict(_PARAMS),
        COLUMNS,
    )
)
