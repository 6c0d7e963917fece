"""Bosphorus ``.bnt`` range grids (Savran et al. 2008): reader and writer.

Layout (packed, little-endian, as every public reader assumes on x86; see
``shared/formats/datasets-3d.md`` §2.4):

====== ============ =====================================================================
offset type         field
====== ============ =====================================================================
0      uint16       ``nrows``
2      uint16       ``ncols``
4      float64      ``zmin``: background sentinel (about -1e9 in real files)
12     uint16       ``L``: length of the texture file name
14     uint8[L]     texture file name (ASCII, no terminator; exact content UNVERIFIED)
14+L   uint32       ``n``: number of float64 values that follow (**not** bytes), = 5·nrows·ncols
18+L   float64[n]   five planes, one after another: X, Y, Z (mm), u, v (texture, [0, 1])
====== ============ =====================================================================

Each plane is a row-major ``(nrows, ncols)`` grid stored **bottom-to-top**; the reader flips it
so row 0 is the top of the face. A cell is background (or a hole) when any of X, Y, Z equals
``zmin`` (public readers test X, Z or all three; the writer puts ``zmin`` in all five planes so
they all agree). Bytes after the ``n`` doubles are ignored, like every public reader does.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SampleError

_HEAD = struct.Struct("<HHdH")
_COUNT = struct.Struct("<I")
PLANES = ("x", "y", "z", "u", "v")
#: The sentinel public code observed in real files (the header value is authoritative).
DEFAULT_ZMIN = -1.0e9


@dataclass(frozen=True)
class BntGrid:
    """One decoded range grid; every plane is ``(rows, cols)`` float64, row 0 = top."""

    zmin: float
    image_name: str
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    u: np.ndarray
    v: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.z.shape

    @property
    def valid(self) -> np.ndarray:
        """True where the cell holds a surface point (none of X, Y, Z equals ``zmin``)."""
        return (self.x != self.zmin) & (self.y != self.zmin) & (self.z != self.zmin)


def _bad(reason: str, file: str | None) -> SampleError:
    return SampleError("bad-header", reason, file=file)


def parse_bnt(data: bytes, file: str | None = None) -> BntGrid:
    """Decode ``.bnt`` bytes; raise ``SampleError('bad-header')`` for a wrong or truncated file."""
    if len(data) < _HEAD.size:
        raise _bad(f"truncated header: {len(data)} bytes, need at least {_HEAD.size}", file)
    rows, cols, zmin, name_len = _HEAD.unpack_from(data, 0)
    if rows == 0 or cols == 0:
        raise _bad(f"empty grid {rows}x{cols}", file)
    count_at = _HEAD.size + name_len
    if len(data) < count_at + _COUNT.size:
        raise _bad(f"truncated header: name length {name_len} runs past the end ({len(data)} bytes)", file)
    name = data[_HEAD.size : count_at].decode("latin-1")
    (count,) = _COUNT.unpack_from(data, count_at)
    cells = rows * cols
    if count != len(PLANES) * cells:
        raise _bad(f"value count {count} != 5 x {rows} x {cols} = {len(PLANES) * cells}", file)
    start = count_at + _COUNT.size
    if len(data) - start < 8 * count:
        raise _bad(f"truncated data: {len(data) - start} bytes, need {8 * count}", file)
    values = np.frombuffer(data, dtype="<f8", count=count, offset=start)
    planes = [values[k * cells : (k + 1) * cells].reshape(rows, cols)[::-1].astype(np.float64) for k in range(5)]
    return BntGrid(float(zmin), name, *planes)


def read_bnt(source: str | Path | bytes, file: str | None = None) -> BntGrid:
    """Read a ``.bnt`` file (path or bytes)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return parse_bnt(bytes(source), file)
    return parse_bnt(Path(source).read_bytes(), file or str(source))


def encode_bnt(
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    valid: np.ndarray,
    zmin: float = DEFAULT_ZMIN,
    image_name: str = "",
) -> bytes:
    """``.bnt`` bytes of top-to-bottom planes; background cells get ``zmin`` in all five planes."""
    valid = np.asarray(valid, dtype=bool)
    rows, cols = valid.shape
    name = image_name.encode("latin-1")
    parts = [_HEAD.pack(rows, cols, zmin, len(name)), name, _COUNT.pack(5 * rows * cols)]
    for plane in (x, y, z, u, v):
        grid = np.where(valid, np.asarray(plane, dtype=np.float64), zmin)
        parts.append(np.ascontiguousarray(grid[::-1], dtype="<f8").tobytes())
    return b"".join(parts)


def write_bnt(path: str | Path, *planes: np.ndarray, valid: np.ndarray, zmin: float = DEFAULT_ZMIN, image_name: str = "") -> None:
    """Write a ``.bnt`` file from X, Y, Z, u, v planes (see ``encode_bnt``)."""
    Path(path).write_bytes(encode_bnt(*planes, valid=valid, zmin=zmin, image_name=image_name))
