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

Integrity: the card records each shard's size and a content digest per column. Opening checks
that every shard is there with its size (a renamed, missing or truncated shard is one clear
error); ``read`` recomputes the digests of the non-image columns it reads and refuses rows that
no longer match the card (a shard rewritten behind its back).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
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

LAYOUT_VERSION = 2
DATA_DIR = "data"
CARD_FILE = "ferbench.json"
REPORT_FILE = "build_report.json"
README_FILE = "README.md"
#: The card file of the first layout (shards beside it, no README).
LEGACY_CARD_FILE = "dataset.json"


#: A fingerprint is a lowercase hex digest; it names cache files, so nothing else is accepted.
_HEX = re.compile(r"[0-9a-f]{16,64}")


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


# -- writing ------------------------------------------------------------------------------------
@contextlib.contextmanager
def staged(out: Path) -> Iterator[Path]:
    """A temporary sibling of ``out`` to write a dataset into (shards under ``data/``): moved into
    place when the block succeeds, removed when it raises, so an interrupted build never leaves a
    partial dataset and never replaces a good one."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    (tmp / DATA_DIR).mkdir(parents=True)
    try:
        yield tmp
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _replace_dir(tmp: Path, out: Path) -> None:
    """Move a finished temp dir into place; an existing ``out`` is swapped out, then removed."""
    if out.exists():
        old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


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
