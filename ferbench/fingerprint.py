"""Stable hashes: of source code, options, rows and files. Same inputs → same hex digest."""

from __future__ import annotations

import hashlib
import inspect
import json
from typing import Any


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


class RowHasher:
    """Order-sensitive running hash over rows; the builder feeds rows in sample_id order."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()

    def update(self, row: dict[str, Any]) -> None:
        for key in sorted(row):
            value = row[key]
            self._h.update(key.encode())
            if isinstance(value, dict) and "bytes" in value:
                data = value["bytes"]
                self._h.update(hashlib.sha256(data).digest() if data is not None else b"\0")
                self._h.update(stable_json(value.get("path")).encode())
            else:
                self._h.update(stable_json(value).encode())

    def hexdigest(self, n: int = 16) -> str:
        return self._h.hexdigest()[:n]
