"""One module per dataset; importing this package registers them all (one line each)."""

from ._registry import get_loader, list_datasets, register_dataset
from .base import DatasetLoader, Item, Option

from . import affectnet  # noqa: E402,F401
from . import rafdb  # noqa: E402,F401
from . import bosphorus  # noqa: E402,F401
from . import bu3dfe  # noqa: E402,F401
from . import caldr_menders  # noqa: E402,F401
from . import ckplus  # noqa: E402,F401
from . import fer2013  # noqa: E402,F401
from . import ferplus  # noqa: E402,F401

__all__ = ["DatasetLoader", "Item", "Option", "get_loader", "list_datasets", "register_dataset"]
