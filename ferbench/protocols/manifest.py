"""The manifest: one Parquet file, one row per (sample, repeat, fold) taking part in a protocol.

Columns (sorted by repeat, fold, role, sample_id): sample_id, dataset, subject_id, repeat
(int16), fold (int16), role ("train"/"val"/"test"), label (int8 index into the protocol's class
list), label_canonical (int8, ``ferbench.schema.EMOTIONS``). The schema metadata key
``ferbench_manifest`` holds the protocol name, version, seed, params, classes, the input datasets'
fingerprints and paths, the leakage verdict, ``leakage_seal`` (binds that verdict to the rows and the
dataset fingerprints; see ``ferbench.protocols.load_manifest``) and ``content_hash``: a SHA-256 of the
rows alone (independent of the metadata), identical for identical rows.

``read_manifest`` recomputes that hash from the rows and refuses a file whose rows no longer match
it (``ManifestIntegrityError``, one line naming the file and both hashes): a manifest edited by hand
after ``ferbench split`` is never used under the identity of the one it was made as. ``write`` is
atomic: the rows go to ``.<name>.tmp-<host>-<pid>-<random>`` beside the target (fsynced), then are
renamed; temp files that a killed writer on this host left behind (its pid is gone) are removed by
the next write.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
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
#: ``.<target name>.tmp-<host>-<pid>-<random>``: a manifest being written (``Manifest.write``); host
#: is a short hash of the host name, so a writer on another machine of a shared file system is left alone.
TEMP_RE = re.compile(r"^\.(?P<target>.+)\.tmp-(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-[0-9a-f]{8}$")


class ManifestIntegrityError(FerbenchError):
    """A manifest's rows do not hash to the ``content_hash`` its metadata records."""
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
        """Write atomically (fsynced temp file in the same folder, then rename); a reader sees the
        old file or the new one, never part of one, whenever the writer is killed."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(path)
        tmp = path.parent / f".{path.name}.tmp-{host_tag()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        table = self.table.replace_schema_metadata({META_KEY: json.dumps(self.meta, sort_keys=True).encode()})
        try:
            pq.write_table(table, tmp, compression="zstd")
            _fsync(tmp)
            os.replace(tmp, path)
            _fsync(path.parent)
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


def read_manifest(path: str | Path, *, check: bool = True) -> Manifest:
    """Read a manifest; with ``check`` (the default) its rows must hash to its ``content_hash``."""
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise FerbenchError(f"cannot read manifest {path}: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}") from None
    raw = (table.schema.metadata or {}).get(META_KEY)
    if raw is None:
        raise FerbenchError(f"{path} is not a ferbench manifest (no {META_KEY.decode()} metadata)")
    try:
        meta = json.loads(raw)
    except ValueError:
        raise FerbenchError(f"{path}: the {META_KEY.decode()} metadata is not JSON") from None
    missing = [n for n in SCHEMA.names if n not in table.column_names]
    if missing or not isinstance(meta, dict):
        raise FerbenchError(f"{path} is not a ferbench manifest: {'columns ' + str(missing) + ' missing' if missing else 'metadata is not an object'}")
    manifest = Manifest(table.replace_schema_metadata(None), meta)
    if check:
        check_content_hash(manifest, path)
    return manifest


def check_content_hash(manifest: Manifest, path: str | Path) -> str:
    """The rows' content hash, after checking it equals the one the metadata records."""
    stored = manifest.meta.get("content_hash")
    actual = content_hash(manifest.table)
    if stored != actual:
        raise ManifestIntegrityError(
            f"manifest {path} was modified after it was made: its metadata records content hash {stored}, its rows "
            f"hash to {actual}; refusing it (make a new one with `ferbench split`)"
        )
    return actual


def remove_stale_temps(path: str | Path) -> list[Path]:
    """Remove the temp files of ``path`` left by writers that are no longer running; returns them."""
    path = Path(path)
    removed = []
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        m = TEMP_RE.match(entry.name)
        if m and m["target"] == path.name and m["host"] == host_tag() and not pid_alive(int(m["pid"])):
            try:
                entry.unlink()
                removed.append(entry)
            except OSError:
                pass
    return removed


def host_tag() -> str:
    """8 hex characters naming this host in temp file names."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs (on this machine)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync(path: Path) -> None:
    """Flush a file (or a folder's entries) to disk; best effort where the OS does not allow it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


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
