"""Subject-grouped stratified k-fold over one dataset's labelled rows (see ``kfold.assign_folds``).

Datasets declare their own grouped protocols with ``grouped_protocol`` in their folder
(``ferbench/datasets/<name>/protocols.py``); the merged sets' live here:

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


def grouped_protocol(name: str, description: str, dataset: str, classes: tuple[int, ...], k: int = 5) -> Protocol:
    """Register a protocol declared as data: subject-grouped stratified ``k``-fold over one
    dataset's rows labelled with one of ``classes`` (fold f+1 validates when fold f tests)."""
    return register(Protocol(name, description, (dataset,), grouped_plan(dataset, classes), _params(k)))


grouped_protocol(
    "global",
    "Global merged RGB-D set (CalD3r/MenD3s + BU-3DFE + Bosphorus), 7 classes, subject-grouped stratified 5-fold",
    "global",
    SEVEN,
)
