"""Merged datasets built from converted ones: the generic machinery and ``merge()``.

A merged dataset is an ordinary dataset directory (same schema, card, fingerprint, build
report). Provenance is kept row by row: ``dataset`` stays the row's origin, ``sample_id`` and
``subject_id`` keep their origin namespace, ``source_split`` stays the origin's split, and every
origin-specific column is kept (union of the sources' columns, null elsewhere). Labels are
already canonical, so harmonising them means choosing the class set and, where a merge derives a
label, saying so in ``label_source``. The build report lists per-source counts, exclusions by
reason, and the published reference counts with the known reasons for any difference.

Each merge is a ``MergeSpec`` registered in ``MERGES`` by its own module (``global_.py``,
``avfer.py``), which the package ``__init__`` imports; rules that belong to one dataset (the CK+
peak frames, the Bosphorus AU rule) are declared in that dataset's folder.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .. import __version__
from ..converted import guard_output
from ..shards import BuildResult, write_dataset
from ..errors import FerbenchError
from ..protocols.base import Inputs, Source, load_inputs, resolve_params
from ..registry import Registry
from ..schema import CORE_NAMES, EMOTIONS, make_schema


@dataclass
class Selection:
    """What a merge takes from one source; arrays align with the source rows (sample_id order)."""

    keep: np.ndarray
    label: np.ndarray
    label_source: dict[int, str] = field(default_factory=dict)  # row index → new label_source
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    copies: np.ndarray | None = None
    excluded: Counter = field(default_factory=Counter)


@dataclass(frozen=True)
class MergeSpec:
    name: str
    title: str
    sources: tuple[str, ...]
    params: dict[str, Any]
    columns: tuple[str, ...]
    extra_fields: tuple[pa.Field, ...]
    select: Callable[[Inputs, int, dict[str, Any]], dict[str, Selection]]
    images: Callable[[Source, dict[str, Any]], "RowImages"]
    reference: dict[str, Any]
    require: tuple[str, ...]  # image columns a row must have (checked while streaming)
    metadata: Callable[[dict[str, "RowImages"], dict[str, Any]], dict[str, Any]] = lambda images, params: {}
    #: ``copy(row, k, seed, params)``: the k-th augmented copy of a row (for selections with ``copies``)
    copy: Callable[[dict[str, Any], int, int, dict[str, Any]], dict[str, Any]] | None = None


class RowImages:
    """Per-source image transform of a merge (identity by default).

    ``note`` describes the transform (schema metadata and build report); ``counts`` are tallied
    while rows stream through (build report only).
    """

    note: dict[str, Any] = {}

    def __init__(self, src: Source, params: dict[str, Any]):
        self.counts: Counter = Counter()

    def rgb(self, data: bytes) -> bytes:
        return data

    def depth(self, data: bytes) -> bytes:
        return data


#: The merges ``ferbench merge NAME`` knows, by name.
MERGES: Registry[MergeSpec] = Registry("merge", populate=("ferbench.merges",))


def register_merge(spec: MergeSpec) -> MergeSpec:
    return MERGES.register(spec.name, spec)


# -- the builder --------------------------------------------------------------------------------
def merge(name: str, data_dirs: list[str | Path], out_dir: str | Path, seed: int = 0, overwrite: bool = False, **params: Any) -> BuildResult:
    """Build merged dataset ``name`` from the converted source directories into ``out_dir``."""
    t0 = time.perf_counter()
    spec = MERGES.get(name)
    params = resolve_params(f"merge {name}", spec.params, params)
    for source in data_dirs:  # replacing a source would delete the data the merge is made from
        guard_output(out_dir, source, what="the source dataset")
    inputs = load_inputs(list(data_dirs), spec.columns)
    if set(inputs.sources) != set(spec.sources):
        raise FerbenchError(f"merge {name} needs exactly {list(spec.sources)}; got {sorted(inputs.sources)}")
    sels = spec.select(inputs, int(seed), params)
    if spec.copy is not None:  # copies see the merge's parameters
        spec = dataclasses.replace(spec, copy=functools.partial(spec.copy, params=params))
    images = {n: spec.images(inputs.sources[n], params) for n in spec.sources}
    schema = make_schema(_union_extras(inputs, spec), _metadata(spec, inputs, images, params, seed))
    per_source: dict[str, Any] = {}
    tables = _rows(spec, inputs, sels, images, schema, int(seed), per_source)
    card = {
        "name": spec.name,
        "title": spec.title,
        "version": "1",
        "layout": "merged",
        "synthetic": any(s.card.synthetic for s in inputs.sources.values()),
        "sources": [{"name": s.name, "fingerprint": s.card.fingerprint, "path": str(s.path)} for s in inputs.sources.values()],
        "seed": int(seed),
        "params": params,
    }
    report: dict[str, Any] = {"params": params, "seed": int(seed), "sources": per_source, "reference": spec.reference}
    tables = _then(tables, lambda: report.update(_summary(per_source, images, spec.reference, t0)))
    result = write_dataset(tables, schema, out_dir, card, report, overwrite=overwrite)
    return BuildResult(result.out_dir, result.num_rows, result.fingerprint, report)


def _then(items: Iterator[pa.Table], done: Callable[[], None]) -> Iterator[pa.Table]:
    """``items``, then ``done()`` once they are exhausted (before the writer writes its report)."""
    yield from items
    done()


def _union_extras(inputs: Inputs, spec: MergeSpec) -> tuple[pa.Field, ...]:
    fields: dict[str, pa.Field] = {}
    for src in inputs.sources.values():
        for f in src.data.schema():
            if f.name in CORE_NAMES:
                continue
            if f.name in fields and fields[f.name].type != f.type:
                raise FerbenchError(f"column {f.name!r} has type {fields[f.name].type} in one source and {f.type} in {src.name}")
            fields[f.name] = f.with_nullable(True)
    for f in spec.extra_fields:
        fields[f.name] = f
    return tuple(fields.values())


def _metadata(spec: MergeSpec, inputs: Inputs, images: dict[str, RowImages], params: dict[str, Any], seed: int) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "dataset": spec.name,
        "dataset_title": spec.title,
        "dataset_version": "1",
        "layout": "merged",
        "merged_from": [{"name": s.name, "fingerprint": s.card.fingerprint} for s in inputs.sources.values()],
        "merge_params": params,
        "seed": int(seed),
        "label_map": {},
        "converter": MERGES.origin(spec.name),
        "converter_version": __version__,
    }
    return {**meta, **spec.metadata(images, params)}


def _rows(spec, inputs, sels, images, schema, seed, per_source) -> Iterator[pa.Table]:
    """The merged rows, source by source (sample_ids carry the source name, so this is sorted)."""
    for name in sorted(inputs.sources):
        src, sel = inputs.sources[name], sels[name]
        stats = per_source.setdefault(name, {"rows_in": src.table.num_rows})
        offset = 0
        for shard in src.data.shard_paths:
            table = pq.read_table(shard)
            span = slice(offset, offset + table.num_rows)
            if not table["sample_id"].equals(src.table["sample_id"].slice(offset, table.num_rows)):
                raise FerbenchError(f"{name}: shard {shard} is not in the dataset's sample_id order")
            offset += table.num_rows
            _drop_incomplete(table, sel, span, spec.require)
            out = _chunk(table, sel, span, images[name], schema, seed, spec.copy)
            if out.num_rows:
                yield out
        stats["excluded"] = {k: v for k, v in sel.excluded.items() if v}
        kept = np.flatnonzero(sel.keep)
        weight = 1 + (0 if sel.copies is None else sel.copies[kept])  # a row and its augmented copies
        stats["rows_out"] = int(np.sum(weight * np.ones(len(kept), np.int64)))
        per_class = np.bincount(sel.label[kept], weights=weight * np.ones(len(kept)), minlength=len(EMOTIONS))
        stats["per_class"] = {EMOTIONS[c]: int(n) for c, n in enumerate(per_class) if n}
        if sel.copies is not None:
            stats["augmented_copies"] = int(sel.copies[kept].sum())
        if "avfer_split" in sel.columns:
            splits = sel.columns["avfer_split"][kept]
            stats["per_split"] = {sp: int(np.sum(weight * (splits == sp))) for sp in sorted(set(splits.tolist()))}


def _drop_incomplete(table: pa.Table, sel: Selection, span: slice, require: tuple[str, ...]) -> None:
    """Unselect rows of this shard that lack a required image (counted as an exclusion)."""
    present = np.ones(table.num_rows, bool)
    for col in require:
        present &= table[col].is_valid().to_numpy(zero_copy_only=False)
    missing = sel.keep[span] & ~present
    if missing.any():
        sel.keep[span][missing] = False
        sel.excluded[f"missing-{'-or-'.join(require)}"] += int(missing.sum())


def _chunk(table: pa.Table, sel: Selection, span: slice, images: RowImages, schema: pa.Schema, seed: int,
           copy: Callable[[dict[str, Any], int, int], dict[str, Any]] | None) -> pa.Table:
    """The kept rows of one source shard with merged labels, extra columns, images and copies."""
    local = np.flatnonzero(sel.keep[span])
    idx = local + span.start
    sub = table.take(pa.array(local))
    label = sel.label[idx]
    sources = sub["label_source"].to_pylist()
    new: dict[str, pa.Array] = {
        "label": pa.array(label, mask=label < 0, type=pa.int8()),
        "label_source": pa.array([sel.label_source.get(int(i), s) for i, s in zip(idx, sources)], pa.string()),
        "rgb": _images(sub["rgb"], images.rgb),
        "depth": _images(sub["depth"], images.depth),
    }
    for col, values in sel.columns.items():
        new[col] = pa.array(values[idx].tolist(), schema.field(col).type)
    n = len(local)
    out = pa.table({f.name: new.get(f.name, sub[f.name] if f.name in sub.column_names else pa.nulls(n, f.type)) for f in schema}, schema=schema)
    if sel.copies is None or not sel.copies[idx].any():
        return out
    with_copies = np.flatnonzero(sel.copies[idx])
    originals = out.take(pa.array(with_copies)).to_pylist()
    copies = [copy(r, k, seed) for i, r in zip(with_copies, originals) for k in range(int(sel.copies[idx][i]))]
    out = pa.concat_tables([out, pa.Table.from_pylist(copies, schema=schema)])
    return out.take(pc.sort_indices(out, [("sample_id", "ascending")]))


def _images(column: pa.ChunkedArray, fn: Callable[[bytes], bytes]) -> pa.Array:
    values = column.to_pylist()
    return pa.array([None if v is None or v["bytes"] is None else {"bytes": fn(v["bytes"]), "path": v["path"]} for v in values], column.type)


def _summary(per_source: dict[str, Any], images: dict[str, RowImages], reference: dict[str, Any], t0: float) -> dict[str, Any]:
    total: Counter = Counter()
    for stats in per_source.values():
        total.update(stats["per_class"])
    return {
        "per_class": {c: total[c] for c in EMOTIONS if total[c]},
        "rows_out": sum(s["rows_out"] for s in per_source.values()),
        "images": {n: {**img.note, **img.counts} for n, img in images.items()},
        "difference_to_reference": {n: per_source[n]["rows_out"] - v for n, v in reference.get("per_source", {}).items() if n in per_source},
        "seconds": round(time.perf_counter() - t0, 3),
    }
