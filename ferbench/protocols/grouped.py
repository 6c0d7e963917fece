"""Subject-grouped stratified k-fold over one dataset's labelled rows (see ``kfold.assign_folds``).

* ``caldr_menders7`` / ``caldr_menders6``: CalD3r + MenD3s, 7 classes, and 6 without surprise
  (the dataset paper's setting), subject-grouped stratified 5-fold. (The public reference code
  used a sample-level KFold, which puts one subject's pictures in train and test.)
* ``bu3dfe7``: BU-3DFE, all 2,500 models, 7 classes, subject-grouped 5-fold (the reference code's
  "new benchmark", made subject-independent).
* ``global``: the merged Global set (CalD3r/MenD3s + BU-3DFE + Bosphorus), 7 classes,
  subject-grouped stratified 5-fold (subjects are namespaced per source, so none can collide).

Parameters: ``k`` folds, ``repeats`` (each with a fresh seeded assignment), ``val``:
``next-fold`` (fold f+1 validates when fold f tests) or ``none``.
"""

from __future__ import annotations

from typing import Any

from .base import Inputs, Plan, Protocol, in_classes, np_col, plan_rows, register, stream
from .kfold import subject_kfold
from .official import SEVEN


def grouped_plan(dataset: str, classes: tuple[int, ...]):
    def plan(inputs: Inputs, seed: int, params: dict[str, Any]) -> Plan:
        src = inputs.get(dataset)
        rows = plan_rows(src, in_classes(np_col(src.table, "label", -1), classes))
        roles = subject_kfold(rows, params["k"], params["repeats"], lambda r: stream(seed, dataset, "folds", r), params["val"])
        return Plan(rows, roles, classes)

    return plan


def _params(k: int) -> dict[str, Any]:
    return {"k": k, "repeats": 1, "val": "next-fold"}


_KFOLD = "subject-grouped stratified 5-fold"
register(
    Protocol(
        "caldr_menders7",
        f"CalD3r + MenD3s, 7 classes, {_KFOLD}",
        ("caldr_menders",),
        grouped_plan("caldr_menders", SEVEN),
        _params(5),
    )
)
register(
    Protocol(
        "caldr_menders6",
        f"CalD3r + MenD3s, 6 classes (no surprise), {_KFOLD}",
        ("caldr_menders",),
        grouped_plan("caldr_menders", (0, 1, 2, 4, 5, 6)),
        _params(5),
    )
)
register(Protocol("bu3dfe7", f"BU-3DFE all 2,500 models, 7 classes, {_KFOLD}", ("bu3dfe",), grouped_plan("bu3dfe", SEVEN), _params(5)))
register(
    Protocol(
        "global",
        f"Global merged RGB-D set (CalD3r/MenD3s + BU-3DFE + Bosphorus), 7 classes, {_KFOLD}",
        ("global",),
        grouped_plan("global", SEVEN),
        _params(5),
    )
)
