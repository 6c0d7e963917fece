"""Raw directory → loader → validated rows → Parquet shards + build report, written atomically.

Rows are converted in ``sample_id`` order (never file-system order), in worker processes, and
written in shards of bounded size to a temporary sibling directory that is renamed into place
only when everything succeeded. Converting the same raw data twice gives byte-identical shards
and the same fingerprint.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import sys
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from . import __version__
from .datasets import get_loader
from .datasets.base import DatasetLoader, Item
from .errors import ConversionError, FerbenchError, SampleError
from .fingerprint import RowHasher, hash_obj, source_hash
from .schema import CORE_NAMES, SCHEMA_VERSION, make_schema, validate

#: A raw root holding this file was written by ``ferbench synth``: its rows are marked synthetic.
SYNTHETIC_MARKER = "FERBENCH_SYNTHETIC"
DATASET_CARD = "dataset.json"
BUILD_REPORT = "build_report.json"
SHARD_ROWS = 20_000
SHARD_BYTES = 256 << 20
MAX_LISTED_FAULTS = 10_000


@dataclass
class Fault:
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


@dataclass
class BuildResult:
    out_dir: Path
    num_rows: int
    fingerprint: str
    report: dict[str, Any]


# -- worker side --------------------------------------------------------------------------------
_WORKER_LOADER: DatasetLoader | None = None


def _init_worker(loader: DatasetLoader) -> None:
    global _WORKER_LOADER
    _WORKER_LOADER = loader


def _load_one(item: Item) -> tuple[bool, Any]:
    assert _WORKER_LOADER is not None
    try:
        return True, _WORKER_LOADER.load(item)
    except SampleError as exc:
        return False, Fault(exc.kind, exc.reason, exc.file or item.source, exc.row if exc.row is not None else item.row)


def _loaded(loader: DatasetLoader, items: list[Item], workers: int) -> Iterator[tuple[bool, Any]]:
    if workers <= 1 or len(items) < 64:
        _init_worker(loader)
        yield from map(_load_one, items)
        return
    ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    chunk = max(1, min(256, len(items) // (workers * 8)))
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(loader,)) as pool:
        yield from pool.map(_load_one, items, chunksize=chunk)


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


def _complete(row: dict[str, Any], loader: DatasetLoader, names: list[str]) -> dict[str, Any]:
    row.setdefault("dataset", loader.name)
    if "label" not in row:
        raw = row.get("label_raw")
        row["label"] = None if raw is None else loader.canonical(raw)
    unknown = set(row) - set(names)
    if unknown:
        raise FerbenchError(f"{loader.name}.load returned unknown columns {sorted(unknown)}")
    return {name: row.get(name) for name in names}


def _row_bytes(row: dict[str, Any]) -> int:
    return sum(len(v["bytes"] or b"") for k in ("rgb", "depth") if (v := row.get(k)) is not None)


class _ShardWriter:
    def __init__(self, directory: Path, schema: pa.Schema):
        self.dir, self.schema = directory, schema
        self.rows: list[dict[str, Any]] = []
        self.nbytes = 0
        self.shards: list[str] = []

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        self.nbytes += _row_bytes(row)
        if len(self.rows) >= SHARD_ROWS or self.nbytes >= SHARD_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self.rows and self.shards:
            return
        table = pa.Table.from_pylist(self.rows, schema=self.schema)
        validate(table)
        name = f"part-{len(self.shards):05d}.parquet"
        pq.write_table(table, self.dir / name, row_group_size=1000, compression="zstd")
        self.shards.append(name)
        self.rows, self.nbytes = [], 0


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
    """Convert the raw copy of dataset ``name`` into canonical Parquet shards at ``out_dir``."""
    t0 = time.perf_counter()
    loader = get_loader(name)(raw_dir, **options)
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise FerbenchError(f"{out} exists; pass --overwrite to replace it")
    layout = loader.detect()
    report = Report(strict=strict)
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
        "converter": f"ferbench.datasets.{loader.name}",
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
    names = list(schema.names)

    workers = workers or os.cpu_count() or 1
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        writer = _ShardWriter(tmp, schema)
        hasher = RowHasher()
        rows_meta: list[tuple[str | None, int | None, str | None]] = []
        bar = _progress(len(items), f"convert {name}", progress)
        for ok, value in _loaded(loader, items, workers):
            bar.update(1)
            if not ok:
                report.fault(value.kind, value.reason, value.file, value.row)
                continue
            row = _complete(value, loader, names)
            hasher.update(row)
            rows_meta.append((row["source_split"], row["label"], row["subject_id"]))
            writer.add(row)
        bar.close()
        if not rows_meta:
            raise ConversionError(f"{name}: no sample could be converted from {raw_dir} (see faults: {dict(report.kinds)})")
        writer.flush()
        fingerprint = hash_obj({"schema": SCHEMA_VERSION, "rows": hasher.hexdigest(64)})
        card = {
            "name": loader.name,
            "title": loader.title,
            "version": loader.version,
            "schema_version": SCHEMA_VERSION,
            "layout": layout,
            "fingerprint": fingerprint,
            "converter_fingerprint": conv_fp,
            "options": loader.opts,
            "synthetic": synthetic,
            "num_rows": len(rows_meta),
            "null_labels": sum(1 for _, label, _ in rows_meta if label is None),
            "shards": writer.shards,
            "counts": _counts(rows_meta),
        }
        build_report = {
            **{k: card[k] for k in ("name", "layout", "fingerprint", "num_rows", "null_labels", "counts")},
            "raw_dir": str(Path(raw_dir).resolve()),
            "items_scanned": len(items),
            "faults_total": sum(report.kinds.values()),
            "fault_kinds": dict(sorted(report.kinds.items())),
            "faults": [f.__dict__ for f in report.faults],
            "notes": report.notes,
            "seconds": {"scan": round(t_scan, 3), "total": round(time.perf_counter() - t0, 3)},
            "workers": workers,
        }
        _write_json(tmp / DATASET_CARD, card)
        _write_json(tmp / BUILD_REPORT, build_report)
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return BuildResult(out, len(rows_meta), fingerprint, build_report)


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def _replace_dir(tmp: Path, out: Path) -> None:
    """Move a finished temp dir into place; an existing ``out`` is swapped out, then removed."""
    if out.exists():
        old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="img", disable=None if enabled else True, mininterval=0.5)


def read_card(data_dir: str | Path) -> dict[str, Any]:
    """The ``dataset.json`` of a converted dataset directory."""
    path = Path(data_dir) / DATASET_CARD
    if not path.exists():
        raise FerbenchError(f"{data_dir} is not a converted ferbench dataset (no {DATASET_CARD})")
    return json.loads(path.read_text())


def read_table(data_dir: str | Path, columns: list[str] | None = None) -> pa.Table:
    """All shards of a converted dataset as one Arrow table (schema metadata kept)."""
    card = read_card(data_dir)
    tables = [pq.read_table(Path(data_dir) / s, columns=columns) for s in card["shards"]]
    return pa.concat_tables(tables)


__all__ = ["BuildResult", "Report", "convert", "read_card", "read_table", "CORE_NAMES"]
