"""One folder per dataset; importing this package registers each one's loader, protocols and
synthetic writer (one import line per dataset, like timm's ``models/__init__.py``).

``ferbench/datasets/<name>/`` holds the loader (``loader.py``), the raw-layout writer
(``layout.py``), the synthetic driver (``synth.py``), the protocols (``protocols.py``) and the
contract-test fixtures (``fixture.py``); ``base.py`` is the contract every loader implements.
"""

from .base import DATASETS, DatasetLoader, Fault, Item, Option, Report, register_dataset

from . import affectnet  # noqa: E402,F401
from . import bosphorus  # noqa: E402,F401
from . import bu3dfe  # noqa: E402,F401
from . import caldr_menders  # noqa: E402,F401
from . import ckplus  # noqa: E402,F401
from . import fer2013  # noqa: E402,F401
from . import ferplus  # noqa: E402,F401
from . import jaffe  # noqa: E402,F401
from . import kdef  # noqa: E402,F401
from . import rafdb  # noqa: E402,F401

get_loader = DATASETS.get
list_datasets = DATASETS.names

__all__ = ["DATASETS", "DatasetLoader", "Fault", "Item", "Option", "Report", "get_loader", "list_datasets", "register_dataset"]
