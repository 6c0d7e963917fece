"""Cross-dataset protocol: train on one dataset (or several, merged), test on another.

``train``: comma-separated dataset names; ``test``: one dataset name (both are card names of the
``--data`` directories). The classes are the intersection of the labels observed in the train
sets (together) and in the test set; rows of other classes do not take part. Optional
``train_splits`` / ``test_splits`` restrict rows to some ``source_split`` values (comma list,
case-insensitive; empty = all rows). Val: a subject-disjoint, stratified ``val_fraction`` of the
training rows (seeded). Subject ids are namespaced per dataset, so train and test never share
one; image duplicates across datasets (FER+ *is* FER2013) are caught by the verifier.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import FerbenchError
from .base import TEST, TRAIN, VAL, Inputs, Plan, Protocol, Source, in_classes, np_col, plan_rows, register, stream
from .kfold import carve, group_codes


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def _rows(src: Source, splits: str, classes: tuple[int, ...] | None) -> np.ndarray:
    mask = np_col(src.table, "label", -1) >= 0
    if splits:
        wanted = pa.array([s.lower() for s in _names(splits)])
        mask &= pc.is_in(pc.utf8_lower(pc.fill_null(src.table["source_split"], "")), value_set=wanted).to_numpy(zero_copy_only=False)
    if classes is not None:
        mask &= in_classes(np_col(src.table, "label", -1), classes)
    return mask


def _observed(src: Source, splits: str) -> set[int]:
    labels = np_col(src.table, "label", -1)
    return set(np.unique(labels[_rows(src, splits, None)]).tolist())


def _cross(inputs: Inputs, seed: int, params: dict[str, Any]) -> Plan:
    train_names, test_name = _names(params["train"]), params["test"].strip()
    if not train_names or not test_name:
        raise FerbenchError("cross needs train=NAME[,NAME...] and test=NAME")
    if test_name in train_names:
        raise FerbenchError(f"cross: {test_name!r} is both a train and the test dataset")
    unused = sorted(set(inputs.sources) - set(train_names) - {test_name})
    if unused:
        raise FerbenchError(f"cross: dataset(s) {unused} given but not named in train= or test=")
    train = [inputs.get(n) for n in train_names]
    test = inputs.get(test_name)
    seen = set().union(*(_observed(s, params["train_splits"]) for s in train))
    classes = tuple(sorted(seen & _observed(test, params["test_splits"])))
    if len(classes) < 2:
        raise FerbenchError(f"cross: train and test share fewer than 2 classes ({classes})")
    parts = [plan_rows(s, _rows(s, params["train_splits"], classes)) for s in train]
    test_rows = plan_rows(test, _rows(test, params["test_splits"], classes))
    rows = pa.concat_tables(parts + [test_rows])
    role = np.concatenate([np.full(sum(p.num_rows for p in parts), TRAIN), np.full(test_rows.num_rows, TEST)]).astype(np.int8)
    order = pc.sort_indices(rows, [("sample_id", "ascending")])
    rows, role = rows.take(order), role[order.to_numpy()]
    if params["val_fraction"] > 0:
        tr = np.flatnonzero(role == TRAIN)
        sub = rows.take(pa.array(tr))
        labels = np_col(sub, "label_canonical")
        val = carve(labels, group_codes(sub["subject_id"]), params["val_fraction"], stream(seed, "cross", "val"))
        role[tr[val]] = VAL
    return Plan(rows, role[None, None, :], classes, {"train": train_names, "test": test_name})


register(
    Protocol(
        "cross",
        "cross-dataset: train on train=A[,B...] (merged), test on test=C, over the classes both sides have",
        (),
        _cross,
        {"train": "", "test": "", "train_splits": "", "test_splits": "", "val_fraction": 0.1},
    )
)
