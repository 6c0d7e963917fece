"""Raw directory → loader → validated rows → Parquet shards + build report, written atomically.

Items are sorted by ``sample_id`` (never file-system order) and cut into blocks of a fixed
number of items. Worker processes load, check, hash and write each block as Parquet files of
bounded size into a temporary sibling directory; the builder only tallies faults, counts and
content-hash streams, names the files in order and renames the directory into place when everything
succeeded. The encoded image bytes are read once and written once. Converting the same raw data
twice gives byte-identical shards and the same fingerprint, whatever the number of workers.
"""

from __future__ import annotations

import contextlib
import functools
import json
import multiprocessing as mp
import os
import sys
import time
from collections import Counter, defaultdict, deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import __version__
from .converted import DATA_DIR, DatasetCard, finish, shard_name, staged
from .datasets.base import DATASETS, DatasetLoader, Fault, Item, Report
from .errors import ConversionError, FerbenchError, SampleError
from .fingerprint import ContentHash, hash_obj, source_hash
from .schema import IMAGE_TYPE, SCHEMA_VERSION, make_schema, validate
from .synth import SYNTHETIC_MARKER
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
class _Cuts:
    """How rows are cut into files: blocks of ``block_items`` consecutive items (one worker task
    each), row groups of ``group_rows`` rows or ``group_bytes`` image bytes, a new file once one
    holds ``file_bytes`` image bytes."""

    block_items: int
    group_rows: int
    group_bytes: int
    file_bytes: int


@dataclass
class _Job:
    """Everything a worker needs, handed over once (inherited on fork): blocks are then named by
    their index alone, so no item is pickled per task."""

    loader: DatasetLoader
    schema: pa.Schema
    cuts: _Cuts
    items: list[Item]
    directory: Path

    @property
    def blocks(self) -> int:
        return -(-len(self.items) // self.cuts.block_items)

    def block(self, index: int) -> list[Item]:
        size = self.cuts.block_items
        return self.items[index * size : (index + 1) * size]


_JOB: _Job | None = None


def _init_worker(job: _Job) -> None:
    global _JOB
    _JOB = job


@dataclass
class _Block:
    """What converting one block of items gave: its Parquet files (in row order), its faults (in
    item order), its rows' ``ContentHash`` streams and, per row, the facts the builder counts."""

    files: list[str] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    streams: dict[str, bytes] = field(default_factory=dict)
    meta: list[tuple[str | None, int | None, str | None]] = field(default_factory=list)


def _convert_block(index: int) -> _Block:
    """Load, check, hash and write block ``index`` of the job's items as Parquet files.

    Runs in a worker process: the rows never travel back to the builder, only what it counts.
    Files are cut per row, so their bytes depend on the items alone, not on who converted them.
    """
    assert _JOB is not None
    loader, schema, items = _JOB.loader, _JOB.schema, _JOB.block(index)
    block, names = _Block(), tuple(schema.names)
    files = _FileCutter(_JOB.directory, f"block-{index:06d}", schema, _JOB.cuts)
    for item in items:
        try:
            value = loader.load(item)
        except SampleError as exc:
            row = exc.row if exc.row is not None else item.row
            block.faults.append(Fault(exc.kind, exc.reason, exc.file or item.source, row))
            continue
        row = _complete(value, item, loader, names)
        block.meta.append((row["source_split"], row["label"], row["subject_id"]))
        files.add(row)
    block.files = files.close()
    block.streams = {name: b"".join(pieces) for name, pieces in files.streams.items()}
    return block


class _FileCutter:
    """Writes rows into ``<stem>-NNN.parquet`` files: a row group closes after ``group_rows`` rows
    or the row that brings it to ``group_bytes`` image bytes, a file after the row that brings it
    to ``file_bytes``. Collects the rows' ``ContentHash`` streams on the way."""

    def __init__(self, directory: Path, stem: str, schema: pa.Schema, cuts: _Cuts):
        self.dir, self.stem, self.schema, self.cuts = directory, stem, schema, cuts
        self.options = parquet_options(schema)
        self.writer: pq.ParquetWriter | None = None
        self.rows: list[dict[str, Any]] = []
        self.nbytes = self.group_bytes = 0
        self.files: list[str] = []
        self.streams: defaultdict[str, list[bytes]] = defaultdict(list)

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        size = _image_bytes(row)
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
        table = pa.Table.from_batches([_to_batch(self.rows, self.schema)])
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


def _to_batch(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.RecordBatch:
    """Rows → one Arrow batch, column by column. A list<list<…>> value (landmarks) may be a 2-D
    numpy array (points × coordinates): far cheaper to hash and convert than Python floats."""
    columns = []
    for f in schema:
        values = [row[f.name] for row in rows]
        if f.type == IMAGE_TYPE:
            columns.append(_image_array(values))
        elif any(isinstance(v, np.ndarray) for v in values):
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


def _converted_blocks(job: _Job, workers: int) -> Iterator[tuple[int, _Block]]:
    """(number of items, block) for consecutive blocks of the job's items, in order.

    Blocks are a fixed number of items, so the files do not depend on the number of workers.
    Worker processes write them; at most ``2 * workers + 1`` blocks are in flight, and leaving
    early (``--strict``, an interrupt) cancels the blocks not yet started.
    """
    if workers <= 1 or job.blocks <= 1:
        _init_worker(job)
        yield from ((len(job.block(i)), _convert_block(i)) for i in range(job.blocks))
        return
    ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    pa.array([0])  # pyarrow imports pandas on first use (~0.25 s): once here, not in every forked worker
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(job,))
    try:
        pending: deque[tuple[int, Future]] = deque()
        for i in range(job.blocks):
            pending.append((len(job.block(i)), pool.submit(_convert_block, i)))
            if len(pending) > 2 * workers:
                n, future = pending.popleft()
                yield n, future.result()
        while pending:
            n, future = pending.popleft()
            yield n, future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# -- builder side -------------------------------------------------------------------------------
def converter_fingerprint(loader: DatasetLoader) -> str:
    return hash_obj(
        {
            "dataset": loader.name,
            "version": loader.version,
            "schema": SCHEMA_VERSION,
            "options": loader.opts,
            "code": source_hash(*loader.fingerprint_sources(), sys.modules[__name__]),
        }
    )


def _complete(row: dict[str, Any], item: Item, loader: DatasetLoader, names: list[str]) -> dict[str, Any]:
    """A loaded row with every schema column (missing ones null), its dataset and canonical label."""
    row.setdefault("dataset", loader.name)
    if row.get("sample_id") != item.sample_id:
        raise FerbenchError(f"{loader.name}.load gave sample_id {row.get('sample_id')!r} for item {item.sample_id!r}")
    if "label" not in row:
        raw = row.get("label_raw")
        row["label"] = None if raw is None else loader.canonical(raw)
    if not row.keys() <= _known(names):
        unknown = sorted(set(row) - set(names))
        raise FerbenchError(f"{loader.name}.load returned unknown columns {unknown}")
    return {name: row.get(name) for name in names}


@functools.lru_cache(maxsize=16)
def _known(names: tuple[str, ...]) -> frozenset[str]:
    return frozenset(names)


def _image_bytes(row: dict[str, Any]) -> int:
    return sum(len(v["bytes"] or b"") for k in ("rgb", "depth") if (v := row.get(k)) is not None)


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


def _counts(rows_meta: Iterable[tuple[str | None, int | None, str | None]]) -> dict[str, Any]:
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


def convert(
    name: str,
    raw_dir: str | Path,
    out_dir: str | Path,
    *,
    strict: bool = False,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    **options: Any,
) -> BuildResult:
    """Convert the raw copy of dataset ``name`` into a dataset directory at ``out_dir``
    (``ferbench.converted`` describes the layout).

    A conversion that fails with ``ConversionError`` (no sample could be converted, a fault
    under ``strict``, an unreadable annotation file) leaves no dataset at ``out_dir`` (nor
    replaces an existing one) but writes what it found to the sibling file
    ``<out_dir>.build_report.json`` (``failure_report_path``): ``"status": "failed"``, the error,
    the fault kinds with counts and the faults themselves. The error message names the fault
    kinds, the first few faults (file and reason) and that file. A later successful conversion
    to the same ``out_dir`` removes a stale failure report.
    """
    t0 = time.perf_counter()
    loader = DATASETS.get(name)(raw_dir, **options)
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise FerbenchError(f"{out} exists; pass --overwrite to replace it")
    layout = loader.detect()
    report = Report(strict=strict)
    workers = workers or os.cpu_count() or 1
    items: list[Item] = []
    try:
        items = sorted(loader.scan(report), key=lambda it: it.sample_id)
        dupes = [a.sample_id for a, b in zip(items, items[1:]) if a.sample_id == b.sample_id]
        if dupes:
            raise FerbenchError(f"{name}: loader produced duplicate sample_ids, e.g. {dupes[:3]}")
        t_scan = time.perf_counter() - t0

        synthetic = (Path(raw_dir) / SYNTHETIC_MARKER).exists()
        conv_fp = converter_fingerprint(loader)
        meta = {
            "dataset": loader.name,
            "dataset_title": loader.title,
            "dataset_version": loader.version,
            "layout": layout,
            "label_map": loader.label_map,
            "converter": type(loader).__module__,
            "converter_version": __version__,
            "converter_fingerprint": conv_fp,
            "options": loader.opts,
            "synthetic": synthetic,
            "homepage": loader.homepage,
            "license": loader.license,
            "citation": loader.citation,
            **loader.metadata(),
        }
        schema = make_schema(loader.extra_fields, meta)

        with staged(out) as tmp:
            content = ContentHash()
            files: list[str] = []
            rows_meta: list[tuple[str | None, int | None, str | None]] = []
            cuts = _Cuts(loader.block_items, ROW_GROUP_ROWS, ROW_GROUP_BYTES, SHARD_BYTES)
            job = _Job(loader, schema, cuts, items, tmp / DATA_DIR)
            bar = _progress(len(items), f"convert {name}", progress)
            with contextlib.closing(_converted_blocks(job, workers)) as blocks:
                for n, block in blocks:
                    bar.update(n)
                    for fault in block.faults:
                        report.fault(fault.kind, fault.reason, fault.file, fault.row)
                    content.update(block.streams)
                    rows_meta += block.meta
                    files += block.files
            bar.close()
            if not rows_meta:
                raise _NothingConverted(f"{name}: no sample could be converted from {raw_dir}")
            shards = [shard_name(i) for i in range(len(files))]
            for temp_name, shard in zip(files, shards):
                os.replace(tmp / DATA_DIR / temp_name, tmp / shard)
            card = DatasetCard(
                name=loader.name,
                title=loader.title,
                version=loader.version,
                schema_version=SCHEMA_VERSION,
                layout=layout,
                fingerprint=_fingerprint(content),
                converter_fingerprint=conv_fp,
                options=loader.opts,
                synthetic=synthetic,
                num_rows=len(rows_meta),
                null_labels=sum(1 for _, label, _ in rows_meta if label is None),
                shards=tuple(shards),
                counts=_counts(rows_meta),
                column_hashes=content.column_digests(),
                description=loader.description(),
                homepage=loader.homepage,
                license=loader.license,
                citation=loader.citation,
            )
            build_report = {
                **_report_head(card),
                "raw_dir": str(Path(raw_dir).resolve()),
                "items_scanned": len(items),
                "faults_total": sum(report.kinds.values()),
                "fault_kinds": dict(sorted(report.kinds.items())),
                "faults": [f.__dict__ for f in report.faults],
                "notes": report.notes,
                "seconds": {"scan": round(t_scan, 3), "total": round(time.perf_counter() - t0, 3)},
                "workers": workers,
            }
            finish(tmp, card, build_report, schema)
    except ConversionError as exc:
        raise _failed(exc, out, loader, layout, raw_dir, report, len(items), workers, t0) from exc
    failure_report_path(out).unlink(missing_ok=True)
    return BuildResult(out, card.num_rows, card.fingerprint, build_report)


#: How many faults a failed conversion's error message lists (the report holds them all).
SHOWN_FAULTS = 5


class _NothingConverted(ConversionError):
    """Every scanned item was faulty, or the scan found none."""


def failure_report_path(out_dir: str | Path) -> Path:
    """Where a failed ``convert`` to ``out_dir`` writes its build report: ``<out_dir>.build_report.json``."""
    out = Path(out_dir)
    return out.parent / f"{out.name}.build_report.json"


def _failed(
    exc: ConversionError,
    out: Path,
    loader: DatasetLoader,
    layout: str,
    raw_dir: str | Path,
    report: Report,
    items: int,
    workers: int,
    t0: float,
) -> ConversionError:
    """Write the failure report beside ``out``; the error to raise, naming the faults and the report."""
    total = sum(report.kinds.values())
    if isinstance(exc, _NothingConverted):
        found = f"{items} item(s) scanned, {total} fault(s) by kind {dict(sorted(report.kinds.items()))}"
        shown = [_describe(f) for f in report.faults[:SHOWN_FAULTS]]
        more = f" (first {len(shown)} of {total})" if total > len(shown) else ""
        message = f"{exc} ({found})" + (f"; faults{more}:\n  " + "\n  ".join(shown) if shown else "")
    else:
        message = str(exc)
    path = failure_report_path(out)
    failure = {
        "status": "failed",
        "error": message,
        "name": loader.name,
        "layout": layout,
        "num_rows": 0,
        "output": str(out),
        "raw_dir": str(Path(raw_dir).resolve()),
        "items_scanned": items,
        "faults_total": total,
        "fault_kinds": dict(sorted(report.kinds.items())),
        "faults": [f.__dict__ for f in report.faults],
        "notes": report.notes,
        "seconds": {"total": round(time.perf_counter() - t0, 3)},
        "workers": workers,
    }
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(failure, indent=2, sort_keys=True, default=str) + "\n")
        where = f"nothing written to {out}; build report: {path}"
    except OSError as err:
        where = f"nothing written to {out}; the build report could not be written to {path} ({err})"
    return ConversionError(f"{message}\n({where})")


def _describe(fault: Fault) -> str:
    where = (fault.file or "?") + (f" row {fault.row}" if fault.row is not None else "")
    return f"{where}: {fault.kind}: {fault.reason}"


def _fingerprint(content: ContentHash) -> str:
    """A dataset's fingerprint: its rows' content (in ``sample_id`` order) and the schema version."""
    return hash_obj({"schema": SCHEMA_VERSION, "content": content.hexdigest()})


def _report_head(card: DatasetCard) -> dict[str, Any]:
    return {k: getattr(card, k) for k in ("name", "layout", "fingerprint", "num_rows", "null_labels", "counts")}


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="img", disable=None if enabled else True, mininterval=0.5)


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
    fingerprint whichever way they were written.
    """
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise FerbenchError(f"{out} exists; pass --overwrite to replace it")
    with staged(out) as tmp:
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
                "fingerprint": _fingerprint(content),
                "num_rows": len(rows_meta),
                "null_labels": sum(1 for _, label, _ in rows_meta if label is None),
                "shards": tuple(shards),
                "counts": _counts(rows_meta),
                "column_hashes": content.column_digests(),
            }
        )
        finish(tmp, full, {**_report_head(full), **report}, schema)
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


__all__ = ["BuildResult", "Report", "convert", "write_dataset"]
