"""The converted dataset directory: the one module that knows its layout, card and files.

Layout (what ``ferbench convert`` and ``ferbench merge`` write, atomically)::

    OUT/README.md           Hugging Face dataset card (YAML front matter + description)
    OUT/data/part-NNNNN.parquet   the rows, in sample_id order
    OUT/ferbench.json       the ferbench card (``DatasetCard``)
    OUT/build_report.json   faults, notes, timings

Every reader that expects a standard dataset directory works on it with no ferbench code:
``datasets.load_dataset(OUT)`` (the README's ``configs`` point at ``data/*.parquet`` and its
``dataset_info.features`` name the labels as ``ClassLabel``), ``pyarrow.dataset.dataset(OUT/data)``,
``pandas.read_parquet(OUT/data)``, DuckDB ``read_parquet('OUT/data/*.parquet')`` and timm's
``hfds/OUT``. Every later stage of ferbench (protocols, merges, training, ``info``, the hf
helpers) opens a dataset through ``open_dataset``; nothing else parses the card.

Directories written before this layout (``dataset.json`` and ``part-*.parquet`` at the top) are
still read; ``info`` says how to rebuild them.

Writing is guarded (``guard_output``, ``output_lock``, ``staged``): an output may not be, hold or
sit inside the raw input; ``overwrite`` replaces only a directory ferbench wrote (it holds a
card, ``ferbench.json`` or the first layout's ``dataset.json``) or an empty one; one writer at a
time holds ``.OUT.lock`` beside it (an ``fcntl`` lock, taken before the existence check and held
until the new directory is in place; a second writer stops at once with an error naming the
holder's pid, it never waits); the finished directory moves into place with one atomic
``renameat2`` (``RENAME_NOREPLACE`` for a new output, ``RENAME_EXCHANGE`` to replace one, after
checking again what is there). Temporary siblings ``.OUT.tmp-*`` / ``.OUT.old-*`` left by a
killed writer are removed by the next writer of OUT (it holds the lock, so none is live).

Integrity: the card records each shard's size and a content digest per column. Opening checks
that every shard is there with its size (a renamed, missing or truncated shard is one clear
error); ``read`` recomputes the digests of the non-image columns it reads and refuses rows that
no longer match the card (a shard rewritten behind its back).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import re
import shutil
import sys
import uuid
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from .dataset_card import render_readme
from .errors import FerbenchError
from .fingerprint import ContentHash
from .schema import IMAGE_TYPE, ferbench_metadata

try:
    import fcntl
except ImportError:  # not POSIX: no lock, the atomic rename still guards the swap
    fcntl = None  # type: ignore[assignment]

LAYOUT_VERSION = 2
DATA_DIR = "data"
CARD_FILE = "ferbench.json"
REPORT_FILE = "build_report.json"
README_FILE = "README.md"
#: The card file of the first layout (shards beside it, no README).
LEGACY_CARD_FILE = "dataset.json"


#: A fingerprint is a lowercase hex digest; it names cache files, so nothing else is accepted.
_HEX = re.compile(r"[0-9a-f]{16,64}")
#: The shard paths a card may list: relative ``.parquet`` paths of plain names inside the dataset
#: directory (``data/part-00000.parquet``), never ``..``, an absolute path or odd characters.
_SHARD = re.compile(r"(?:[A-Za-z0-9_][A-Za-z0-9_.-]*/)*[A-Za-z0-9_][A-Za-z0-9_.-]*\.parquet")


class DatasetDirError(FerbenchError):
    """A directory is not a (complete, unmodified) converted dataset."""


@dataclass(frozen=True)
class DatasetCard:
    """What ferbench knows about a converted or merged dataset (``ferbench.json``)."""

    name: str
    title: str
    version: str
    layout: str
    fingerprint: str
    num_rows: int
    shards: tuple[str, ...]  # paths relative to the dataset directory
    schema_version: str = ""
    layout_version: int = LAYOUT_VERSION
    converter_fingerprint: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    synthetic: bool = False
    null_labels: int = 0
    counts: dict[str, Any] = field(default_factory=dict)
    sources: list[dict[str, Any]] = field(default_factory=list)
    shard_bytes: tuple[int, ...] = ()
    column_hashes: dict[str, str] = field(default_factory=dict)
    description: str = ""
    homepage: str = ""
    license: str = ""
    citation: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any], where: str) -> "DatasetCard":
        known = {f.name for f in fields(cls)}
        kept = {k: v for k, v in data.items() if k in known}
        missing = [k for k in ("name", "fingerprint", "num_rows", "shards") if k not in kept]
        if missing:
            raise DatasetDirError(f"{where}: the card lacks {missing}; rebuild the dataset with ferbench convert")
        if not _HEX.fullmatch(str(kept["fingerprint"])):
            raise DatasetDirError(f"{where}: fingerprint {kept['fingerprint']!r} is not a hex digest; convert the raw data again")
        bad = [s for s in kept["shards"] if not isinstance(s, str) or not _SHARD.fullmatch(s)] if isinstance(kept["shards"], list) else [kept["shards"]]
        if bad:
            raise DatasetDirError(f"{where}: shard path(s) {bad[:3]!r} are not .parquet paths inside the dataset directory; convert the raw data again")
        if kept.get("converter_fingerprint") is not None and not _HEX.fullmatch(str(kept["converter_fingerprint"])):
            raise DatasetDirError(f"{where}: converter_fingerprint {kept['converter_fingerprint']!r} is not a hex digest; convert the raw data again")
        kept.setdefault("title", kept["name"])
        kept.setdefault("version", "")
        kept.setdefault("layout", "")
        kept.setdefault("layout_version", 1)
        kept["shards"] = tuple(kept["shards"])
        kept["shard_bytes"] = tuple(kept.get("shard_bytes", ()))
        return cls(**kept)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["shards"], out["shard_bytes"] = list(self.shards), list(self.shard_bytes)
        return out


@dataclass(frozen=True)
class ConvertedDataset:
    """An opened dataset directory: its card, shard files, schema and rows."""

    path: Path
    card: DatasetCard

    @property
    def legacy(self) -> bool:
        return self.card.layout_version < LAYOUT_VERSION

    @property
    def shard_paths(self) -> list[Path]:
        return [self.path / s for s in self.card.shards]

    def schema(self) -> pa.Schema:
        return pq.read_schema(self.shard_paths[0])

    def column_names(self) -> list[str]:
        return self.schema().names

    def metadata(self) -> dict[str, Any]:
        """The ``ferbench`` schema metadata (label map, depth unit, synthetic flag, ...)."""
        return ferbench_metadata(self.schema())

    def report(self) -> dict[str, Any]:
        path = self.path / REPORT_FILE
        return json.loads(path.read_text()) if path.exists() else {}

    def read(self, columns: list[str] | None = None, verify: bool = True) -> pa.Table:
        """The rows (in sample_id order) as one Arrow table, schema metadata kept. With ``verify``,
        the digests of the non-image columns read are checked against the card."""
        table = pa.concat_tables([pq.read_table(p, columns=columns) for p in self.shard_paths])
        if verify:
            self.check_columns(table)
        return table

    def check_columns(self, table: pa.Table) -> None:
        """Refuse ``table`` (read from this dataset) if a column's content differs from the card."""
        wanted = [n for n in table.column_names if n in self.card.column_hashes and table.schema.field(n).type != IMAGE_TYPE]
        if not wanted:
            return
        got = column_digests(table.select(wanted))
        changed = [n for n in wanted if got[n] != self.card.column_hashes[n]]
        if changed:
            raise DatasetDirError(
                f"{self.path}: column(s) {changed} no longer match the fingerprint {self.card.fingerprint} in "
                f"{CARD_FILE} (a shard was rewritten after conversion); convert the raw data again"
            )


def open_dataset(path: str | Path) -> ConvertedDataset:
    """Open a converted dataset directory (this layout or the first one) and check its shards."""
    root = Path(path)
    card_path = root / CARD_FILE
    if not card_path.exists():
        card_path = root / LEGACY_CARD_FILE
    if not card_path.exists():
        hint = "it does not exist" if not root.exists() else f"no {CARD_FILE}"
        raise DatasetDirError(f"{root} is not a converted ferbench dataset ({hint}); create one with ferbench convert")
    try:
        data = json.loads(card_path.read_text())
    except (OSError, ValueError) as exc:
        raise DatasetDirError(f"{card_path}: unreadable card ({exc}); convert the raw data again") from None
    if not isinstance(data, dict):
        raise DatasetDirError(f"{card_path}: not a ferbench card; convert the raw data again")
    card = DatasetCard.from_json(data, str(card_path))
    dataset = ConvertedDataset(root, card)
    _check_shards(dataset)
    return dataset


def _check_shards(dataset: ConvertedDataset) -> None:
    if not dataset.card.shards:
        raise DatasetDirError(f"{dataset.path}: the card lists no shard; convert the raw data again")
    sizes = dataset.card.shard_bytes or (None,) * len(dataset.card.shards)
    for shard, size in zip(dataset.card.shards, sizes):
        path = dataset.path / shard
        if not path.is_file():
            raise DatasetDirError(
                f"{dataset.path}: shard {shard} is missing (renamed or deleted); convert the raw data again"
            )
        if size is not None and path.stat().st_size != size:
            raise DatasetDirError(
                f"{dataset.path}: shard {shard} has {path.stat().st_size} bytes, the card says {size} "
                "(truncated or rewritten); convert the raw data again"
            )


def read_card(path: str | Path) -> DatasetCard:
    return open_dataset(path).card


def read_table(path: str | Path, columns: list[str] | None = None) -> pa.Table:
    """All rows of a converted dataset (see ``ConvertedDataset.read``)."""
    return open_dataset(path).read(columns)


def column_digests(table: pa.Table) -> dict[str, str]:
    """A content digest per top-level column (``ContentHash`` streams grouped by column)."""
    content = ContentHash()
    content.update_table(table)
    return content.column_digests()


# -- writing ----------------------------------------------------------------------------------------
class OutputError(FerbenchError):
    """An output directory that may not be written (inside the input, not ferbench's, busy)."""


def guard_output(out: str | Path, raw: str | Path | None = None, what: str = "the raw directory") -> None:
    """Refuse an output that is, holds or sits inside the input ``raw`` (links resolved; ``what``
    names it in the message): replacing it would delete the data it is made from. Touches nothing."""
    if raw is None:
        return
    o, r = Path(os.path.realpath(out)), Path(os.path.realpath(raw))
    where = "is" if o == r else "is inside" if o.is_relative_to(r) else "holds" if r.is_relative_to(o) else None
    if where is not None:
        raise OutputError(f"--out {out} {where} {what} {raw}; choose an output directory outside it")


def check_replaceable(out: Path, overwrite: bool) -> None:
    """Refuse to write ``out`` when something is there, unless ``overwrite`` and it is a dataset
    directory ferbench wrote (a card: ferbench.json or dataset.json) or an empty directory."""
    if not os.path.lexists(out):
        return
    if not overwrite:
        raise OutputError(f"{out} exists; pass --overwrite to replace it")
    why = _not_ferbench(out)
    if why is not None:
        raise OutputError(
            f"--overwrite replaces only a dataset directory ferbench wrote; {out} {why}: remove it yourself or choose another --out"
        )


def _not_ferbench(out: Path) -> str | None:
    """Why ``out`` is not a directory ferbench wrote (None when it is one, or is empty)."""
    if out.is_symlink():
        return "is a symbolic link"
    if not out.is_dir():
        return "is not a directory"
    if not any(out.iterdir()):
        return None
    for name in (CARD_FILE, LEGACY_CARD_FILE):
        card = out / name
        if card.is_file() and not card.is_symlink():
            try:
                data = json.loads(card.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(data, dict) and "fingerprint" in data and "shards" in data:
                return None
    return f"holds no ferbench card ({CARD_FILE})"


#: Output directories this process holds the lock of (absolute path → lock file descriptor).
_HELD: dict[str, int] = {}


def lock_path(out: Path) -> Path:
    return out.parent / f".{out.name}.lock"


@contextlib.contextmanager
def output_lock(out: str | Path) -> Iterator[None]:
    """Hold the write lock of ``out`` (re-entrant within a process): an ``fcntl.flock`` on
    ``.OUT.lock`` beside it, taken without waiting. Another holder → ``OutputError`` naming its
    pid. The lock file is removed on release (a killed holder's stays, and is reused)."""
    out = Path(out)
    key = os.path.abspath(out)
    if key in _HELD or fcntl is None:
        yield
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    path = lock_path(out)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            pid = f" (pid {holder})" if holder.isdigit() else ""
            raise OutputError(
                f"{out} is being written by another ferbench process{pid}; wait for it to finish or choose another --out"
            ) from None
        try:  # the previous holder may have removed the file between our open and flock
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _HELD[key] = fd
    try:
        yield
    finally:
        del _HELD[key]
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # still holding the lock: nobody else can be using this file
        os.close(fd)


def remove_stale(out: Path) -> list[str]:
    """Remove the temporary siblings (``.OUT.tmp-*``, ``.OUT.old-*``) a killed writer left; only
    call it holding ``out``'s lock. Returns their names."""
    prefixes = (f".{out.name}.tmp-", f".{out.name}.old-")
    try:
        names = [n for n in os.listdir(out.parent) if n.startswith(prefixes)]
    except FileNotFoundError:
        return []
    for name in names:
        path = out.parent / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return names


@contextlib.contextmanager
def staged(out: Path, overwrite: bool | None = None) -> Iterator[Path]:
    """A temporary sibling of ``out`` to write a dataset into (shards under ``data/``): moved into
    place when the block succeeds, removed when it raises, so an interrupted build never leaves a
    partial dataset and never replaces a good one. Holds ``out``'s lock throughout and removes
    what killed writers left. ``overwrite`` is checked again just before the move (``None``:
    replace whatever is there, the callers' own check having run)."""
    out = Path(out)
    with output_lock(out):
        remove_stale(out)
        tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
        (tmp / DATA_DIR).mkdir(parents=True)
        try:
            yield tmp
            if overwrite is not None:
                check_replaceable(out, overwrite)
            _replace_dir(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def _replace_dir(tmp: Path, out: Path) -> None:
    """Move a finished temp dir into place in one atomic rename: onto nothing (failing if
    something appeared meanwhile), or exchanged with the existing ``out``, which is then removed."""
    if not os.path.lexists(out):
        if not _rename2(tmp, out, _RENAME_NOREPLACE):
            if os.path.lexists(out):
                raise OutputError(f"{out} appeared while this dataset was written; nothing replaced")
            os.rename(tmp, out)
    elif _rename2(tmp, out, _RENAME_EXCHANGE):
        shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the replaced directory
    else:
        old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)


_RENAME_NOREPLACE, _RENAME_EXCHANGE = 1, 2
_AT_FDCWD = -100


def _rename2(src: Path, dst: Path, flags: int) -> bool:
    """``renameat2(src, dst, flags)``; False where the system or file system lacks it."""
    if _renameat2 is None:
        return False
    if _renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    if err == errno.EEXIST:
        raise OutputError(f"{dst} appeared while this dataset was written; nothing replaced")
    raise OSError(err, os.strerror(err), str(src), None, str(dst))


def _load_renameat2() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        func = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    func.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint)
    func.restype = ctypes.c_int
    return func


_renameat2 = _load_renameat2()


def finish(tmp: Path, card: DatasetCard, report: dict[str, Any], schema: pa.Schema) -> DatasetCard:
    """Write the card (with the shards' sizes), the build report and the README into ``tmp``."""
    sizes = tuple((tmp / s).stat().st_size for s in card.shards)
    card = DatasetCard(**{**card.__dict__, "shard_bytes": sizes})
    _write_json(tmp / CARD_FILE, card.to_json())
    _write_json(tmp / REPORT_FILE, report)
    (tmp / README_FILE).write_text(render_readme(card.to_json(), schema, report))
    return card


def shard_name(index: int) -> str:
    return f"{DATA_DIR}/part-{index:05d}.parquet"


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
