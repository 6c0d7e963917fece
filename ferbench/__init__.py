"""ferbench: one trustworthy benchmark out of the scattered facial-expression-recognition datasets.

The Python API (``ferbench.api``; each function is also a ``ferbench`` command)::

    import ferbench as fb

    fb.convert("caldr_menders", "raw/caldr_menders", "data/caldr_menders")   # raw copy → dataset directory
    fb.open("data/caldr_menders").card                                      # card, schema, rows
    fb.split("caldr_menders6", ["data/caldr_menders"], "cm6.parquet")       # protocol → verified manifest
    fold = fb.load_fold("cm6.parquet", fold=0)                              # datasets.DatasetDict
    fb.export_fold("cm6.parquet", "folds/cm6-f0", fold=0)                   # datasets.load_dataset("folds/cm6-f0")
    records = fb.run("recipe.yaml", ["train.epochs=1"], folds=[0])          # RunRecords, with metrics
    boards = fb.leaderboard(["runs"])                                       # rankings per protocol

Every name is imported on first use, so ``import ferbench`` stays fast.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

from .version import __version__

#: Public name → the module that defines it (imported on first access).
_LAZY: dict[str, str] = {
    "convert": "ferbench.api",
    "open": "ferbench.api",
    "info": "ferbench.api",
    "merge": "ferbench.api",
    "split": "ferbench.api",
    "load_manifest": "ferbench.api",
    "load_fold": "ferbench.api",
    "export_fold": "ferbench.api",
    "run": "ferbench.api",
    "evaluate": "ferbench.api",
    "load_model": "ferbench.api",
}
#: API names that are also submodules (``ferbench.leaderboard``: ingest, rank, render): the name is the
#: submodule, made callable as the API function of the same name (``fb.leaderboard(runs)``).
_CALLABLE_MODULES = ("leaderboard", "submit")

# ``open`` is left out so that ``from ferbench import *`` never shadows the builtin.
__all__ = ["__version__", *(name for name in _LAZY if name != "open"), *_CALLABLE_MODULES]

if TYPE_CHECKING:
    from .api import convert, evaluate, export_fold, info, leaderboard, load_fold, load_manifest, load_model, merge, open, run, split, submit  # noqa: F401


def __getattr__(name: str) -> Any:
    import importlib

    if name in _CALLABLE_MODULES:  # importing it binds it here (made callable on the way, see _Package)
        return importlib.import_module(f"{__name__}.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, *_CALLABLE_MODULES})


class _CallableModule(types.ModuleType):
    """A submodule that is also the API function of its name: ``fb.leaderboard(runs)`` calls
    ``ferbench.api.leaderboard``; ``fb.leaderboard.rank`` etc. stay the module's."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        import importlib

        return getattr(importlib.import_module("ferbench.api"), self.__name__.rpartition(".")[2])(*args, **kwargs)


class _Package(types.ModuleType):
    """The package: however a submodule in ``_CALLABLE_MODULES`` is imported, the import system binds
    it here with ``setattr``; it is made callable then, so ``fb.leaderboard(...)`` never depends on
    what imported it first."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _CALLABLE_MODULES and type(value) is types.ModuleType:
            value.__class__ = _CallableModule
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
