"""Stable hashes: of source code, options, rows and files. Same inputs → same hex digest."""

from __future__ import annotations

import hashlib
import inspect
import json
import math
from json.encoder import encode_basestring_ascii
from typing import Any

import numpy as np


def stable_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: the canonical text that gets hashed."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def hash_obj(obj: Any, n: int = 16) -> str:
    """Hex digest (``n`` chars) of the canonical JSON of ``obj``."""
    return hashlib.sha256(stable_json(obj).encode()).hexdigest()[:n]


def hash_bytes(data: bytes, n: int = 16) -> str:
    return hashlib.sha256(data).hexdigest()[:n]


def source_hash(*objs: Any) -> str:
    """Hash of the source code of modules/classes/functions: changes when the code changes."""
    h = hashlib.sha256()
    for obj in objs:
        h.update(inspect.getsource(obj).encode())
    return h.hexdigest()[:16]


def row_bytes(row: dict[str, Any]) -> bytes:
    """The canonical bytes of one row: each key (in order) then its value: image bytes by their
    sha256 then the path as JSON, numpy arrays by dtype, shape and raw bytes, others as JSON.

    Text pieces are joined and encoded together (UTF-8 of a concatenation is the concatenation
    of the UTF-8s): this runs once per row of every conversion.
    """
    out, text = bytearray(), []
    for key in sorted(row):
        value = row[key]
        text.append(key)
        if isinstance(value, dict) and "bytes" in value:
            out += "".join(text).encode()
            data = value["bytes"]
            out += hashlib.sha256(data).digest() if data is not None else b"\0"
            text = [_json(value.get("path"))]
        elif isinstance(value, np.ndarray):
            text.append(f"ndarray{value.dtype.str}{value.shape}")
            out += "".join(text).encode()
            out += np.ascontiguousarray(value).tobytes()
            text = []
        else:
            text.append(_json(value))
    out += "".join(text).encode()
    return bytes(out)


def _json(value: Any) -> str:
    """``stable_json(value)``, with a fast path for the plain scalars most columns hold."""
    kind = type(value)
    if kind is str:
        return encode_basestring_ascii(value)
    if value is None:
        return "null"
    if kind is int:
        return int.__repr__(value)
    if kind is float and math.isfinite(value):
        return float.__repr__(value)
    return stable_json(value)


class RowHasher:
    """Order-sensitive running hash over rows; the builder feeds rows in sample_id order.

    ``update_bytes(row_bytes(row))`` equals ``update(row)``, so ``row_bytes`` can run elsewhere
    (in the builder's worker processes).
    """

    def __init__(self) -> None:
        self._h = hashlib.sha256()

    def update(self, row: dict[str, Any]) -> None:
        self._h.update(row_bytes(row))

    def update_bytes(self, data: bytes) -> None:
        self._h.update(data)

    def hexdigest(self, n: int = 16) -> str:
        return self._h.hexdigest()[:n]
