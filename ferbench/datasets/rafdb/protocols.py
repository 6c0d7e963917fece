"""RAF-DB's protocol, declared as data.

* ``rafdb``: official train/test, 7 classes; a stratified ``val_fraction`` (default 0.1) of
  train becomes val (seeded).
"""

from __future__ import annotations

from ...protocols.base import TEST, TRAIN
from ...protocols.official import SEVEN, official_protocol

official_protocol(
    "rafdb",
    "RAF-DB basic: official train/test, 7 classes, val = stratified 10% of train (seeded)",
    "rafdb",
    {"train": TRAIN, "test": TEST},
    SEVEN,
    val_fraction=0.1,
)
