"""Tiny KDEF trees (8×6 noise JPEGs) with the release's naming and planted faults.

``wrapped_tree`` writes ``KDEF_and_AKDEF/KDEF/`` with both sessions of two people, one person in
session A only, an ``AKDEF/`` folder the converter must ignore, and planted faults: a truncated
JPEG, a name that does not parse, an unknown angle code, an unknown expression code, a file whose
folder disagrees with its name, the same photograph as ``.JPG`` and ``.jpeg``, and a
``Thumbs.db``. ``flat_tree`` writes ``KDEF/`` with lower-case ``.jpg`` extensions, one folder
complete (all 35 photographs), no faults. Both return a ``Tree``: what the converter must give.
``VARIANTS`` wraps them for the dataset contract test.
"""

from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...imageio import encode
from ..base import Expected
from .layout import ANGLES, EXPRESSIONS, Photo, file_stem, write_kdef

#: KDEF expression code → canonical index.
CANONICAL = {"AF": 4, "AN": 6, "DI": 5, "HA": 1, "NE": 0, "SA": 2, "SU": 3}
SIZE = (6, 8)  # width, height: portrait, like the release's 562×762


@dataclass
class Tree:
    layout: str
    #: sample_id → (subject_id, session, gender, angle, label_raw, label)
    rows: dict[str, tuple[str, str, str, str, str, int]] = field(default_factory=dict)
    #: (kind, file relative to the raw root, row) of every planted fault
    faults: list[tuple[str, str, int | None]] = field(default_factory=list)

    def add(self, photo: Photo) -> None:
        subject = f"kdef:{photo.gender}{photo.person:02d}"
        self.rows[f"kdef/{photo.stem}"] = (subject, photo.session, photo.gender, photo.angle, photo.expression, CANONICAL[photo.expression])

    def expected(self) -> Expected:
        return Expected(
            layout=self.layout,
            labels={sid: row[5] for sid, row in self.rows.items()},
            faults=tuple(sorted(self.faults, key=str)),
            subjects={sid: row[0] for sid, row in self.rows.items()},
        )


def pixels(key: str) -> np.ndarray:
    """Deterministic RGB noise, distinct per key."""
    w, h = SIZE
    return np.random.default_rng(zlib.crc32(key.encode())).integers(0, 256, (h, w, 3), dtype=np.uint8)


def photo(session: str, gender: str, person: int, expression: str, angle: str, **override) -> Photo:
    key = override.get("name") or file_stem(session, gender, person, expression, angle)
    return Photo(session, gender, person, expression, angle, pixels(key), **override)


def _every_expression(session: str, gender: str, person: int, angles: tuple[str, ...]) -> list[Photo]:
    return [photo(session, gender, person, e, a) for e in EXPRESSIONS for a in angles]


def wrapped_tree(root: Path) -> Tree:
    """``KDEF_and_AKDEF/KDEF/``: AF01/BF01 and AM02/BM02 (the same two people in both sessions),
    AF03 (session A only); straight photographs of every expression plus a few other angles."""
    root = Path(root)
    top = "KDEF_and_AKDEF/KDEF"
    good = (
        _every_expression("A", "F", 1, ("S", "HL"))
        + _every_expression("B", "F", 1, ("S",))
        + _every_expression("A", "M", 2, ("S", "FR"))
        + _every_expression("B", "M", 2, ("S", "HR"))
        + [p for p in _every_expression("A", "F", 3, ("S", "FL")) if p.expression != "NE" or p.angle != "S"]
    )
    truncated = photo("A", "F", 1, "HA", "FL")
    truncated = dataclasses.replace(truncated, image=encode(truncated.image, ".jpg")[:150])
    planted = [
        truncated,
        photo("A", "M", 2, "AN", "S", name="AM2ANS"),  # does not parse
        photo("B", "M", 2, "AN", "S", name="BM02ANXX"),  # unknown angle code
        photo("A", "F", 3, "NE", "S", name="AF03XXS"),  # unknown expression code
        photo("B", "F", 1, "SA", "S", name="BF03SAS"),  # person 03 in folder BF01
    ]
    write_kdef(root, good + planted, top=top)
    tree = Tree("KDEF_and_AKDEF")
    for p in good:
        tree.add(p)
    neutral = photo("A", "F", 3, "NE", "S")
    write_kdef(root, [neutral], top=top)  # AF03NES.JPG, kept
    write_kdef(root, [neutral], top=top, ext=".jpeg")  # the same photograph again
    tree.add(neutral)
    (root / top / "AF01" / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0 not a photograph")
    # the averaged faces beside KDEF/ (their naming is not modelled; the converter never looks)
    write_kdef(root, [photo("A", "F", 1, "AF", "S", name="AFS", folder=".")], top="KDEF_and_AKDEF/AKDEF")
    (root / "KDEF_and_AKDEF" / "ReadMe.txt").write_text("KDEF & AKDEF\n")
    base = f"{top}/"
    tree.faults = [
        ("bad-image", f"{base}AF01/AF01HAFL.JPG", None),
        ("malformed-name", f"{base}AM02/AM2ANS.JPG", None),
        ("malformed-name", f"{base}BM02/BM02ANXX.JPG", None),
        ("unknown-label", f"{base}AF03/AF03XXS.JPG", None),
        ("folder-mismatch", f"{base}BF01/BF03SAS.JPG", None),
        ("duplicate-sample", f"{base}AF03/AF03NES.jpeg", None),
        ("unexpected-file", f"{base}AF01/Thumbs.db", None),
    ]
    return tree


def flat_tree(root: Path) -> Tree:
    """``KDEF/`` with ``.jpg`` extensions: AM01 complete (7 expressions × 5 angles), BM01 and AF02
    straight only; no faults."""
    good = _every_expression("A", "M", 1, ANGLES) + _every_expression("B", "M", 1, ("S",)) + _every_expression("A", "F", 2, ("S",))
    write_kdef(root, good, top="KDEF", ext=".jpg")
    tree = Tree("KDEF")
    for p in good:
        tree.add(p)
    return tree


VARIANTS = {
    "KDEF_and_AKDEF": lambda root: wrapped_tree(root).expected(),
    "KDEF-jpg": lambda root: flat_tree(root).expected(),
}
