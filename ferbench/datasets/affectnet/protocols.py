"""AffectNet's protocols, declared as data.

* ``affectnet8`` / ``affectnet7``: the official validation set is the test set; a validation
  set of ``val_per_class`` (default 500) rows per class is drawn (seeded) from train. The
  7-class variant drops contempt. Ids 8–10 carry no label and never take part.
"""

from __future__ import annotations

from ...protocols.base import TEST, TRAIN
from ...protocols.official import EIGHT, SEVEN, official_protocol

SPLITS = {"train": TRAIN, "val": TEST}
official_protocol(
    "affectnet8",
    "AffectNet-8: official validation set as test, val = 500/class drawn from train (seeded)",
    "affectnet",
    SPLITS,
    EIGHT,
    val_per_class=500,
)
official_protocol(
    "affectnet7",
    "AffectNet-7 (no contempt): official validation set as test, val = 500/class drawn from train",
    "affectnet",
    SPLITS,
    SEVEN,
    val_per_class=500,
)
