"""Exceptions with messages a user can act on."""

from __future__ import annotations

from pathlib import Path


class FerbenchError(Exception):
    """Base class of every error ferbench raises on purpose."""


class DatasetNotFoundError(FerbenchError):
    """The raw directory does not hold any published layout of the dataset.

    The message is built from the loader's own attributes: the expected layouts, what was
    missing, the licence and where to request the data.
    """

    def __init__(self, loader: type, root: str | Path, missing: str):
        layouts = "\n".join(f"  [{name}]\n" + _indent(tree, 4) for name, tree in loader.layouts.items())
        super().__init__(
            f"{loader.title} not found in {str(root)!r}: {missing}.\n"
            f"Expected one of these published layouts:\n{layouts}\n"
            f"Licence: {loader.license}\n"
            f"Request the data at: {loader.homepage}"
        )


class SampleError(FerbenchError):
    """One raw sample could not be converted; the builder reports it and goes on (or stops with --strict)."""

    def __init__(self, kind: str, reason: str, file: str | None = None, row: int | None = None):
        super().__init__(f"{kind}: {reason}")
        self.kind, self.reason, self.file, self.row = kind, reason, file, row


class ConversionError(FerbenchError):
    """A conversion stopped (a fault under --strict, or nothing convertible)."""


def _indent(text: str, n: int) -> str:
    pad = " " * n
    return "\n".join(pad + line for line in text.strip("\n").splitlines())
