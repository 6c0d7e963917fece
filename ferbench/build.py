"""Raw directory → loader → validated rows → Parquet shards + build report, written atomically.

Items are sorted by ``sample_id`` (never file-system order) and cut into blocks of a fixed
number of items. Worker processes load, check, hash and write each block as Parquet files of
bounded size (``ferbench.shards``) into a temporary sibling directory; the builder only tallies faults, counts and
content-hash streams, names the files in order and renames the directory into place when everything
succeeded. The encoded image bytes are read once and written once. Converting the same raw data
twice gives byte-identical shards and the same fingerprint, whatever the number of workers.

Faults, not failures: every image a row stores is validated in full in the worker
(``imageio.verify_image``; ``decode_check=False`` / ``--no-decode-check`` leaves only the
loaders' cheap header checks) and normalised where the schema says so (each kind of change is
a note of the build report); a file the loader cannot read (a dangling or looping link, a
permission or I/O error) is one fault of its sample, never the end of the conversion.

Outputs are guarded (``ferbench.converted``): OUT may not be, hold or sit inside the raw input;
``overwrite`` replaces only a directory ferbench wrote; the whole conversion holds OUT's lock,
from the existence check to the atomic rename, so a second conversion to the same OUT stops at
once with an error. Killed conversions leave nothing behind that matters: workers die with
their parent (Linux ``PR_SET_PDEATHSIG`` plus a parent-pid check), a SIGTERM makes the parent
kill its workers, remove its temporary directory and exit with status 143, and the temporary
directory of a SIGKILLed one is removed by the next writer of the same OUT.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import json
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections import Counter, deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa

from . import __version__
from .converted import (
    DATA_DIR,
    DatasetCard,
    check_replaceable,
    finish,
    guard_output,
    output_lock,
    remove_stale,
    shard_name,
    staged,
)
from .datasets.base import DATASETS, DatasetLoader, Fault, Item, Report
from .errors import ConversionError, FerbenchError, SampleError
from .fingerprint import ContentHash, hash_obj, source_hash
from .imageio import verify_image
from .schema import SCHEMA_VERSION, make_schema
from .shards import (
    ROW_GROUP_BYTES,
    ROW_GROUP_ROWS,
    SHARD_BYTES,
    BuildResult,
    Cuts,
    FileCutter,
    card_counts,
    dataset_fingerprint,
    report_head,
)
from .synth import SYNTHETIC_MARKER


@dataclass
class _Job:
    """Everything a worker needs, handed over once (inherited on fork): blocks are then named by
    their index alone, so no item is pickled per task."""

    loader: DatasetLoader
    schema: pa.Schema
    cuts: Cuts
    items: list[Item]
    directory: Path
    decode_check: bool = True

    @property
    def blocks(self) -> int:
        return -(-len(self.items) // self.cuts.block_items)

    def block(self, index: int) -> list[Item]:
        size = self.cuts.block_items
        return self.items[index * size : (index + 1) * size]


_JOB: _Job | None = None
_PARENT: int | None = None


def _init_worker(job: _Job, parent: int | None = None) -> None:
    """Set up a process that converts blocks. In a pool worker (``parent`` given): SIGTERM
    kills it and Ctrl-C is left to the builder, and it dies with its parent."""
    global _JOB, _PARENT
    _JOB = job
    if parent is not None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _PARENT = parent
        _die_with_parent(parent)


#: ``prctl`` option: the signal a process gets when its parent (the thread that forked it) dies.
_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    """SIGKILL this process when its parent dies (Linux), and exit now if it already has."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


@dataclass
class _Block:
    """What converting one block of items gave: its Parquet files (in row order), its faults (in
    item order), its rows' ``ContentHash`` streams, per row the facts the builder counts, and
    the images normalised (change, file)."""

    files: list[str] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    streams: dict[str, bytes] = field(default_factory=dict)
    meta: list[tuple[str | None, int | None, str | None]] = field(default_factory=list)
    changes: list[tuple[str, str]] = field(default_factory=list)


def _convert_block(index: int) -> _Block:
    """Load, check, hash and write block ``index`` of the job's items as Parquet files.

    Runs in a worker process: the rows never travel back to the builder, only what it counts.
    Files are cut per row, so their bytes depend on the items alone, not on who converted them.
    """
    assert _JOB is not None
    if _PARENT is not None and os.getppid() != _PARENT:
        os._exit(1)  # orphaned: the builder is gone
    loader, schema, items = _JOB.loader, _JOB.schema, _JOB.block(index)
    block, names = _Block(), tuple(schema.names)
    files = FileCutter(_JOB.directory, f"block-{index:06d}", schema, _JOB.cuts)
    for item in items:
        try:
            value = loader.load(item)
            row = _complete(value, item, loader, names)
            if _JOB.decode_check:
                _verify_images(row, item, block)
        except SampleError as exc:
            row = exc.row if exc.row is not None else item.row
            block.faults.append(Fault(exc.kind, exc.reason, exc.file or item.source, row))
            continue
        except OSError as exc:  # a file the loader could not read: this sample's fault only
            kind = "bad-link" if exc.errno == 40 else "unreadable-file"
            reason = f"cannot read {_relative(exc.filename, loader) or 'a file'}: {exc.strerror or exc}"
            block.faults.append(Fault(kind, reason, item.source, item.row))
            continue
        block.meta.append((row["source_split"], row["label"], row["subject_id"]))
        files.add(row)
    block.files = files.close()
    block.streams = {name: b"".join(pieces) for name, pieces in files.streams.items()}
    return block


def _verify_images(row: dict[str, Any], item: Item, block: _Block) -> None:
    """Validate the row's images in full; normalise its ``rgb`` image where the policy says so."""
    for column in ("rgb", "depth"):
        value = row.get(column)
        if value is None or not value.get("bytes"):
            continue
        try:
            checked = verify_image(value["bytes"], item.source, role=column)
        except SampleError as exc:
            raise SampleError(exc.kind, f"{column} image: {exc.reason}" if column != "rgb" else exc.reason, exc.file, item.row) from None
        if checked.change is not None:
            row[column] = {**value, "bytes": checked.data}
            block.changes.append((f"{column} {checked.change}", item.source))


def _relative(filename: Any, loader: DatasetLoader) -> str | None:
    if not filename:
        return None
    path = os.fsdecode(filename)
    try:
        return Path(path).relative_to(loader.root).as_posix()
    except ValueError:
        return path


def _converted_blocks(job: _Job, workers: int) -> Iterator[tuple[int, _Block]]:
    """(number of items, block) for consecutive blocks of the job's items, in order.

    Blocks are a fixed number of items, so the files do not depend on the number of workers.
    Worker processes write them; at most ``2 * workers + 1`` blocks are in flight, and leaving
    early (``--strict``, an interrupt, a signal) kills the workers and drops the blocks not yet
    written.
    """
    if workers <= 1 or job.blocks <= 1:
        _init_worker(job)
        yield from ((len(job.block(i)), _convert_block(i)) for i in range(job.blocks))
        return
    ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    pa.array([0])  # pyarrow imports pandas on first use (~0.25 s): once here, not in every forked worker
    gc.freeze()  # forked workers' collections then never walk (and copy) the builder's objects
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(job, os.getpid()))
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
    except BaseException:
        _kill_workers(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        gc.unfreeze()


@contextlib.contextmanager
def _collection_paused() -> Iterator[None]:
    """No cyclic garbage collection while a scan builds its item list: the list holds no cycles,
    and the full collections its growth triggers cost about a sixth of the scan at 20k items."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _kill_workers(pool: ProcessPoolExecutor) -> None:
    """SIGKILL a pool's worker processes (their blocks are abandoned, their files removed with
    the temporary directory): leaving must not wait for blocks nobody will use."""
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        with contextlib.suppress(Exception):
            process.kill()


class Terminated(SystemExit):
    """The conversion was stopped by SIGTERM; its exit status is 128 + the signal number."""


@contextlib.contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """While converting (main thread only), SIGTERM raises ``Terminated``: the builder then
    kills its workers and removes its temporary directory on the way out. A second SIGTERM
    during that clean-up is ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        signal.signal(signum, signal.SIG_IGN)
        raise Terminated(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# -- builder side -------------------------------------------------------------------------------
def converter_fingerprint(loader: DatasetLoader, decode_check: bool = True) -> str:
    return hash_obj(
        {
            "dataset": loader.name,
            "version": loader.version,
            "schema": SCHEMA_VERSION,
            "options": loader.opts,
            "code": source_hash(*loader.fingerprint_sources(), sys.modules[__name__]),
            **({} if decode_check else {"decode_check": False}),
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
    full = dict.fromkeys(names)  # schema order, every column; then the row's values (C loops)
    full.update(row)
    return full


@functools.lru_cache(maxsize=16)
def _known(names: tuple[str, ...]) -> frozenset[str]:
    return frozenset(names)


def convert(
    name: str,
    raw_dir: str | Path,
    out_dir: str | Path,
    *,
    strict: bool = False,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    decode_check: bool = True,
    follow_external_links: bool = False,
    **options: Any,
) -> BuildResult:
    """Convert the raw copy of dataset ``name`` into a dataset directory at ``out_dir``
    (``ferbench.converted`` describes the layout).

    ``out_dir`` may not be, hold or sit inside ``raw_dir`` (``OutputError``, nothing touched);
    an existing one is replaced only with ``overwrite`` and only if ferbench wrote it. The
    conversion holds ``out_dir``'s lock from that check to the final rename: a second
    conversion to the same place fails at once. ``decode_check=False`` skips the full image
    validation (``--no-decode-check``); ``follow_external_links`` lets raw files be symbolic
    links to places outside ``raw_dir`` (otherwise each is a ``bad-link`` fault).

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
    loader.follow_external_links = follow_external_links
    out = Path(out_dir)
    guard_output(out, raw_dir)
    try:
        with _stop_on_sigterm(), output_lock(out):
            check_replaceable(out, overwrite)
            return _convert_locked(loader, raw_dir, out, strict, workers, overwrite, progress, decode_check, t0)
    except Terminated:
        print(f"ferbench convert: terminated by a signal; nothing written to {out}", file=sys.stderr)
        raise


def _convert_locked(
    loader: DatasetLoader,
    raw_dir: str | Path,
    out: Path,
    strict: bool,
    workers: int | None,
    overwrite: bool,
    progress: bool,
    decode_check: bool,
    t0: float,
) -> BuildResult:
    """``convert`` once ``out``'s lock is held and the output checked."""
    name = loader.name
    report = Report(strict=strict)
    stale = remove_stale(out)
    if stale:
        report.note(f"removed {len(stale)} temporary folder(s) an interrupted write of {out.name} left: {', '.join(stale[:3])}")
    layout = loader.detect()
    workers = workers or os.cpu_count() or 1
    items: list[Item] = []
    try:
        with _collection_paused():
            items = sorted(loader.scan(report), key=lambda it: it.sample_id)
        dupes = [a.sample_id for a, b in zip(items, items[1:]) if a.sample_id == b.sample_id]
        if dupes:
            raise FerbenchError(f"{name}: loader produced duplicate sample_ids, e.g. {dupes[:3]}")
        t_scan = time.perf_counter() - t0

        synthetic = (Path(raw_dir) / SYNTHETIC_MARKER).exists()
        conv_fp = converter_fingerprint(loader, decode_check)
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

        with staged(out, overwrite) as tmp:
            content = ContentHash()
            files: list[str] = []
            rows_meta: list[tuple[str | None, int | None, str | None]] = []
            changes: Counter = Counter()
            first_change: dict[str, str] = {}
            cuts = Cuts(loader.block_items, ROW_GROUP_ROWS, ROW_GROUP_BYTES, SHARD_BYTES)
            job = _Job(loader, schema, cuts, items, tmp / DATA_DIR, decode_check)
            bar = _progress(len(items), f"convert {name}", progress)
            with contextlib.closing(_converted_blocks(job, workers)) as blocks:
                for n, block in blocks:
                    bar.update(n)
                    for fault in block.faults:
                        report.fault(fault.kind, fault.reason, fault.file, fault.row)
                    for change, file in block.changes:
                        changes[change] += 1
                        first_change.setdefault(change, file)
                    content.update(block.streams)
                    rows_meta += block.meta
                    files += block.files
            bar.close()
            for change, count in sorted(changes.items()):
                report.note(f"{count} {change.partition(' ')[0]} image(s) normalised, {change.partition(' ')[2]} (first: {first_change[change]})")
            if not decode_check:
                report.note("--no-decode-check: images were not decoded, only their headers and end markers checked")
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
                fingerprint=dataset_fingerprint(content),
                converter_fingerprint=conv_fp,
                options=loader.opts,
                synthetic=synthetic,
                num_rows=len(rows_meta),
                null_labels=sum(1 for _, label, _ in rows_meta if label is None),
                shards=tuple(shards),
                counts=card_counts(rows_meta),
                column_hashes=content.column_digests(),
                description=loader.description(),
                homepage=loader.homepage,
                license=loader.license,
                citation=loader.citation,
            )
            build_report = {
                **report_head(card),
                "raw_dir": str(Path(raw_dir).resolve()),
                "items_scanned": len(items),
                "faults_total": sum(report.kinds.values()),
                "fault_kinds": dict(sorted(report.kinds.items())),
                "faults": [f.__dict__ for f in report.faults],
                "notes": report.notes,
                "seconds": {"scan": round(t_scan, 3), "total": round(time.perf_counter() - t0, 3)},
                "workers": workers,
                "decode_check": decode_check,
                "follow_external_links": loader.follow_external_links,
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


def _progress(total: int, desc: str, enabled: bool):
    """A bar on a terminal, a line with rate and ETA every 30 s in a log (``ferbench.ui.Progress``)."""
    from .ui import Progress

    return Progress(total, desc, "img", enabled=enabled)


__all__ = ["BuildResult", "Report", "convert"]
