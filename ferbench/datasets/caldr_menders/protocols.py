"""CalD3r & MenD3s protocols, declared as data.

* ``caldr_menders7`` / ``caldr_menders6``: CalD3r + MenD3s, 7 classes, and 6 without surprise
  (the dataset paper's setting), subject-grouped stratified 5-fold. (The public reference code
  used a sample-level KFold, which puts one subject's pictures in train and test.)
"""

from __future__ import annotations

from ...protocols.grouped import grouped_protocol
from ...protocols.official import SEVEN

grouped_protocol(
    "caldr_menders7", "CalD3r + MenD3s, 7 classes, subject-grouped stratified 5-fold", "caldr_menders", SEVEN
)
grouped_protocol(
    "caldr_menders6",
    "CalD3r + MenD3s, 6 classes (no surprise), subject-grouped stratified 5-fold",
    "caldr_menders",
    (0, 1, 2, 4, 5, 6),
)
