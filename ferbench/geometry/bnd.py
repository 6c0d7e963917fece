"""Read and write BU-3DFE ``*_F3D.bnd`` landmark files.

One landmark per line: ``<vertex index> <x> <y> <z>``; the index is 0-based into the points of
the matching ``_F3D.wrl``. Published files separate the fields with double tabs; any mix of tabs
and spaces is accepted, as are blank lines and an index written as an integral float
(``5143.000000``, UNVERIFIED). Malformed files raise ``GeometryError`` of kind ``bad-landmarks``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .mesh import GeometryError

BND_POINTS = 83


def read_bnd(src: str | Path | bytes, expected: int | None = BND_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """(n,) int64 vertex indices and (n, 3) float64 coordinates; n must equal ``expected`` if given."""
    data = src if isinstance(src, bytes) else Path(src).read_bytes()
    rows = [line.split() for line in data.decode("latin-1").splitlines()]
    rows = [(i, fields) for i, fields in enumerate(rows, start=1) if fields]
    if expected is not None and len(rows) != expected:
        raise GeometryError(f"{len(rows)} landmark lines, expected {expected}", kind="bad-landmarks")
    idx = np.empty(len(rows), np.int64)
    xyz = np.empty((len(rows), 3), np.float64)
    for k, (line_no, fields) in enumerate(rows):
        try:
            if len(fields) != 4:
                raise ValueError(f"{len(fields)} fields, expected 4")
            index = float(fields[0])
            if not index.is_integer() or index < 0:
                raise ValueError(f"vertex index {fields[0]} is not a non-negative integer")
            idx[k], xyz[k] = int(index), [float(v) for v in fields[1:]]
        except ValueError as exc:
            raise GeometryError(f"line {line_no}: {exc}", kind="bad-landmarks", row=line_no) from None
    if not np.isfinite(xyz).all():
        raise GeometryError("non-finite landmark coordinate", kind="bad-landmarks")
    return idx, xyz


def write_bnd(path: str | Path, idx: np.ndarray, xyz: np.ndarray) -> None:
    """Write landmarks the way BU-3DFE does: ``index\\t\\tx\\t\\ty\\t\\tz`` with 6 decimals."""
    lines = [
        f"{int(i)}\t\t{x:.6f}\t\t{y:.6f}\t\t{z:.6f}\n"
        for i, (x, y, z) in zip(np.asarray(idx), np.asarray(xyz, dtype=np.float64))
    ]
    Path(path).write_text("".join(lines), encoding="ascii", newline="\n")
