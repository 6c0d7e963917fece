"""Write KDEF's published tree from in-memory photographs (the reader's mirror).

One folder per session and person, ``<session><gender><nn>/`` (``AF01/``, ``BM35/``), holding
``<session><gender><nn><expression><angle><ext>`` files (``AF01ANS.JPG``, ``BM35SUFL.JPG``),
under ``KDEF_and_AKDEF/KDEF/`` or ``KDEF/`` (``top`` picks it; ``""`` writes the session folders
straight into the root). ``ext`` picks the extension spelling (``.JPG`` in the release as
described; ``.jpg``/``.jpeg`` are accepted by the reader too). A photograph's ``name`` and
``folder`` override the file stem and folder, to plant misnamed or misplaced files; bytes are
written verbatim, pixels are JPEG-encoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from ...imageio import encode

SESSIONS = ("A", "B")
GENDERS = ("F", "M")
PEOPLE_PER_GENDER = 35
#: Expression codes of the file names, in the release's usual order.
EXPRESSIONS = ("AF", "AN", "DI", "HA", "NE", "SA", "SU")
#: Camera angles, from the full left profile round to the full right profile.
ANGLES = ("FL", "HL", "S", "HR", "FR")
TOPS = {"KDEF_and_AKDEF": "KDEF_and_AKDEF/KDEF", "KDEF": "KDEF"}


def folder_name(session: str, gender: str, person: int) -> str:
    """``AF01``: session, gender, two-digit person number."""
    return f"{session}{gender}{person:02d}"


def file_stem(session: str, gender: str, person: int, expression: str, angle: str) -> str:
    """``AF01ANS``: the folder name, the expression code and the angle code."""
    return f"{folder_name(session, gender, person)}{expression}{angle}"


@dataclass(frozen=True)
class Photo:
    """One KDEF photograph: ``person`` 1..35 within its gender, codes as in the file names."""

    session: str
    gender: str
    person: int
    expression: str
    angle: str
    image: np.ndarray | bytes
    name: str | None = None  # the file stem to write instead of the real one
    folder: str | None = None  # the folder to write into instead of the real one

    @property
    def stem(self) -> str:
        return self.name if self.name is not None else file_stem(self.session, self.gender, self.person, self.expression, self.angle)

    @property
    def directory(self) -> str:
        return self.folder if self.folder is not None else folder_name(self.session, self.gender, self.person)


def write_kdef(
    root: str | Path, photos: Iterable[Photo], *, top: str = TOPS["KDEF_and_AKDEF"], ext: str = ".JPG", quality: int = 90
) -> Path:
    """Write ``root/<top>/<folder>/<stem><ext>`` for every photograph; returns the folder that
    holds the session folders."""
    base = Path(root) / top if top else Path(root)
    base.mkdir(parents=True, exist_ok=True)
    for p in photos:
        path = base / p.directory / f"{p.stem}{ext}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(p.image if isinstance(p.image, bytes) else encode(p.image, ".jpg", quality))
    return base
