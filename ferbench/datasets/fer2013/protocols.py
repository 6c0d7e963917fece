"""FER2013's protocols, declared as data.

* ``fer2013``: Training → train, PublicTest → val, PrivateTest → test; 7 classes. The
  msambare folder variant keeps PublicTest/PrivateTest apart by file-name prefix, which the
  converter writes to ``source_split``.
* ``fer2013-holdout``: the stratified 64/16/20 train/val/test hold-out some reports draw from all
  35,887 rows. FER2013 has no subject ids, so it is stratified by label only (seeded).
"""

from __future__ import annotations

from ...protocols.base import Protocol, register
from ...protocols.official import FER_SPLITS, SEVEN, fer2013_holdout_plan, official_protocol

official_protocol(
    "fer2013", "FER2013 official: Training / PublicTest (val) / PrivateTest (test), 7 classes", "fer2013", FER_SPLITS, SEVEN
)
register(
    Protocol(
        "fer2013-holdout",
        "FER2013 stratified 64/16/20 train/val/test hold-out over all rows (no subjects: label-stratified), 7 classes",
        ("fer2013",),
        fer2013_holdout_plan,
        {"train": 0.64, "val": 0.16, "test": 0.20},
    )
)
