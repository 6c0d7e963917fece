"""Canonical rows → Parquet shards: how rows are cut into files and row groups, the writer
settings, and ``write_dataset`` for producers that already hold Arrow tables (merges, fixtures).

Encoded image bytes are stored as they are (no codec, dictionary or statistics); every other
column gets zstd. A shard's bytes depend on its rows alone, so the same rows always give the
same files.
"""

from __future__ import annotations

import operator
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .converted import DatasetCard, check_replaceable, finish, output_lock, shard_name, staged
from .errors import ConversionError, FerbenchError
from .fingerprint import ContentHash, hash_obj
from .schema import IMAGE_TYPE, SCHEMA_VERSION, validate


#: Conversion writes one or more files per block of ``loader.block_items`` consecutive items (in
#: sample_id order), a worker's task; a file closes at SHARD_BYTES of images. Merged datasets are
#: cut every SHARD_ROWS rows instead.
SHARD_ROWS = 20_000

SHARD_BYTES = 256 << 20

ROW_GROUP_ROWS = 1000

ROW_GROUP_BYTES = 64 << 20

@dataclass
class BuildResult:
    out_dir: Path
    num_rows: int
    fingerprint: str
    report: dict[str, Any]

# -- worker side --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cuts:
    """How rows are cut into files: blocks of ``block_items`` consecutive items (one worker task
    each), row groups of ``group_rows`` rows or ``group_bytes`` image bytes, a new file once one
    holds ``file_bytes`` image bytes."""

    block_items: int
    group_rows: int
    group_bytes: int
    file_bytes: int

class FileCutter:
    """Writes rows into ``<stem>-NNN.parquet`` files: a row group closes after ``group_rows`` rows
    or the row that brings it to ``group_bytes`` image bytes, a file after the row that brings it
    to ``file_bytes``. Collects the rows' ``ContentHash`` streams on the way."""

    def __init__(self, directory: Path, stem: str, schema: pa.Schema, cuts: Cuts):
        self.dir, self.stem, self.schema, self.cuts = directory, stem, schema, cuts
        self.options = parquet_options(schema)
        self.writer: pq.ParquetWriter | None = None
        self.rows: list[dict[str, Any]] = []
        self.nbytes = self.group_bytes = 0
        self.files: list[str] = []
        self.streams: defaultdict[str, list[bytes]] = defaultdict(list)

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        size = image_bytes(row)
        self.nbytes, self.group_bytes = self.nbytes + size, self.group_bytes + size
        if self.nbytes >= self.cuts.file_bytes:
            self._write_group()
            self._close_file()
        elif len(self.rows) == self.cuts.group_rows or self.group_bytes >= self.cuts.group_bytes:
            self._write_group()

    def close(self) -> list[str]:
        if self.rows:
            self._write_group()
        if self.writer is not None:
            self._close_file()
        return self.files

    def _write_group(self) -> None:
        table = pa.Table.from_batches([to_batch(self.rows, self.schema)])
        validate(table)
        for name, piece in ContentHash.streams(table).items():
            self.streams[name].append(piece)
        if self.writer is None:
            name = f"{self.stem}-{len(self.files):03d}.parquet"
            self.writer = pq.ParquetWriter(self.dir / name, self.schema, **self.options)
            self.files.append(name)
        self.writer.write_table(table, row_group_size=len(self.rows))
        self.rows, self.group_bytes = [], 0

    def _close_file(self) -> None:
        assert self.writer is not None
        self.writer.close()
        self.writer, self.nbytes = None, 0

def to_batch(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.RecordBatch:
    """Rows → one Arrow batch, column by column. A list<list<…>> value (landmarks) may be a 2-D
    numpy array (points × coordinates): far cheaper to hash and convert than Python floats."""
    columns = []
    by_column = zip(*map(operator.itemgetter(*schema.names), rows)) if rows else ([] for _ in schema)
    for f, values in zip(schema, by_column):
        values = list(values)
        if f.type == IMAGE_TYPE:
            columns.append(_image_array(values))
        elif pa.types.is_list(f.type) and any(isinstance(v, np.ndarray) for v in values):
            columns.append(_points_array(values, f.type))
        else:
            columns.append(pa.array(values, f.type))
    return pa.RecordBatch.from_arrays(columns, schema=schema)

def _image_array(values: list[dict[str, Any] | None]) -> pa.Array:
    """An image struct column from its values, built from its two child arrays (twice as fast
    as converting the dicts)."""
    present = [v if v is not None else {"bytes": None, "path": None} for v in values]
    return pa.StructArray.from_arrays(
        [pa.array([v["bytes"] for v in present], pa.binary()), pa.array([v["path"] for v in present], pa.string())],
        fields=list(IMAGE_TYPE),
        mask=pa.array([v is None for v in values]),
    )

def _points_array(values: list[Any], typ: pa.DataType) -> pa.Array:
    """A list<list<T>> column from 2-D numpy arrays (None → null; other values via ``pa.array``)."""
    if not all(v is None or (isinstance(v, np.ndarray) and v.ndim == 2) for v in values):
        return pa.array([list(v) if isinstance(v, np.ndarray) else v for v in values], typ)
    arrays = [np.empty((0, 0)) if v is None else v for v in values]
    points = np.array([len(a) for a in arrays], dtype=np.int64)
    widths = np.repeat([a.shape[1] for a in arrays], points)
    flat = np.concatenate([a.reshape(-1) for a in arrays])
    inner = pa.ListArray.from_arrays(
        pa.array(np.concatenate([[0], np.cumsum(widths)]).astype(np.int32)),
        pa.array(flat, typ.value_type.value_type),
    )
    mask = pa.array([v is None for v in values])
    return pa.ListArray.from_arrays(pa.array(np.concatenate([[0], np.cumsum(points)]).astype(np.int32)), inner, typ, mask=mask)

def image_bytes(row: dict[str, Any]) -> int:
    """Encoded image bytes a row holds (``rgb`` and ``depth``)."""
    n = 0
    for key in ("rgb", "depth"):
        value = row.get(key)
        if value is not None and value["bytes"]:
            n += len(value["bytes"])
    return n

#: Encoded image bytes are already compressed: shards store them as they are (no codec, no
#: dictionary, no min/max statistics); every other column gets zstd. Dictionary encoding is
#: kept for columns that repeat values (split, labels, names), not for unique ones (ids, paths)
#: nor floats, where trying it costs more time than the rest of the write.
_RAW_COLUMNS = ("rgb.bytes", "depth.bytes")

_UNIQUE_COLUMNS = ("sample_id", "rgb.path", "depth.path")

def parquet_options(schema: pa.Schema) -> dict[str, Any]:
    """``pq.ParquetWriter`` / ``pq.write_table`` settings of a shard with this schema."""
    leaves = [leaf for f in schema for leaf in _leaves(f.name, f.type)]
    return {
        "compression": {c: "none" if c in _RAW_COLUMNS else "zstd" for c, _ in leaves},
        "use_dictionary": [
            c for c, t in leaves if c not in _RAW_COLUMNS + _UNIQUE_COLUMNS and not pa.types.is_floating(t)
        ],
        "write_statistics": [c for c, _ in leaves if c not in _RAW_COLUMNS],
    }

def _leaves(prefix: str, typ: pa.DataType) -> Iterator[tuple[str, pa.DataType]]:
    """(Parquet column path, type) of an Arrow field's leaves: ``rgb.bytes``, ``landmarks.list.element.list.element``."""
    if pa.types.is_struct(typ):
        for i in range(typ.num_fields):
            yield from _leaves(f"{prefix}.{typ.field(i).name}", typ.field(i).type)
    elif pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_fixed_size_list(typ):
        yield from _leaves(f"{prefix}.list.element", typ.value_type)
    else:
        yield prefix, typ

def card_counts(rows_meta: Iterable[tuple[str | None, int | None, str | None]]) -> dict[str, Any]:
    by_split: dict[str, Counter] = defaultdict(Counter)
    subjects: set[str] = set()
    for split, label, subject in rows_meta:
        by_split[str(split)][str(label)] += 1
        if subject is not None:
            subjects.add(subject)
    return {
        "per_split_label": {s: dict(sorted(c.items())) for s, c in sorted(by_split.items())},
        "subjects": len(subjects),
    }

def dataset_fingerprint(content: ContentHash) -> str:
    """A dataset's fingerprint: its rows' content (in ``sample_id`` order) and the schema version."""
    return hash_obj({"schema": SCHEMA_VERSION, "content": content.hexdigest()})

def report_head(card: DatasetCard) -> dict[str, Any]:
    return {k: getattr(card, k) for k in ("name", "layout", "fingerprint", "num_rows", "null_labels", "counts")}

def write_dataset(
    tables: Iterable[pa.Table],
    schema: pa.Schema,
    out_dir: str | Path,
    card: dict[str, Any],
    report: dict[str, Any],
    *,
    overwrite: bool = False,
) -> BuildResult:
    """Write canonical Arrow tables, already in ``sample_id`` order, as a dataset directory.

    For producers that are not raw-data loaders (merged datasets, test fixtures): the tables are
    cast to ``schema``, validated, cut into shards and written atomically with a card (``card``'s
    fields plus the content-derived ones: fingerprint, counts, shards) and a build report. The
    fingerprint is ``convert``'s: the ``ContentHash`` of the rows, so the same rows give the same
    fingerprint whichever way they were written. ``out_dir`` is written under its lock and
    ``overwrite`` replaces only a directory ferbench wrote (``ferbench.converted``).
    """
    out = Path(out_dir)
    with output_lock(out):
        check_replaceable(out, overwrite)
        return _write_dataset(tables, schema, out, card, report, overwrite)


def _write_dataset(
    tables: Iterable[pa.Table], schema: pa.Schema, out: Path, card: dict[str, Any], report: dict[str, Any], overwrite: bool
) -> BuildResult:
    with staged(out, overwrite) as tmp:
        shards: list[str] = []
        content = ContentHash()
        rows_meta: list[tuple[str | None, int | None, str | None]] = []
        last_id: str | None = None
        for table in _rebatched(tables, schema):
            validate(table)
            ids = table.column("sample_id").to_pylist()
            if (last_id is not None and ids[0] <= last_id) or any(a >= b for a, b in zip(ids, ids[1:])):
                raise FerbenchError(f"{card.get('name')}: rows are not in strictly increasing sample_id order near {ids[0]!r}")
            last_id = ids[-1]
            rows_meta += zip(*(table.column(c).to_pylist() for c in ("source_split", "label", "subject_id")))
            name = shard_name(len(shards))
            pq.write_table(table, tmp / name, row_group_size=ROW_GROUP_ROWS, **parquet_options(schema))
            shards.append(name)
            content.update_table(table)
        if not shards:
            raise ConversionError(f"{card.get('name')}: no rows to write")
        full = DatasetCard(
            **{
                "title": card.get("name", ""),
                "version": "",
                "layout": "",
                "schema_version": SCHEMA_VERSION,
                **card,
                "fingerprint": dataset_fingerprint(content),
                "num_rows": len(rows_meta),
                "null_labels": sum(1 for _, label, _ in rows_meta if label is None),
                "shards": tuple(shards),
                "counts": card_counts(rows_meta),
                "column_hashes": content.column_digests(),
            }
        )
        finish(tmp, full, {**report_head(full), **report}, schema)
    return BuildResult(out, full.num_rows, full.fingerprint, report)

def _rebatched(tables: Iterable[pa.Table], schema: pa.Schema) -> Iterator[pa.Table]:
    """Tables cast to ``schema`` and regrouped into shards of at most SHARD_ROWS rows / ~SHARD_BYTES."""
    pending: list[pa.Table] = []
    rows = nbytes = 0
    for table in tables:
        table = table.select(schema.names).cast(schema)
        for batch in table.to_batches(max_chunksize=1000):
            pending.append(pa.Table.from_batches([batch], schema))
            rows, nbytes = rows + batch.num_rows, nbytes + batch.nbytes
            if rows >= SHARD_ROWS or nbytes >= SHARD_BYTES:
                yield pa.concat_tables(pending).combine_chunks()
                pending, rows, nbytes = [], 0, 0
    if pending:
        yield pa.concat_tables(pending).combine_chunks()
