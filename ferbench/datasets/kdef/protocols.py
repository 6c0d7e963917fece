"""KDEF's protocols, declared as data. KDEF has no official split, so both are subject-grouped
stratified 10-fold (fold f+1 validates when fold f tests); ``subject_id`` leaves the session out,
so both sessions of a person always share a fold.

* ``kdef7``: every angle (profiles included), 7 classes.
* ``kdef7-frontal``: the straight (``S``) photographs only, 7 classes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ...protocols.base import Inputs, Plan, Protocol, register, require_columns
from ...protocols.grouped import grouped_plan, grouped_protocol
from ...protocols.official import SEVEN

DATASET = "kdef"
FRONTAL = "S"
K = 10


def angle_plan(angles: tuple[str, ...], classes: tuple[int, ...]):
    """A plan function: ``grouped_plan`` over the rows shot at one of ``angles`` only."""
    grouped = grouped_plan(DATASET, classes)

    def plan(inputs: Inputs, seed: int, params: dict[str, Any]) -> Plan:
        src = inputs.get(DATASET)
        require_columns(src, "angle")
        shot = pc.fill_null(pc.is_in(src.table["angle"], value_set=pa.array(angles, pa.string())), False)
        kept = dataclasses.replace(src, table=src.table.filter(shot))
        return grouped(Inputs({**inputs.sources, DATASET: kept}), seed, params)

    return plan


grouped_protocol("kdef7", "KDEF, every angle, 7 classes, subject-grouped stratified 10-fold", DATASET, SEVEN, k=K)
register(
    Protocol(
        "kdef7-frontal",
        "KDEF, straight (S) photographs only, 7 classes, subject-grouped stratified 10-fold",
        (DATASET,),
        angle_plan((FRONTAL,), SEVEN),
        {"k": K, "repeats": 1, "val": "next-fold"},
        columns=("angle",),
    )
)
