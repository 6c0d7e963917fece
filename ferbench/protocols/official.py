"""Protocols built on a dataset's own splits: FER2013, FER+, AffectNet, RAF-DB, AVFER.

* ``fer2013``: Training → train, PublicTest → val, PrivateTest → test; 7 classes. The
  msambare folder variant keeps PublicTest/PrivateTest apart by file-name prefix, which the
  converter writes to ``source_split``.
* ``fer2013-holdout``: the stratified 64/16/20 train/val/test hold-out some reports draw from all
  35,887 rows. FER2013 has no subject ids, so it is stratified by label only (seeded).
* ``ferplus``: the FER2013 splits with FER+'s majority-vote labels (rows without a majority
  are left out), 8 classes.
* ``affectnet8`` / ``affectnet7``: the official validation set is the test set; a validation
  set of ``val_per_class`` (default 500) rows per class is drawn (seeded) from train. The
  7-class variant drops contempt. Ids 8–10 carry no label and never take part.
* ``rafdb``: official train/test, 7 classes; a stratified ``val_fraction`` (default 0.1) of
  train becomes val (seeded).
* ``avfer``: the merged AVFER set's own train/val/test (``avfer_split``), 8 classes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import ABSENT, TEST, TRAIN, VAL, Inputs, Plan, Protocol, in_classes, np_col, plan_rows, register, split_roles, stream
from .kfold import per_class_draw, stratified_holdout

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


def _holdout_plan(inputs: Inputs, seed: int, params: dict[str, Any]) -> Plan:
    src = inputs.get("fer2013")
    labels = np_col(src.table, "label", -1)
    keep = in_classes(labels, SEVEN)
    fractions = (params["train"], params["val"], params["test"])
    roles = stratified_holdout(labels[keep], fractions, stream(seed, "fer2013-holdout"))
    return Plan(plan_rows(src, keep), roles[None, None, :], SEVEN)


def _carved_plan(dataset: str, splits: dict[str, int], classes: tuple[int, ...]):
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


register(
    Protocol(
        "fer2013",
        "FER2013 official: Training / PublicTest (val) / PrivateTest (test), 7 classes",
        ("fer2013",),
        official_plan("fer2013", FER_SPLITS, SEVEN),
    )
)
register(
    Protocol(
        "fer2013-holdout",
        "FER2013 stratified 64/16/20 train/val/test hold-out over all rows (no subjects: label-stratified), 7 classes",
        ("fer2013",),
        _holdout_plan,
        {"train": 0.64, "val": 0.16, "test": 0.20},
    )
)
register(
    Protocol(
        "ferplus",
        "FER+ official splits (FER2013Train/Valid/Test), majority-vote labels, 8 classes",
        ("ferplus",),
        official_plan("ferplus", FER_SPLITS, EIGHT),
    )
)
register(
    Protocol(
        "affectnet8",
        "AffectNet-8: official validation set as test, val = 500/class drawn from train (seeded)",
        ("affectnet",),
        _carved_plan("affectnet", {"train": TRAIN, "val": TEST}, EIGHT),
        {"val_per_class": 500},
    )
)
register(
    Protocol(
        "affectnet7",
        "AffectNet-7 (no contempt): official validation set as test, val = 500/class drawn from train",
        ("affectnet",),
        _carved_plan("affectnet", {"train": TRAIN, "val": TEST}, SEVEN),
        {"val_per_class": 500},
    )
)
register(
    Protocol(
        "rafdb",
        "RAF-DB basic: official train/test, 7 classes, val = stratified 10% of train (seeded)",
        ("rafdb",),
        _carved_plan("rafdb", {"train": TRAIN, "test": TEST}, SEVEN),
        {"val_fraction": 0.1},
    )
)
register(
    Protocol(
        "avfer",
        "AVFER merged set (FER2013 + CK+ peaks + AffectNet): its own train / val / AffectNet-only balanced test, 8 classes",
        ("avfer",),
        official_plan("avfer", {"train": TRAIN, "val": VAL, "test": TEST}, EIGHT, column="avfer_split"),
        columns=("avfer_split",),
    )
)
