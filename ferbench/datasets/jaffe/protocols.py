"""JAFFE's protocols, declared as data.

* ``jaffe7``: the 7 classes (neutral included), subject-grouped stratified 10-fold. JAFFE has
  10 posers, so each fold holds out exactly one poser: leave-one-poser-out (fold f+1 validates
  when fold f tests).
* ``jaffe6``: the same without neutral (the 6 basic emotions).
"""

from __future__ import annotations

from ...protocols.grouped import grouped_protocol
from ...protocols.official import SEVEN

grouped_protocol(
    "jaffe7",
    "JAFFE, 7 classes (neutral included), subject-grouped stratified 10-fold: with 10 posers, leave-one-poser-out",
    "jaffe",
    SEVEN,
    k=10,
)
grouped_protocol(
    "jaffe6",
    "JAFFE, 6 classes (no neutral), subject-grouped stratified 10-fold: with 10 posers, leave-one-poser-out",
    "jaffe",
    (1, 2, 3, 4, 5, 6),
    k=10,
)
