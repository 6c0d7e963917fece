"""FER+: everything ferbench knows about this dataset lives in this folder.

* ``loader.py`` the converter (``FERPlus``; its docstring is the dataset's specification: layouts, label map, quirks, UNVERIFIED variants)
* ``protocols.py`` its protocols, declared as data
"""

from .loader import FERPlus
from . import protocols  # noqa: F401  (register)

__all__ = ["FERPlus"]
