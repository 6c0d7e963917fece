"""FER+: everything ferbench knows about this dataset lives in this folder.

* ``loader.py`` the converter (``FERPlus``; its docstring is the dataset's specification: layouts, label map, quirks, UNVERIFIED variants)
* ``synth.py`` the synthetic world written in this layout (the ``fer2013`` world plus a ``fer2013new.csv`` of votes; the writers are ``fer2013/layout.py``'s)
* ``protocols.py`` its protocols, declared as data
* ``fixture.py`` the contract-test fixture trees (a hand-checked replica, both headers)
"""

from .loader import FERPlus
from . import protocols, synth  # noqa: F401  (register)

__all__ = ["FERPlus"]
