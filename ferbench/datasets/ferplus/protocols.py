"""FER+'s protocol, declared as data.

* ``ferplus``: the FER2013 splits with FER+'s majority-vote labels (rows without a majority
  are left out), 8 classes.
"""

from __future__ import annotations

from ...protocols.official import EIGHT, FER_SPLITS, official_protocol

official_protocol(
    "ferplus", "FER+ official splits (FER2013Train/Valid/Test), majority-vote labels, 8 classes", "ferplus", FER_SPLITS, EIGHT
)
