"""CalD3r & MenD3s protocols, declared as data.

* ``caldr_menders7`` / ``caldr_menders6``: CalD3r + MenD3s, 7 classes, and 6 without surprise
  (the dataset paper's setting), subject-grouped stratified 5-fold. (The public reference code
  used a sample-level KFold, which puts one subject's pictures in train and test.)
* ``caldr_menders7-published``: that reference split as published (sample-level KFold(5, shuffle,
  seed), no val), leaky by design and stated so; for reproducing its numbers, never for ranking.
"""

from __future__ import annotations

from ...protocols.grouped import grouped_protocol
from ...protocols.official import SEVEN
from ...protocols.published import published_protocol

grouped_protocol(
    "caldr_menders7", "CalD3r + MenD3s, 7 classes, subject-grouped stratified 5-fold", "caldr_menders", SEVEN
)
grouped_protocol(
    "caldr_menders6",
    "CalD3r + MenD3s, 6 classes (no surprise), subject-grouped stratified 5-fold",
    "caldr_menders",
    (0, 1, 2, 4, 5, 6),
)

# As published (report 003's reference code): sample-level KFold(5, shuffle=True, random_state=42).
published_protocol(
    "caldr_menders7-published",
    "CalD3r + MenD3s, 7 classes, sample-level KFold(5, shuffle=True, random_state=seed) as in report 003 (seed 42 there)",
    "caldr_menders",
    SEVEN,
)
