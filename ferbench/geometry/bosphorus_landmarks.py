"""Bosphorus landmark files: ``.lm3`` (3-D, scanner mm) and ``.lm2`` (2-D, texture pixels).

Both list only the points visible in a scan (the count varies), each under its label. ferbench
stores them as a fixed 24-slot array in ``LABELS`` order with NaN for absent points (schemes
``bosphorus24-3d`` / ``bosphorus24-2d``). Labels match case- and whitespace-insensitively.

``.lm3``: a header line holding ``#`` (exact text UNVERIFIED), then either a blank line or a
``*`` line that opens a free-text info block closed by an empty line, then ``<N> landmarks:``,
then N pairs of lines ``<label>`` / ``<x> <y> <z>``.

``.lm2``: a header line (probably ``# 2D Landmark File``, UNVERIFIED), ``<N> landmarks:``, a
``Labels:`` line followed by N labels, then ``2D Image coordinates:`` followed by N ``<x> <y>``
lines (x = column, y = row of the scan's ``.png``). The reader finds the count and the two marker
lines wherever they are, as the tolerant public readers do.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping

import numpy as np

from ..errors import SampleError

#: The 24 Bosphorus landmark names, in the database's own order (slot index = position).
LABELS: tuple[str, ...] = (
    "Outer left eyebrow",
    "Middle left eyebrow",
    "Inner left eyebrow",
    "Inner right eyebrow",
    "Middle right eyebrow",
    "Outer right eyebrow",
    "Outer left eye corner",
    "Inner left eye corner",
    "Inner right eye corner",
    "Outer right eye corner",
    "Nose saddle left",
    "Nose saddle right",
    "Left nose peak",
    "Nose tip",
    "Right nose peak",
    "Left mouth corner",
    "Upper lip outer middle",
    "Right mouth corner",
    "Upper lip inner middle",
    "Lower lip inner middle",
    "Lower lip outer middle",
    "Chin middle",
    "Ear lobe left",
    "Ear lobe right",
)
_SLOT = {" ".join(name.lower().split()): i for i, name in enumerate(LABELS)}
_COUNT_LINE = re.compile(r"^\s*(\d+)\s+landmarks?\s*:?\s*$", re.IGNORECASE)
LM3_HEADER = "# 3D Landmark File"
LM2_HEADER = "# 2D Landmark File"

Points = dict[str, np.ndarray]


def _bad(reason: str, file: str | None) -> SampleError:
    return SampleError("bad-landmarks", reason, file=file)


def _floats(line: str, dims: int, file: str | None) -> np.ndarray:
    try:
        values = [float(tok) for tok in line.split()]
    except ValueError:
        values = []
    if len(values) != dims:
        raise _bad(f"expected {dims} numbers, got {line.strip()!r}", file)
    return np.asarray(values, dtype=np.float64)


def _count_at(lines: list[str], start: int, file: str | None) -> tuple[int, int]:
    """(N, index of the ``<N> landmarks:`` line) at or after ``start``."""
    for i in range(start, len(lines)):
        if m := _COUNT_LINE.match(lines[i]):
            return int(m.group(1)), i
    raise _bad("no '<N> landmarks:' line", file)


def parse_lm3(text: str, file: str | None = None) -> Points:
    """Labelled 3-D points of an ``.lm3`` text, in file order."""
    lines = text.splitlines()
    i = 1 if lines and "#" in lines[0] else 0
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i < len(lines) and lines[i].strip() == "*":  # info block, up to the next empty line
        while i < len(lines) and lines[i].strip():
            i += 1
    count, i = _count_at(lines, i, file)
    body = [line for line in lines[i + 1 :] if line.strip()]
    if len(body) < 2 * count:
        raise _bad(f"{count} landmarks announced, {len(body) // 2} present", file)
    return {body[2 * k].strip(): _floats(body[2 * k + 1], 3, file) for k in range(count)}


def _after(lines: list[str], marker: str, count: int, file: str | None) -> list[str]:
    """The first ``count`` non-empty lines after the line equal to ``marker``."""
    want = marker.lower()
    for i, line in enumerate(lines):
        if line.strip().lower() == want:
            rest = [x.strip() for x in lines[i + 1 :] if x.strip()][:count]
            if len(rest) < count:
                raise _bad(f"{count} landmarks announced, {len(rest)} under {marker!r}", file)
            return rest
    raise _bad(f"no {marker!r} line", file)


def parse_lm2(text: str, file: str | None = None) -> Points:
    """Labelled 2-D texture points (x = column, y = row) of an ``.lm2`` text, in file order."""
    lines = text.splitlines()
    count, _ = _count_at(lines, 0, file)
    labels = _after(lines, "Labels:", count, file)
    coords = _after(lines, "2D Image coordinates:", count, file)
    return {label: _floats(xy, 2, file) for label, xy in zip(labels, coords)}


def to_slots(points: Mapping[str, np.ndarray], dims: int, file: str | None = None) -> np.ndarray:
    """A ``(24, dims)`` float64 array in ``LABELS`` order, NaN where a point is absent."""
    out = np.full((len(LABELS), dims), np.nan)
    for label, xyz in points.items():
        slot = _SLOT.get(" ".join(label.lower().split()))
        if slot is None:
            raise _bad(f"unknown landmark label {label!r}", file)
        out[slot] = xyz
    return out


def read_lm3(path: str | Path) -> Points:
    return parse_lm3(Path(path).read_text(errors="replace"), str(path))


def read_lm2(path: str | Path) -> Points:
    return parse_lm2(Path(path).read_text(errors="replace"), str(path))


def format_lm3(points: Mapping[str, np.ndarray], header: str = LM3_HEADER, info: list[str] | None = None) -> str:
    """``.lm3`` text; ``info`` lines go into a ``*`` block like the one some files carry."""
    lines = [header]
    lines += ["*", *info, ""] if info else [""]
    lines.append(f"{len(points)} landmarks:")
    for label, xyz in points.items():
        lines += [label, " ".join(f"{c:.6f}" for c in xyz)]
    return "\n".join(lines) + "\n"


def format_lm2(points: Mapping[str, np.ndarray], header: str = LM2_HEADER) -> str:
    """``.lm2`` text with the ``Labels:`` and ``2D Image coordinates:`` markers."""
    lines = [header, "", f"{len(points)} landmarks:", "", "Labels:", *points, "", "2D Image coordinates:"]
    lines += [" ".join(f"{c:.4f}" for c in xy) for xy in points.values()]
    return "\n".join(lines) + "\n"


def write_lm3(path: str | Path, points: Mapping[str, np.ndarray], info: list[str] | None = None) -> None:
    Path(path).write_text(format_lm3(points, info=info))


def write_lm2(path: str | Path, points: Mapping[str, np.ndarray]) -> None:
    Path(path).write_text(format_lm2(points))
