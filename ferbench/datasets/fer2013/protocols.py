"""FER2013's protocols, declared as data.

* ``fer2013``: Training → train, PublicTest → val, PrivateTest → test; 7 classes. The
  msambare folder variant keeps PublicTest/PrivateTest apart by file-name prefix, which the
  converter writes to ``source_split``. FER2013 holds pixel-identical faces across its three
  splits; the official split is what every paper uses, so the protocol declares them
  (``allow_exact_duplicates``): they are counted and every duplicated test/val sample listed in
  the verdict (``exact-duplicates-declared``), not refused.
* ``fer2013-dedup``: the official split with every PrivateTest (test) and PublicTest (val) image
  whose pixels equal a Training image's removed (and test images equal to a val image), so no
  test image was seen in training; the removed ids are in the manifest notes.
* ``fer2013-holdout``: the stratified 64/16/20 train/val/test hold-out some reports draw from all
  35,887 rows (``source_split=all``) or from one split: report 001 split the 28,709 Training rows
  with two stratified ``train_test_split`` calls (``source_split=Training``, ``split=two-stage``:
  18,373 / 4,594 / 5,742). FER2013 has no subject ids, so it is stratified by label only (seeded).
* ``fer2013-random-kfold``: image-level random 5-fold over the official rows (no subjects: not
  subject-leaky; exact duplicates are a stated leak).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow.compute as pc

from ...protocols.base import TEST, TRAIN, VAL, Inputs, Plan, Protocol, register
from ...protocols.hashes import dataset_hashes
from ...protocols.official import FER_SPLITS, SEVEN, fer2013_holdout_plan, official_plan
from ...protocols.published import random_kfold_protocol

register(
    Protocol(
        "fer2013",
        "FER2013 official: Training / PublicTest (val) / PrivateTest (test), 7 classes (cross-split pixel duplicates declared, listed)",
        ("fer2013",),
        official_plan("fer2013", FER_SPLITS, SEVEN),
        allow_exact_duplicates=True,
    )
)

_official = official_plan("fer2013", FER_SPLITS, SEVEN)


def _dedup(inputs: Inputs, seed: int, params: dict[str, Any]) -> Plan:
    p = _official(inputs, seed, params)
    roles = p.roles[0, 0]
    h = dataset_hashes(inputs.get("fer2013").path)
    pos = pc.index_in(p.rows["sample_id"], value_set=h["sample_id"])
    hashed = pos.is_valid().to_numpy(zero_copy_only=False)
    pix = h["pixel_hash"].to_numpy()[pc.fill_null(pos, 0).to_numpy(zero_copy_only=False)]
    seen = set(pix[hashed & (roles == TRAIN)].tolist())
    drop = hashed & (roles != TRAIN) & np.isin(pix, np.fromiter(seen, np.uint64, len(seen)))
    val_seen = np.isin(pix, pix[hashed & (roles == VAL) & ~drop])
    drop |= hashed & (roles == TEST) & val_seen
    removed = p.rows["sample_id"].filter(drop).to_pylist()
    keep = ~drop
    notes = {"removed_duplicates": len(removed), "removed_test": int((drop & (roles == TEST)).sum()),
             "removed_val": int((drop & (roles == VAL)).sum()), "removed_ids": removed}
    return Plan(p.rows.filter(keep), p.roles[:, :, keep], p.classes, notes)


register(
    Protocol(
        "fer2013-dedup",
        "FER2013 official split without the test/val images pixel-identical to a training (or, for test, a val) image, 7 classes",
        ("fer2013",),
        _dedup,
    )
)
register(
    Protocol(
        "fer2013-holdout",
        "FER2013 stratified 64/16/20 train/val/test hold-out over all rows or one source split (no subjects: "
        "label-stratified), 7 classes",
        ("fer2013",),
        fer2013_holdout_plan,
        {"train": 0.64, "val": 0.16, "test": 0.20, "source_split": "all", "split": "one-pass"},
    )
)
random_kfold_protocol("fer2013")
