"""KDEF (Karolinska Directed Emotional Faces): everything ferbench knows about this dataset lives
in this folder.

* ``loader.py`` the converter (``KDEF``; its docstring is the specification: layouts, names, label map, faults, UNVERIFIED variants)
* ``layout.py`` the raw-layout writer the tests and ``ferbench synth`` use (the reader's mirror)
* ``synth.py`` the synthetic world written in this layout
* ``protocols.py`` its protocols, declared as data
* ``fixture.py`` the contract-test fixture trees
"""

from .loader import KDEF
from . import protocols, synth  # noqa: F401  (register)

__all__ = ["KDEF"]
