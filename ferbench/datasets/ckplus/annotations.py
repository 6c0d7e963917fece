"""CK+ annotation files (Emotion, FACS, landmarks) → values; ``_Bad`` says why one is unusable.

See the ``loader`` module docstring for the formats and the UNVERIFIED variants accepted.
"""

from __future__ import annotations

import math
from typing import Any

#: CK+ emotion ids (readme order) → canonical emotion name.
CK_EMOTIONS: dict[int, str] = {
    0: "neutral",
    1: "anger",
    2: "contempt",
    3: "disgust",
    4: "fear",
    5: "happiness",
    6: "sadness",
    7: "surprise",
}
LANDMARK_POINTS = 68
_INT16_MAX = 2**15 - 1


class _Bad(ValueError):
    """An annotation file that cannot be used (message = reason, ``kind`` = fault kind)."""

    def __init__(self, reason: str, kind: str = "malformed-annotation"):
        super().__init__(reason)
        self.kind = kind


def _numbers(line: str) -> list[float]:
    try:
        return [float(tok) for tok in line.replace(",", " ").split()]
    except ValueError as exc:
        raise _Bad(f"not a number ({exc})") from None


def _integral(value: float, what: str) -> int:
    if not math.isfinite(value) or value != int(value):
        raise _Bad(f"{what} {value!r} is not an integer")
    return int(value)


def _parse_emotion(text: str) -> int:
    """The CK+ emotion id of an Emotion file (one float, e.g. ``   3.0000000e+00``)."""
    values = _numbers(text)
    if len(values) != 1:
        raise _Bad(f"expected exactly one number, found {len(values)}")
    ck_id = _integral(values[0], "emotion")
    if ck_id not in CK_EMOTIONS:
        raise _Bad(f"emotion id {ck_id} outside 0..7", kind="unknown-label")
    return ck_id


def _parse_facs(text: str) -> list[dict[str, Any]]:
    """AU entries of a FACS file: one ``AU intensity`` pair per line, intensity 0 = not coded (null)."""
    aus = []
    for n, line in enumerate(text.splitlines(), 1):
        values = _numbers(line)
        if not values:
            continue
        if len(values) != 2:
            raise _Bad(f"line {n}: expected 'AU intensity', found {len(values)} numbers")
        au, intensity = _integral(values[0], f"line {n}: AU"), values[1]
        if not 1 <= au <= _INT16_MAX or not math.isfinite(intensity) or intensity < 0:
            raise _Bad(f"line {n}: AU {au} / intensity {intensity} out of range")
        aus.append({"au": au, "intensity": intensity or None, "side": None})
    return aus


def _parse_landmarks(text: str) -> list[list[float]]:
    """68 (x, y) points of a landmarks file, one ``x y`` line each."""
    rows = [values for line in text.splitlines() if (values := _numbers(line))]
    if len(rows) != LANDMARK_POINTS or any(len(r) != 2 for r in rows):
        raise _Bad(f"expected {LANDMARK_POINTS} lines of 'x y', found {len(rows)} lines")
    if not all(math.isfinite(v) for r in rows for v in r):
        raise _Bad("non-finite coordinate")
    return rows
