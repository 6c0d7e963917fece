"""The loader contract every dataset module implements (data-first, like torchgeo's datasets).

A loader class carries its facts as attributes (name, version, homepage, licence, citation,
published layouts, label map, extra columns, options) and three methods:

* ``detect()`` names the published layout found under ``root`` or raises ``DatasetNotFoundError``;
* ``scan(report)`` lists the samples as light ``Item`` s (cheap: paths and parsed annotation
  rows), reporting faults it finds while parsing annotations;
* ``load(item)`` turns one item into a row dict (reads bytes, checks them); it runs in worker
  processes and raises ``SampleError`` for a bad sample. A ``list<list<float>>`` value such as
  landmarks may be a 2-D numpy array (points × coordinates), much cheaper than Python floats.

The builder (``ferbench.build``) does everything else: ordering, workers, shards, report,
fingerprint, atomic write.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from collections import Counter
from dataclasses import field
from typing import Any, ClassVar, Iterable

import pyarrow as pa

from ..errors import ConversionError, DatasetNotFoundError, FerbenchError
from ..params import coerce
from ..registry import Registry

MAX_LISTED_FAULTS = 10_000


@dataclass
class Fault:
    """One bad sample or annotation: what went wrong, where (file relative to the raw root, row)."""

    kind: str
    reason: str
    file: str | None = None
    row: int | None = None


@dataclass
class Report:
    """Faults found while scanning and loading. ``strict`` makes the first one fatal."""

    strict: bool = False
    faults: list[Fault] = field(default_factory=list)
    kinds: Counter = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    def fault(self, kind: str, reason: str, file: str | None = None, row: int | None = None) -> None:
        self.kinds[kind] += 1
        if len(self.faults) < MAX_LISTED_FAULTS:
            self.faults.append(Fault(kind, reason, file, row))
        if self.strict:
            where = f"{file}" + (f", row {row}" if row is not None else "")
            raise ConversionError(f"--strict: {kind} in {where}: {reason}")

    def note(self, text: str) -> None:
        """Something a user should know that is not a fault (e.g. an UNVERIFIED variant detected)."""
        self.notes.append(text)


@dataclass(frozen=True)
class Item:
    """One raw sample to convert. ``payload`` is whatever ``load`` needs (must pickle)."""

    sample_id: str
    source: str
    payload: Any = None
    row: int | None = None


@dataclass(frozen=True)
class Option:
    """A converter option (``ferbench convert NAME RAW -o key=value``)."""

    default: Any
    help: str
    choices: tuple[Any, ...] | None = None


class DatasetLoader:
    name: ClassVar[str]
    title: ClassVar[str]
    version: ClassVar[str]
    homepage: ClassVar[str]
    license: ClassVar[str]
    citation: ClassVar[str]
    layouts: ClassVar[dict[str, str]]
    #: raw label (as written in ``label_raw``) → canonical index, or None for "no emotion label".
    label_map: ClassVar[dict[str, int | None]]
    extra_fields: ClassVar[tuple[pa.Field, ...]] = ()
    options: ClassVar[dict[str, Option]] = {}

    def __init__(self, root: str | Path, **options: Any):
        self.root = Path(root)
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise FerbenchError(f"{self.name}: unknown option(s) {unknown}; known: {sorted(self.options)}")
        self.opts: dict[str, Any] = {k: o.default for k, o in self.options.items()}
        for key, value in options.items():
            spec = self.options[key]
            if spec.default is not None and not isinstance(value, type(spec.default)):
                value = coerce(value, type(spec.default))
            if spec.choices is not None and value not in spec.choices:
                raise FerbenchError(f"{self.name}: option {key}={value!r} not in {list(spec.choices)}")
            self.opts[key] = value

    # -- to implement -------------------------------------------------------------------------
    def detect(self) -> str:
        raise NotImplementedError

    def scan(self, report: Report) -> Iterable[Item]:
        raise NotImplementedError

    def load(self, item: Item) -> dict[str, Any]:
        raise NotImplementedError

    # -- optional hooks ---------------------------------------------------------------------
    @property
    def block_items(self) -> int:
        """Items per conversion block: one worker task, written as one or more shards. Large
        when items are cheap (encoded bytes passed through), small when each one is rendered or
        aligned, so that the work spreads over every worker. It may depend on the options, never
        on the machine: the shards must not depend on the number of workers."""
        return 2048

    def metadata(self) -> dict[str, Any]:
        """Extra entries for the schema's ``ferbench`` metadata (e.g. the depth unit)."""
        return {}

    def fingerprint_sources(self) -> tuple[Any, ...]:
        """Modules whose source code changes the converter fingerprint (the loader's by default)."""
        import sys

        return (sys.modules[type(self).__module__],)

    @classmethod
    def description(cls) -> str:
        """The first paragraph of the loader module's docstring (for the dataset card)."""
        import inspect
        import sys

        doc = inspect.getdoc(sys.modules[cls.__module__]) or cls.title
        return " ".join(doc.split("\n\n")[0].split())

    # -- helpers ----------------------------------------------------------------------------
    def not_found(self, missing: str) -> DatasetNotFoundError:
        return DatasetNotFoundError(type(self), self.root, missing)

    def canonical(self, raw: str) -> int | None:
        return self.label_map[raw]

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()


def find_dir(
    root: Path, name: str, max_depth: int = 3, prune: frozenset[str] = frozenset(), include_root: bool = True
) -> Path | None:
    """The shallowest directory called ``name`` under ``root`` (``root`` itself included unless
    ``include_root`` is false: for folders whose parent must lie inside root), or None.

    Breadth-first over directories only, in sorted order, never entering hidden directories or
    those named in ``prune`` (big image folders), so it stays cheap on a full dataset tree.
    """
    level = [root]
    for _ in range(max_depth + 1):
        for d in level:
            if d.name == name and (include_root or d != root):
                return d
        level = sorted(
            Path(e.path)
            for d in level
            for e in _scandir(d)
            if e.is_dir() and not e.name.startswith(".") and e.name not in prune
        )
    return None


def _scandir(path: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(path) as it:
            return list(it)
    except OSError:
        return []


#: Every dataset loader, by name. Each dataset folder registers its loader with
#: ``@register_dataset``; ``ferbench.datasets`` imports every folder.
DATASETS: Registry[type[DatasetLoader]] = Registry("dataset", populate=("ferbench.datasets",))


def register_dataset(cls: type[DatasetLoader]) -> type[DatasetLoader]:
    """Class decorator: register a loader under its ``name``."""
    return DATASETS.register(cls.name, cls)


@dataclass(frozen=True)
class Expected:
    """What converting one fixture tree must give (the contract test checks every field).

    Each dataset folder's ``fixture.py`` defines ``VARIANTS``: variant name → ``write(root) ->
    Expected``, a function that writes a faithful replica of one published layout (through the
    folder's ``layout.py`` writers) with planted faults, and says what must come out of it.
    """

    layout: str
    #: every converted sample_id → canonical label (None: kept without an emotion label)
    labels: dict[str, int | None]
    #: every planted fault as (kind, file relative to the raw root, row or None)
    faults: tuple[tuple[str, str, int | None], ...] = ()
    #: converter options (``-o key=value``) this variant is converted with
    options: dict[str, Any] = field(default_factory=dict)
    #: sample_id → subject_id, where the layout names subjects
    subjects: dict[str, str | None] | None = None
