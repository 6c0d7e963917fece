"""Stable hashes: of source code, options and dataset content. Same inputs → same hex digest."""

from __future__ import annotations

import hashlib
import inspect
import json
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def stable_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: the canonical text that gets hashed."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def hash_obj(obj: Any, n: int = 16) -> str:
    """Hex digest (``n`` chars) of the canonical JSON of ``obj``."""
    return hashlib.sha256(stable_json(obj).encode()).hexdigest()[:n]


def source_hash(*objs: Any) -> str:
    """Hash of the source code of modules/classes/functions: changes when the code changes."""
    h = hashlib.sha256()
    for obj in objs:
        h.update(inspect.getsource(obj).encode())
    return h.hexdigest()[:16]


class ContentHash:
    """Order-sensitive hash of a table's content, column by column, whatever its chunking.

    Each column is split into byte streams that are concatenations of per-row pieces: validity
    (one byte per row), lengths of strings, binaries and lists (int64), fixed-width values of the
    valid rows, UTF-8 of the valid strings, and the sha256 of each valid binary value (so image
    bytes are hashed where they are, and only digests travel). Structs and lists recurse into
    their children. Hashing batch after batch therefore gives the same digest for the same rows
    in the same order, however they were cut, and ``streams`` can run in worker processes while
    the builder ``update``s in order.
    """

    def __init__(self) -> None:
        self._h: dict[str, Any] = {}

    @staticmethod
    def streams(batch: pa.RecordBatch | pa.Table) -> dict[str, bytes]:
        """The byte streams of ``batch``'s columns (the part worth computing in parallel)."""
        out: dict[str, list[bytes]] = {}
        for name, column in zip(batch.schema.names, batch.columns):
            chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
            if not chunks:
                chunks = [pa.array([], column.type)]
            for chunk in chunks:
                _array_streams(name, chunk, out)
        return {k: b"".join(v) for k, v in out.items()}

    def update(self, streams: dict[str, bytes]) -> None:
        for name, data in streams.items():
            if name not in self._h:
                self._h[name] = hashlib.sha256()
            self._h[name].update(data)

    def update_table(self, table: pa.Table | pa.RecordBatch) -> None:
        self.update(self.streams(table))

    def hexdigest(self) -> str:
        return hash_obj({name: h.hexdigest() for name, h in self._h.items()}, 64)

    def column_digests(self) -> dict[str, str]:
        """A digest per top-level column, from the streams of that column and its children, so
        the columns a reader loads can be checked without reading the others."""
        grouped: dict[str, dict[str, str]] = {}
        for name, h in self._h.items():
            top = name.split("#", 1)[0].split(".", 1)[0].split("[", 1)[0]
            grouped.setdefault(top, {})[name] = h.hexdigest()
        return {top: hash_obj(streams, 32) for top, streams in sorted(grouped.items())}


def _array_streams(name: str, arr: pa.Array, out: dict[str, list[bytes]]) -> None:
    typ = arr.type
    if pa.types.is_dictionary(typ):
        arr, typ = arr.dictionary_decode(), typ.value_type
    out.setdefault(f"{name}#valid", []).append(np.asarray(arr.is_valid(), dtype=np.uint8).tobytes())
    if pa.types.is_null(typ):
        return
    if pa.types.is_struct(typ):
        for i, child in enumerate(arr.flatten()):
            _array_streams(f"{name}.{typ.field(i).name}", child, out)
        return
    if isinstance(arr, (pa.ListArray, pa.LargeListArray, pa.FixedSizeListArray)):
        lengths = pc.list_value_length(arr).fill_null(0)
        out.setdefault(f"{name}#len", []).append(lengths.to_numpy().astype("<i8").tobytes())
        _array_streams(f"{name}[]", arr.flatten(), out)
        return
    valid = arr.drop_null()
    if pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_binary(typ) or pa.types.is_large_binary(typ):
        lengths = pc.binary_length(arr).fill_null(0)
        out.setdefault(f"{name}#len", []).append(lengths.to_numpy().astype("<i8").tobytes())
        offsets, data = _offsets_and_data(valid)
        if pa.types.is_string(typ) or pa.types.is_large_string(typ):
            piece = data[offsets[0] : offsets[-1]].tobytes()
        else:
            piece = b"".join(hashlib.sha256(data[a:b]).digest() for a, b in zip(offsets[:-1], offsets[1:]))
        out.setdefault(f"{name}#data", []).append(piece)
        return
    if pa.types.is_primitive(typ):
        values = valid.to_numpy(zero_copy_only=False)
        out.setdefault(f"{name}#data", []).append(values.astype(values.dtype.newbyteorder("<")).tobytes())
        return
    raise TypeError(f"ContentHash: no rule for column {name!r} of type {typ}")


def _offsets_and_data(arr: pa.Array) -> tuple[list[int], memoryview]:
    """The value offsets (into the data buffer) and the data buffer of a (large) binary or string array."""
    _, offsets_buf, data_buf = arr.buffers()
    if not len(arr) or offsets_buf is None:
        return [0], memoryview(b"")
    width = np.int64 if pa.types.is_large_binary(arr.type) or pa.types.is_large_string(arr.type) else np.int32
    offsets = np.frombuffer(offsets_buf, dtype=width)[arr.offset : arr.offset + len(arr) + 1].tolist()
    return offsets, memoryview(data_buf if data_buf is not None else b"")
