"""The manifest: one Parquet file, one row per (sample, repeat, fold) taking part in a protocol.

Columns (sorted by repeat, fold, role, sample_id): sample_id, dataset, subject_id, repeat
(int16), fold (int16), role ("train"/"val"/"test"), label (int8 index into the protocol's class
list), label_canonical (int8, ``ferbench.schema.EMOTIONS``). The schema metadata key
``ferbench_manifest`` holds the protocol name, version, seed, params, classes, the input datasets'
fingerprints and paths, the leakage verdict and ``content_hash``: a SHA-256 of the rows alone
(independent of the metadata), identical for identical rows.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import FerbenchError
from .base import ROLES, Plan

META_KEY = b"ferbench_manifest"
SCHEMA = pa.schema(
    [
        pa.field("sample_id", pa.string(), nullable=False),
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("subject_id", pa.string()),
        pa.field("repeat", pa.int16(), nullable=False),
        pa.field("fold", pa.int16(), nullable=False),
        pa.field("role", pa.string(), nullable=False),
        pa.field("label", pa.int8(), nullable=False),
        pa.field("label_canonical", pa.int8(), nullable=False),
    ]
)


@dataclass
class Manifest:
    table: pa.Table
    meta: dict[str, Any]

    def write(self, path: str | Path) -> Path:
        """Write atomically (temp file in the same folder, then rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
        table = self.table.replace_schema_metadata({META_KEY: json.dumps(self.meta, sort_keys=True).encode()})
        try:
            pq.write_table(table, tmp, compression="zstd")
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return path

    def select(self, repeat: int = 0, fold: int = 0) -> dict[str, pa.Table]:
        """The rows of one (repeat, fold), by role."""
        t = self.table.filter(pc.and_(pc.equal(self.table["repeat"], repeat), pc.equal(self.table["fold"], fold)))
        if not t.num_rows:
            raise FerbenchError(f"manifest has no rows for repeat {repeat}, fold {fold}")
        return {role: t.filter(pc.equal(t["role"], role)) for role in ROLES if role in set(t["role"].unique().to_pylist())}

    @property
    def content_hash(self) -> str:
        return self.meta["content_hash"]


def read_manifest(path: str | Path) -> Manifest:
    table = pq.read_table(path)
    raw = (table.schema.metadata or {}).get(META_KEY)
    if raw is None:
        raise FerbenchError(f"{path} is not a ferbench manifest (no {META_KEY.decode()} metadata)")
    return Manifest(table.replace_schema_metadata(None), json.loads(raw))


def manifest_table(plan: Plan) -> pa.Table:
    """The manifest rows of a plan, sorted by (repeat, fold, role, sample_id)."""
    rows, roles = plan.rows, plan.roles
    r, f, n = np.nonzero(roles >= 0)  # row-major: already ordered by repeat, fold, sample
    role = roles[r, f, n]
    order = np.lexsort((n, role, f, r))
    r, f, n, role = r[order], f[order], n[order], role[order]
    lut = np.full(256, -1, dtype=np.int16)
    lut[list(plan.classes)] = np.arange(len(plan.classes))
    canonical = rows.column("label_canonical").to_numpy(zero_copy_only=False)
    label = lut[canonical[n].astype(np.int64)]
    if (label < 0).any():
        raise FerbenchError(f"protocol put labels {sorted(set(canonical[n][label < 0]))} outside its classes {plan.classes}")
    take = pa.array(n)
    return pa.table(
        {
            "sample_id": rows.column("sample_id").take(take),
            "dataset": rows.column("dataset").take(take),
            "subject_id": rows.column("subject_id").take(take),
            "repeat": pa.array(r.astype(np.int16)),
            "fold": pa.array(f.astype(np.int16)),
            "role": pa.DictionaryArray.from_arrays(pa.array(role.astype(np.int32)), pa.array(ROLES)).cast(pa.string()),
            "label": pa.array(label.astype(np.int8)),
            "label_canonical": pa.array(canonical[n].astype(np.int8)),
        },
        schema=SCHEMA,
    )


def content_hash(table: pa.Table) -> str:
    """SHA-256 of the manifest rows: each column's values in a canonical byte form, in order."""
    h = hashlib.sha256()
    for name in SCHEMA.names:
        col = table.column(name).combine_chunks()
        h.update(name.encode() + b"\0")
        if pa.types.is_string(col.type):
            data, lengths = _string_bytes(col)
            h.update(data)
            h.update(lengths)
        else:
            h.update(np.ascontiguousarray(col.to_numpy(zero_copy_only=False).astype("<i8")).tobytes())
    return h.hexdigest()


def _string_bytes(col: pa.Array) -> tuple[bytes, bytes]:
    """The concatenated UTF-8 values (nulls as a marker) and their lengths, independent of layout."""
    arr = pc.fill_null(col, "\x00<null>").cast(pa.large_string())
    offsets = np.frombuffer(arr.buffers()[1], dtype="<i8")[arr.offset : arr.offset + len(arr) + 1]
    data = arr.buffers()[2]
    body = memoryview(data)[offsets[0] : offsets[-1]] if data is not None else b""
    return bytes(body), np.diff(offsets).astype("<i8").tobytes()
