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

Raw files are listed and read through the helpers here (``raw_files``, ``usable_file``,
``read_raw``), which treat symbolic links one way for every dataset: a link to a file inside
the raw directory is read like the file; a dangling link, a link loop and (unless the user
passed ``--follow-external-links``) a link to a place outside the raw directory are each one
``bad-link`` fault of that file, never the end of the scan. Links to folders are followed as
before (a folder link pointing outside the raw directory makes its files external only if they
are links themselves).
"""

from __future__ import annotations

import errno
import os
import stat
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterable, Iterator

import pyarrow as pa

from ..errors import ConversionError, DatasetNotFoundError, FerbenchError, SampleError
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
    #: Read raw files that are symbolic links to places outside ``root`` (``--follow-external-links``).
    follow_external_links: bool = False

    def __init__(self, root: str | Path, **options: Any):
        self.root = Path(root)
        #: ``root`` as a string ending in the path separator: raw paths are ``_root_prefix + rel``.
        self._root_prefix = os.path.join(os.fspath(self.root), "")
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

    # -- raw files and links ---------------------------------------------------------------------
    def link_problem(self, path: str | Path) -> str | None:
        """Why the symbolic link at ``path`` may not be read as a raw file (dangling, a loop, or
        outside the raw directory unless ``follow_external_links``), or None when it may."""
        try:
            os.stat(path)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return "symbolic link loop"
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                return f"dangling symbolic link (to {_readlink(path)!r}, which does not exist)"
            return f"unreadable symbolic link ({exc.strerror})"
        if not self.follow_external_links:
            target, top = os.path.realpath(path), os.path.realpath(self.root)
            if os.path.commonpath([target, top]) != top:
                return f"symbolic link to {target}, outside the raw directory (pass --follow-external-links to read it)"
        return None

    def usable_file(self, entry: os.DirEntry | Path, report: Report) -> bool:
        """True for a regular file, or a link ``link_problem`` accepts to one; a bad link is a
        ``bad-link`` fault (False). Folders and other entries: False, no fault."""
        path = Path(entry.path) if isinstance(entry, os.DirEntry) else entry
        try:
            if not (entry.is_symlink() if isinstance(entry, os.DirEntry) else path.is_symlink()):
                return entry.is_file(follow_symlinks=False) if isinstance(entry, os.DirEntry) else path.is_file()
        except OSError:
            return False
        problem = self.link_problem(path)
        if problem is not None:
            report.fault("bad-link", problem, self.rel(path))
            return False
        return path.is_file()

    def raw_files(self, top: Path, report: Report, skip: frozenset[str] = frozenset({"__MACOSX"})) -> Iterator[Path]:
        """Usable files under ``top`` in sorted path order (hidden files and folders and those
        named in ``skip`` left out); bad links are reported (``usable_file``), never raised."""
        for dirpath, dirnames, _ in os.walk(top):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in skip)
            try:
                with os.scandir(dirpath) as it:
                    entries = sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
            except OSError:
                continue
            for entry in entries:
                if entry.name not in dirnames and self.usable_file(entry, report):
                    yield Path(entry.path)

    def read_scanned(self, rel: str) -> bytes:
        """``read_raw`` of a file the scan listed: one that has vanished since is a
        ``missing-image`` fault."""
        try:
            return self.read_raw(rel)
        except FileNotFoundError:
            raise SampleError("missing-image", "image vanished after the scan", file=rel) from None

    def read_raw(self, rel: str, first: int = 1 << 16) -> bytes:
        """The bytes of the raw file at ``rel`` (relative to ``root``), in one ``read`` of
        ``first`` bytes when it is that short. A link ``link_problem`` refuses raises
        ``SampleError`` ``bad-link``; a missing plain file raises ``FileNotFoundError`` (the
        loader names that fault); another ``OSError`` (a folder, say) becomes the builder's
        ``unreadable-file``. Something that is not a regular file (a FIFO, a device) is an
        ``unreadable-file`` ``SampleError``: it is opened without blocking and checked with
        ``fstat`` when the first read comes back empty or full, which is what a device or an
        idle FIFO gives. A partial first read is taken as a whole short file without that
        system call (one of the four, open, fstat, read and close, per small file); only a FIFO
        some process is writing into, or a terminal, could slip through there, and its bytes
        then fail the loader's own checks."""
        path = self._root_prefix + rel if isinstance(rel, str) and not rel.startswith("/") else os.path.join(self.root, rel)
        try:
            fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ELOOP or not _NOFOLLOW:
                raise
            problem = self.link_problem(path)  # the last component is a link (or a loop)
            if problem is not None:
                raise SampleError("bad-link", problem, file=rel) from None
            fd = os.open(path, os.O_RDONLY | _NONBLOCK)
        try:
            data = os.read(fd, first)
            if (not data or len(data) == first) and not stat.S_ISREG(os.fstat(fd).st_mode):
                raise SampleError("unreadable-file", "not a regular file", file=rel)
            if len(data) == first:
                data += b"".join(iter(lambda: os.read(fd, 1 << 20), b""))
        finally:
            os.close(fd)
        return data


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
            if not e.name.startswith(".") and e.name not in prune and is_dir_entry(e)
        )
    return None


#: Open without following a final symbolic link (so that links are checked first), where known.
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
#: Never block opening a FIFO or device that sits where a raw file should be.
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


def _readlink(path: str | Path) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return "?"


def is_dir_entry(entry: os.DirEntry) -> bool:
    """``entry.is_dir()`` (links followed), False for a link loop or an unreadable entry."""
    try:
        return entry.is_dir()
    except OSError:
        return False


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
