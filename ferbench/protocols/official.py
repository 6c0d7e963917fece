"""Protocols built on a dataset's own splits, and the factory datasets declare theirs with.

``official_protocol(name, description, dataset, splits, classes, **val)`` registers one: roles
come straight from the dataset's ``source_split`` (mapped case-insensitively), rows are limited
to a class set, and a validation set may be carved out of train (``val_per_class`` or
``val_fraction``, seeded). Each dataset folder declares its own (``fer2013``, ``ferplus``,
``affectnet8``/``affectnet7``, ``rafdb``); the merged AVFER set's lives here:

* ``avfer``: the merged AVFER set's own train/val/test (``avfer_split``), 8 classes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import FerbenchError
from .base import ABSENT, TEST, TRAIN, VAL, Inputs, Plan, Protocol, in_classes, np_col, plan_rows, register, split_roles, stream
from .kfold import per_class_draw, stratified_holdout, two_stage_holdout

SIX = (1, 2, 3, 4, 5, 6)
SEVEN = (0, 1, 2, 3, 4, 5, 6)
EIGHT = (0, 1, 2, 3, 4, 5, 6, 7)
FER_SPLITS = {"Training": TRAIN, "train": TRAIN, "PublicTest": VAL, "PrivateTest": TEST}


def official_plan(dataset: str, splits: dict[str, int], classes: tuple[int, ...], column: str = "source_split"):
    """A plan function: roles straight from a split column, rows limited to ``classes``."""

    def plan(inputs: Inputs, seed: int, params: dict[str, Any]) -> Plan:
        src = inputs.get(dataset)
        roles = split_roles(src.table[column], splits, dataset)
        keep = (roles != ABSENT) & in_classes(np_col(src.table, "label", -1), classes)
        return Plan(plan_rows(src, keep), roles[keep][None, None, :], classes)

    return plan


def fer2013_holdout_plan(inputs: Inputs, seed: int, params: dict[str, Any]) -> Plan:
    """Stratified train/val/test over the rows of ``source_split`` ("all", or one of FER2013's
    splits, e.g. report 001's "Training"); ``split``: "one-pass" (per-class fractions) or
    "two-stage" (test first, then val from the rest, with scikit-learn's sizes)."""
    src = inputs.get("fer2013")
    labels = np_col(src.table, "label", -1)
    keep = in_classes(labels, SEVEN)
    which = params["source_split"]
    if which != "all":
        if which not in FER_SPLITS:
            raise FerbenchError(f"fer2013-holdout: source_split={which!r} is not 'all' or one of {', '.join(FER_SPLITS)}")
        keep &= np.asarray(src.table["source_split"].to_pylist(), dtype=object) == which
    fractions = (params["train"], params["val"], params["test"])
    rng = stream(seed, "fer2013-holdout")
    if params["split"] == "two-stage":
        roles = two_stage_holdout(labels[keep], params["test"], params["val"] / (params["train"] + params["val"]), rng)
    elif params["split"] == "one-pass":
        roles = stratified_holdout(labels[keep], fractions, rng)
    else:
        raise FerbenchError(f"fer2013-holdout: split={params['split']!r} is not 'one-pass' or 'two-stage'")
    return Plan(plan_rows(src, keep), roles[None, None, :], SEVEN)


def carved_plan(dataset: str, splits: dict[str, int], classes: tuple[int, ...]):
    """Official train/test; val drawn from train: ``val_per_class`` rows per class or a ``val_fraction``."""
    base = official_plan(dataset, splits, classes)

    def plan(inputs: Inputs, seed: int, params: dict[str, Any]) -> Plan:
        p = base(inputs, seed, params)
        roles = p.roles[0, 0]
        labels = np_col(p.rows, "label_canonical")
        rng = stream(seed, dataset, "val")
        if "val_per_class" in params:
            val = per_class_draw(labels, roles == TRAIN, params["val_per_class"], rng)
        else:
            val = np.zeros(len(roles), bool)
            if params["val_fraction"] > 0:
                train = np.flatnonzero(roles == TRAIN)
                val[train] = stratified_holdout(labels[train], (1 - params["val_fraction"], params["val_fraction"], 0.0), rng) == VAL
        roles[val] = VAL
        return p

    return plan


def official_protocol(
    name: str, description: str, dataset: str, splits: dict[str, int], classes: tuple[int, ...], **val: float
) -> Protocol:
    """Register a protocol declared as data: a dataset's own splits (``splits`` maps its
    ``source_split`` values to roles), a class set, and optionally a validation set carved out
    of train (``val_per_class=N`` or ``val_fraction=f``, seeded)."""
    plan = carved_plan(dataset, splits, classes) if val else official_plan(dataset, splits, classes)
    return register(Protocol(name, description, (dataset,), plan, dict(val)))


register(
    Protocol(
        "avfer",
        "AVFER merged set (FER2013 + CK+ peaks + AffectNet): its own train / val / AffectNet-only balanced test, 8 classes",
        ("avfer",),
        official_plan("avfer", {"train": TRAIN, "val": VAL, "test": TEST}, EIGHT, column="avfer_split"),
        columns=("avfer_split",),
    )
)
