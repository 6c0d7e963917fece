"""CalD3r & MenD3s: everything ferbench knows about this dataset lives in this folder.

* ``loader.py`` the converter (``CalD3rMenD3s``; its docstring is the dataset's specification: layouts, label map, quirks, UNVERIFIED variants)
* ``layout.py`` the raw-layout writer the tests and ``ferbench synth`` use (the reader's mirror)
* ``synth.py`` the synthetic world written in this layout
* ``protocols.py`` its protocols, declared as data
"""

from .loader import CalD3rMenD3s
from . import protocols, synth  # noqa: F401  (register)

__all__ = ["CalD3rMenD3s"]
