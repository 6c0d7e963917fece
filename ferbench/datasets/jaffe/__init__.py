"""JAFFE: everything ferbench knows about this dataset lives in this folder.

* ``loader.py`` the converter (``JAFFE``; its docstring is the dataset's specification: layout, label map, quirks, UNVERIFIED variants)
* ``layout.py`` the raw-layout writer the tests and ``ferbench synth`` use (the reader's mirror)
* ``synth.py`` the synthetic world written in this layout
* ``protocols.py`` its protocols, declared as data
* ``fixture.py`` the contract-test trees
"""

from .loader import JAFFE
from . import protocols, synth  # noqa: F401  (register)

__all__ = ["JAFFE"]
