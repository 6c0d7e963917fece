"""BU-3DFE protocol P1, the de-facto standard of 2D+3D FER (Sui et al., FFNet-M, and others).

6 expressions (no neutral), the two highest intensities (3 and 4), 60 subjects drawn once (by
the seed) among the subjects with all 12 such models and kept for every repetition: 60 × 6 × 2
= 720 samples. Each repetition is a fresh subject-independent 10-fold split (54 subjects for
training and validation, 6 for testing per fold); the literature repeats 100 times and reports
the mean (``repeats``, default 100). The 60-subject list was never published, so the drawn list
is in the manifest notes. (The public reference code drew its 60 subjects with a fixed
random_state and then folded *samples*, not subjects; ferbench folds subjects.)

The full 7-class, 2,500-model benchmark is ``bu3dfe7``; ``bu3dfe6`` is its 6 classes without
neutral over all four intensities (2,400 models: report 003's 6-class setting), both
subject-grouped stratified 5-fold.

As published (report 003's reference code), leaky by design and stated so — for reproducing its
numbers, never for ranking: ``bu3dfe7-published`` (all models, 7 classes, sample-level
KFold(5, shuffle, seed)), ``bu3dfe6-published`` (the same over the 6 classes) and ``bu3dfe-p1-published`` (P1's 60 subjects × 6 × 2, then a sample-level
KFold(10, shuffle, seed + r) per repeat), both without a validation set.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...protocols.base import Inputs, Plan, Protocol, in_classes, np_col, plan_rows, register, require_columns, stream
from ...protocols.grouped import grouped_protocol
from ...protocols.official import SEVEN, SIX
from ...protocols.published import kfold_roles, published_protocol
from ...protocols.kfold import complete_subjects, draw_subjects, group_codes, subject_kfold

INTENSITIES = (3, 4)


def _p1_rows(inputs: Inputs, seed: int, params: dict[str, Any]):
    """P1's 720 rows: 6 classes, intensities 3-4, ``subjects`` subjects with all 12 drawn by seed."""
    src = inputs.get("bu3dfe")
    require_columns(src, "intensity")
    t = src.table
    labels, intensity = np_col(t, "label", -1), np_col(t, "intensity", -1)
    cand = in_classes(labels, SIX) & np.isin(intensity, INTENSITIES)
    groups = group_codes(t["subject_id"])
    cells = labels * 10 + intensity
    eligible = cand & complete_subjects(np.where(cand, groups, -1), cells, len(SIX) * len(INTENSITIES))
    keep = draw_subjects(groups, eligible, params["subjects"], stream(seed, "bu3dfe-p1", "subjects"))
    return plan_rows(src, keep)


def _p1(inputs: Inputs, seed: int, params: dict[str, Any]) -> Plan:
    rows = _p1_rows(inputs, seed, params)
    roles = subject_kfold(rows, params["k"], params["repeats"], lambda r: stream(seed, "bu3dfe-p1", "folds", r), params["val"])
    return Plan(rows, roles, SIX, {"subjects": rows["subject_id"].unique().sort().to_pylist()})


register(
    Protocol(
        "bu3dfe-p1",
        "BU-3DFE P1: 6 classes, intensities 3-4, 60 subjects drawn by seed, subject 10-fold repeated R times (720 samples)",
        ("bu3dfe",),
        _p1,
        {"subjects": 60, "k": 10, "repeats": 100, "val": "next-fold"},
        ("intensity",),
    )
)
grouped_protocol("bu3dfe7", "BU-3DFE all 2,500 models, 7 classes, subject-grouped stratified 5-fold", "bu3dfe", SEVEN)
grouped_protocol("bu3dfe6", "BU-3DFE 6 classes (no neutral), all 4 intensities (2,400 models), subject-grouped stratified "
                 "5-fold", "bu3dfe", SIX)


def _p1_published(inputs: Inputs, seed: int, params: dict[str, Any]) -> Plan:
    rows = _p1_rows(inputs, seed, params)
    return Plan(rows, kfold_roles(rows.num_rows, seed, params), SIX, {"subjects": rows["subject_id"].unique().sort().to_pylist()})


published_protocol(
    "bu3dfe7-published",
    "BU-3DFE all 2,500 models, 7 classes, sample-level KFold(5, shuffle=True, random_state=seed) as in report 003",
    "bu3dfe",
    SEVEN,
)
published_protocol(
    "bu3dfe6-published",
    "BU-3DFE 6 classes (no neutral), all intensities, sample-level KFold(5, shuffle=True, random_state=seed) as in "
    "report 003's 6-class figure",
    "bu3dfe",
    SIX,
)
published_protocol(
    "bu3dfe-p1-published",
    "BU-3DFE P1 as in report 003: 60 subjects drawn by seed × 6 classes × intensities 3-4 (720 samples), "
    "sample-level KFold(10, shuffle=True, random_state=seed + repeat)",
    "bu3dfe",
    SIX,
    plan=_p1_published,
    params={"subjects": 60, "k": 10, "repeats": 1, "val": "none"},
    columns=("intensity",),
)
