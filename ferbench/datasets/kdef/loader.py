"""KDEF (Karolinska Directed Emotional Faces; Lundqvist, Flykt & Öhman, 1998): 4,900 posed colour
photographs of 70 amateur actors (35 female, 35 male), 7 expressions, 5 camera angles, each
person photographed in two sessions.

Layouts (auto-detected)
-----------------------
* ``KDEF_and_AKDEF`` — the archive as distributed with the averaged faces:
  ``KDEF_and_AKDEF/KDEF/<folder>/<file>``; ``AKDEF/`` (the averaged faces) is ignored.
* ``KDEF`` — the KDEF folder alone: ``KDEF/<folder>/<file>``, or the session folders straight in
  the raw root (so a raw root pointing at ``KDEF_and_AKDEF/KDEF/`` itself reads as ``KDEF``).

The folder holding the session folders is searched breadth-first up to four levels below the
raw root (hidden folders, ``__MACOSX/``, ``AKDEF/`` and the session folders themselves are not
entered); the shallowest one wins, two at the same depth are an error.

Names
-----
Folders ``<session><gender><nn>`` (``AF01``): session ``A``/``B``, gender ``F``/``M``, person
``01``..``35`` within its gender. Files ``<folder><expression><angle>.JPG`` (``AF01ANS.JPG``,
``BM35SUFL.JPG``): expression ``AF`` afraid, ``AN`` angry, ``DI`` disgusted, ``HA`` happy, ``NE``
neutral, ``SA`` sad, ``SU`` surprised → canonical 4 fear, 6 anger, 5 disgust, 1 happiness, 0
neutral, 2 sadness, 3 surprise (``label_raw`` keeps the two-letter code, ``label_source`` is
``annotation``: the posed expression the name states); angle ``FL`` full left profile, ``HL``
half left, ``S`` straight, ``HR`` half right, ``FR`` full right profile.

Rows and columns
----------------
One row per photograph. ``sample_id`` is ``kdef/<file stem in capitals>`` (``kdef/AF01ANS``),
whatever folder the raw root points at. Sessions A and B photographed the same people, so
``subject_id`` leaves the session out: ``kdef:F01`` for both ``AF01`` and ``BF01``. KDEF has no
official split (``source_split`` null). Extra columns: ``session`` (``A``/``B``), ``angle``
(``FL``/``HL``/``S``/``HR``/``FR``), ``gender`` (``F``/``M``), all strings. JPEG bytes pass
through untouched (562×762 in the release; sizes are not checked).

Faults (reported with the file; the photograph is left out, the conversion goes on unless
``--strict``): ``malformed-name`` (a JPEG whose name does not parse: wrong shape, session other
than A/B, gender other than F/M, person outside 01..35, unknown angle code), ``unknown-label``
(an expression code outside the seven), ``folder-mismatch`` (the name's session, gender or
person disagree with its folder's), ``duplicate-sample`` (a second file with the same stem, e.g.
``.JPG`` and ``.jpeg``; the first in path order is kept), ``unexpected-file`` (a non-JPEG file
such as ``Thumbs.db`` in a session folder), ``bad-image`` (truncated or undecodable JPEG). A
session folder with fewer than 35 photographs is not a fault: it just gives fewer rows, and the
report's notes list such folders.

UNVERIFIED variants accepted
----------------------------
Extension spelling (``.JPG``, ``.jpg``, ``.jpeg``, any case) and lower-case file and folder names
(read as capitals); where the session folders sit (anywhere within four levels, under any
folder name); the wrapping ``KDEF_and_AKDEF/`` folder name (matched without regard to case).
Copies in circulation are said to hold a few missing or misnamed files, which the faults above
cover. Entries of the folder holding the session folders that are not session folders are
ignored (named in a note). Not supported: a flat copy with every photograph in one folder.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import pyarrow as pa

from ...errors import FerbenchError
from ...imageio import check_image
from ...schema import image, namespaced
from ..base import DatasetLoader, Item, register_dataset
from .layout import ANGLES, EXPRESSIONS, GENDERS, PEOPLE_PER_GENDER, SESSIONS

if TYPE_CHECKING:
    from ..base import Report

SESSION_DIR = re.compile(r"[AB][FM]\d\d", re.IGNORECASE)
#: The shape of a file stem (capitals): session, gender, person, expression, angle; each part is
#: checked on its own afterwards so that the fault says which one is wrong.
NAME = re.compile(r"(?P<session>[A-Z])(?P<gender>[A-Z])(?P<person>\d\d)(?P<expression>[A-Z]{2})(?P<angle>[A-Z]{1,2})")
JPEG_SUFFIXES = (".jpg", ".jpeg")
WRAPPER = "kdef_and_akdef"
MAX_DEPTH = 4
_PRUNE = frozenset({"__macosx", "akdef"})
_NAME_RULE = "<A|B><F|M><01..35><AF|AN|DI|HA|NE|SA|SU><FL|HL|S|HR|FR>.JPG (e.g. AF01ANS.JPG)"
_LISTED = 10  # folders named in a note at most


@register_dataset
class KDEF(DatasetLoader):
    name = "kdef"
    title = "KDEF (Karolinska Directed Emotional Faces)"
    version = "1998"
    homepage = "https://kdef.se/"
    license = "Free for non-commercial research (request at kdef.se); no redistribution"
    citation = (
        "D. Lundqvist, A. Flykt, A. Öhman. The Karolinska Directed Emotional Faces - KDEF. CD ROM from Department "
        "of Clinical Neuroscience, Psychology section, Karolinska Institutet, 1998. ISBN 91-630-7164-9."
    )
    layouts = {
        "KDEF_and_AKDEF": """
KDEF_and_AKDEF/
├── KDEF/AF01/AF01AFFL.JPG AF01AFHL.JPG AF01AFS.JPG ... AF01SUFR.JPG   (35 per folder)
├── KDEF/AF02/ ... AF35/ AM01/ ... AM35/ BF01/ ... BM35/               (session, gender, person)
└── AKDEF/                                                               (averaged faces; ignored)
""",
        "KDEF": """
KDEF/                      (or the session folders straight in the raw root)
└── AF01/ ... BM35/AF01ANS.JPG ...   (<session><gender><nn><expression><angle>.JPG)
""",
    }
    label_map = {"AF": 4, "AN": 6, "DI": 5, "HA": 1, "NE": 0, "SA": 2, "SU": 3}
    extra_fields = (
        pa.field("session", pa.string()),
        pa.field("angle", pa.string()),
        pa.field("gender", pa.string()),
    )

    def __init__(self, root: str | Path, **options: Any):
        super().__init__(root, **options)
        self._images: Path | None = None

    # -- detection ---------------------------------------------------------------------------
    def detect(self) -> str:
        found = _session_parents(self.root)
        if not found:
            raise self.not_found(
                f"no session folders like AF01/ … BM35/ (in KDEF/ or KDEF_and_AKDEF/KDEF/) within {MAX_DEPTH} levels"
            )
        if len(found) > 1:
            raise FerbenchError(
                f"{self.title}: several folders of session folders under {self.root}: {[self.rel(d) or '.' for d in found]}; "
                "point the raw directory at one copy"
            )
        self._images = found[0]
        inside = self._images != self.root
        if inside and self._images.name.lower() == "kdef" and self._images.parent.name.lower() == WRAPPER:
            return "KDEF_and_AKDEF"
        return "KDEF"

    # -- scanning ----------------------------------------------------------------------------
    def scan(self, report: "Report") -> Iterator[Item]:
        assert self._images is not None
        images = self._images
        if images != self.root and images.name.lower() != "kdef":
            report.note(f"session folders found in {self.rel(images)}/, not in a KDEF/ folder (UNVERIFIED variant)")
        folders, ignored = [], []
        for entry in _entries(images):
            if SESSION_DIR.fullmatch(entry.name) and _is_dir(entry):
                folders.append(Path(entry.path))
            else:
                ignored.append(entry.name)
        if ignored:
            more = f" and {len(ignored) - _LISTED} more" if len(ignored) > _LISTED else ""
            report.note(f"ignored beside the session folders in {self.rel(images) or '.'}/: {', '.join(ignored[:_LISTED])}{more}")
        seen: dict[str, str] = {}
        per_folder: Counter = Counter()
        for folder in folders:
            per_folder[folder.name] += 0
            for entry in _entries(folder):
                if not self.usable_file(entry, report):
                    continue  # a folder, or a bad link (reported)
                item = self._item(folder, entry.name, report, seen)
                if item is not None:
                    per_folder[folder.name] += 1
                    yield item
        short = [f"{name} ({n})" for name, n in sorted(per_folder.items()) if n < len(EXPRESSIONS) * len(ANGLES)]
        if short:
            report.note(
                f"{len(short)} of {len(per_folder)} session folders hold fewer than {len(EXPRESSIONS) * len(ANGLES)} "
                f"photographs: {', '.join(short[:_LISTED])}{' …' if len(short) > _LISTED else ''}"
            )

    def _item(self, folder: Path, file_name: str, report: "Report", seen: dict[str, str]) -> Item | None:
        """The item of one file of a session folder, or None after reporting why there is none."""
        rel = self.rel(folder / file_name)
        stem, ext = os.path.splitext(file_name)
        if ext.lower() not in JPEG_SUFFIXES:
            report.fault("unexpected-file", f"not a {'/'.join(JPEG_SUFFIXES)} photograph", rel)
            return None
        stem = stem.upper()
        m = NAME.fullmatch(stem)
        if m is None:
            report.fault("malformed-name", f"name does not fit {_NAME_RULE}", rel)
            return None
        session, gender, person, expression, angle = m.group("session", "gender", "person", "expression", "angle")
        wrong = _name_problem(session, gender, int(person), angle)
        if wrong:
            report.fault("malformed-name", f"{wrong}; expected {_NAME_RULE}", rel)
            return None
        if expression not in self.label_map:
            report.fault("unknown-label", f"expression code {expression!r} is not one of {', '.join(EXPRESSIONS)}", rel)
            return None
        if f"{session}{gender}{person}" != folder.name.upper():
            report.fault("folder-mismatch", f"the name says {session}{gender}{person}, the folder is {folder.name}", rel)
            return None
        if stem in seen:
            report.fault("duplicate-sample", f"same photograph as {seen[stem]}", rel)
            return None
        seen[stem] = rel
        row = {
            "sample_id": f"{self.name}/{stem}",
            "subject_id": namespaced(self.name, f"{gender}{person}"),
            "source_split": None,
            "label_raw": expression,
            "label_source": "annotation",
            "session": session,
            "angle": angle,
            "gender": gender,
        }
        return Item(row["sample_id"], rel, row)

    # -- loading -----------------------------------------------------------------------------
    def load(self, item: Item) -> dict[str, Any]:
        data = self.read_scanned(item.source)
        check_image(data, item.source)
        return {**item.payload, "rgb": image(data, item.source)}


def _name_problem(session: str, gender: str, person: int, angle: str) -> str | None:
    if session not in SESSIONS:
        return f"session {session!r} is not A or B"
    if gender not in GENDERS:
        return f"gender {gender!r} is not F or M"
    if not 1 <= person <= PEOPLE_PER_GENDER:
        return f"person {person:02d} is outside 01..{PEOPLE_PER_GENDER}"
    if angle not in ANGLES:
        return f"angle code {angle!r} is not one of {', '.join(ANGLES)}"
    return None


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a link loop is no folder
        return False


def _entries(folder: Path) -> list[os.DirEntry]:
    """The non-hidden entries of a folder, sorted by name."""
    with os.scandir(folder) as it:
        return sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)


def _session_parents(root: Path) -> list[Path]:
    """The shallowest folders (within ``MAX_DEPTH`` levels of ``root``, root included) that hold
    at least one session folder; breadth-first over directories, never entering hidden ones,
    ``__MACOSX``, ``AKDEF`` or session folders."""
    level = [root]
    for _ in range(MAX_DEPTH + 1):
        found, below = [], []
        for d in level:
            try:
                subdirs = [e for e in _entries(d) if e.is_dir()]
            except OSError:
                continue
            if any(SESSION_DIR.fullmatch(e.name) for e in subdirs):
                found.append(d)
            below += [Path(e.path) for e in subdirs if not SESSION_DIR.fullmatch(e.name) and e.name.lower() not in _PRUNE]
        if found:
            return found
        level = sorted(below)
    return []
