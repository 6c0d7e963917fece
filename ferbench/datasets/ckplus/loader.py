"""CK+ (Extended Cohn-Kanade): posed expression sequences, neutral onset to peak, 123 subjects.

Layouts
-------
``official``: the tree the authors' zips extract to. Images live in ``cohn-kanade-images/``
(also found named ``extended-cohn-kanade-images/``, possibly with ``cohn-kanade-images/``
inside it), one folder per subject and sequence, 8-digit 1-based frame numbers; the last frame
is the peak. Emotion, FACS and landmark files are found by their name suffix anywhere under the
raw root (``*_emotion.txt``, ``*_facs.txt``, ``*_landmarks.txt``), so the nested extractions
``Emotion_labels/Emotion/``, ``FACS_labels/FACS/`` and ``Landmarks/Landmarks/`` work as well as
the flat ones. Empty Emotion folders, ``.DS_Store``/``._*`` files and ``__MACOSX/`` are ignored.

``CK+48``: the Kaggle/GitHub derivative: 48×48 grayscale crops of the last 3 frames of the 327
labelled sequences in seven class folders (no neutral), optionally under a ``CK+48/`` folder.

Rows and columns (official layout)
----------------------------------
Every frame of every sequence is one row, labelled or not (593 sequences, 327 with an Emotion
file). ``label`` / ``label_raw`` / ``label_source`` are set only on the frame the sequence's
Emotion file names (its peak, the last frame); the other frames of the sequence have a null
``label``. ``sequence_label`` repeats the sequence's canonical emotion on every frame (null when
the sequence has no Emotion file), so protocols can pick "peak + first frame" or "last 3 frames"
themselves. ``aus`` is set on the frame the FACS file names; ``landmarks`` (68 × (x, y) image
pixels, ``ibug68-2d``) on every frame that has a landmarks file.

========== ======= =========================================================================
column     type    meaning
========== ======= =========================================================================
sequence_id string ``Sxxx/yyy``
frame_index int16  1-based frame number from the file name
n_frames   int16   frames in the sequence (null in CK+48)
sequence_label int8 canonical emotion of the sequence (null without Emotion file)
is_peak    bool    last frame of the sequence (null in CK+48: the crop set has no onset)
========== ======= =========================================================================

``sample_id`` is ``ckplus/<subject>/<sequence>/<frame digits>`` in both layouts, ``subject_id``
``ckplus:<subject>``; CK+ has no official split, so ``source_split`` is null. PNG bytes pass
through untouched (a few CK+ sequences are 3-channel colour and stay so).

``rgb.path`` is relative to the layout root, never to the folder the user named, so converting
from ``raw/`` or from the folder above or below it gives the same rows and fingerprint: in the
official tree, the folder holding the image folder (``cohn-kanade-images/S005/001/…png``, or
``extended-cohn-kanade-images/cohn-kanade-images/…`` when one wraps the other); in CK+48, the
folder holding the class folders (``anger/S010_004_00000017.png``). Fault reports keep paths
relative to the raw directory given, to find the files.

Labels
------
CK+ emotion ids (``label_raw`` is the id as text, e.g. ``"3"``): 0 neutral, 1 anger, 2 contempt,
3 disgust, 4 fear, 5 happy, 6 sadness, 7 surprise → canonical 0, 6, 7, 5, 4, 1, 2, 3. No sequence
is labelled neutral. CK+48 folders (``label_raw`` is the folder name): anger 6, contempt 7,
disgust 5, fear 4, happy 1, sadness 2, surprise 3.

Faults (reported with the file, the conversion goes on unless ``--strict``)
---------------------------------------------------------------------------
A faulty annotation file is ignored, the frames it belongs to are kept: ``malformed-annotation``
(unparseable emotion/FACS/landmark file, a non-integral emotion id), ``unknown-label`` (emotion
id outside 0..7), ``missing-frame`` (an annotation names a frame with no image),
``duplicate-annotation`` (a second emotion/FACS file for a sequence, or a second landmark file
for a frame; the first in path order wins). A faulty image drops its row: ``bad-image``
(truncated or undecodable PNG), ``malformed-name`` (a PNG whose name or folder does not follow
``Sxxx/yyy/Sxxx_yyy_nnnnnnnn.png``), ``duplicate-sample`` (two files give one sample_id).

UNVERIFIED variants accepted
----------------------------
Column spacing of FACS and landmark files: numbers are split on any whitespace (commas too),
each parsed as a float. FACS: one ``AU intensity`` pair per line, intensity 0 is read as "not
coded" (null intensity), an empty FACS file means no AU coded (empty list); non-integral
intensities are kept as floats. Landmarks: 68 lines of ``x y``. The ``FACS_labels/FACS/`` nesting
is assumed by analogy with the Emotion and Landmarks zips. Image resolutions are not checked.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

import pyarrow as pa

from ...errors import FerbenchError, SampleError
from ...imageio import check_image
from ...schema import EMOTION_INDEX, image, namespaced
from ..base import register_dataset, DatasetLoader, Item, find_dir, is_dir_entry
from . import annotations
from .annotations import CK_EMOTIONS, _Bad, _parse_emotion, _parse_facs, _parse_landmarks

if TYPE_CHECKING:
    from ..base import Report

#: CK+48 class folder per CK+ emotion id (no neutral folder exists).
CK48_FOLDERS: dict[int, str] = {
    1: "anger",
    2: "contempt",
    3: "disgust",
    4: "fear",
    5: "happy",
    6: "sadness",
    7: "surprise",
}
IMAGE_DIRS = ("cohn-kanade-images", "extended-cohn-kanade-images")
CK48_DIR = "CK+48"

_SUBJECT = re.compile(r"S\d+")
_FRAME_NAME = re.compile(r"(S\d+)_(\d+)_(\d+)\.png", re.IGNORECASE)
_ANNOTATION_NAME = re.compile(r"(S\d+)_(\d+)_(\d+)_(emotion|facs|landmarks)\.txt")
_ANNOTATION_SUFFIXES = ("_emotion.txt", "_facs.txt", "_landmarks.txt")
_INT16_MAX = 2**15 - 1  # frame numbers are int16
_NAME_RULE = f"a file named Sxxx_yyy_nnnnnnnn.png (frame 1..{_INT16_MAX})"

_Key = tuple[str, str]  # (subject, sequence digits)


def _ck_label_map() -> dict[str, int | None]:
    ids = {str(k): EMOTION_INDEX[name] for k, name in CK_EMOTIONS.items()}
    folders = {folder: EMOTION_INDEX[CK_EMOTIONS[k]] for k, folder in CK48_FOLDERS.items()}
    return {**ids, **folders}


@register_dataset
class CKPlus(DatasetLoader):
    name = "ckplus"
    title = "CK+ (Extended Cohn-Kanade)"
    version = "2010-09-28"
    homepage = "https://www.jeffcohn.net/Resources/"
    license = "CK+ database agreement: non-commercial research only, no redistribution; request from the authors"
    citation = (
        "Lucey P., Cohn J. F., Kanade T., Saragih J., Ambadar Z., Matthews I. The Extended Cohn-Kanade Dataset (CK+): "
        "A complete dataset for action unit and emotion-specified expression. CVPR Workshops, 2010. "
        "Kanade T., Cohn J. F., Tian Y. Comprehensive database for facial expression analysis. FG, 2000."
    )
    layouts = {
        "official": """
raw/
├── cohn-kanade-images/S005/001/S005_001_00000001.png ...   (or extended-cohn-kanade-images/)
├── Emotion/S005/001/S005_001_00000011_emotion.txt          (or Emotion_labels/Emotion/; labelled sequences only)
├── FACS/S005/001/S005_001_00000011_facs.txt                (or FACS_labels/FACS/)
└── Landmarks/S005/001/S005_001_00000001_landmarks.txt ...  (or Landmarks/Landmarks/)
""",
        "CK+48": """
raw/CK+48/                 (or the class folders directly in raw/)
└── {anger,contempt,disgust,fear,happy,sadness,surprise}/S010_004_00000017.png
""",
    }
    label_map = _ck_label_map()
    extra_fields = (
        pa.field("sequence_id", pa.string()),
        pa.field("frame_index", pa.int16()),
        pa.field("n_frames", pa.int16()),
        pa.field("sequence_label", pa.int8()),
        pa.field("is_peak", pa.bool_()),
    )

    # -- detection ---------------------------------------------------------------------------
    def detect(self) -> str:
        self._images = self._image_root()
        self._ck48 = None if self._images else self._ck48_root()
        if self._images is not None:
            # The layout root holds the outermost image folder (extended-… may wrap cohn-kanade-images/).
            top = self._images
            while top != self.root and top.parent.name in IMAGE_DIRS:
                top = top.parent
            self._base = Path(os.path.abspath(top)).parent
            return "official"
        if self._ck48 is not None:
            self._base = self._ck48
            return "CK+48"
        raise self.not_found(
            f"no {' or '.join(d + '/' for d in IMAGE_DIRS)} folder with Sxxx/ subject folders, "
            f"and no CK+48 class folder ({', '.join(CK48_FOLDERS.values())})"
        )

    def _image_root(self) -> Path | None:
        found = [d for name in IMAGE_DIRS if (d := find_dir(self.root, name)) is not None]
        # extended-cohn-kanade-images/ may just wrap cohn-kanade-images/: keep folders holding subjects.
        roots = sorted({d for d in found if any(_SUBJECT.fullmatch(e.name) and is_dir_entry(e) for e in os.scandir(d))})
        if len(roots) > 1:
            raise FerbenchError(
                f"{self.title}: several image trees under {self.root}: {[self.rel(r) for r in roots]}; "
                "point the raw directory at one copy"
            )
        return roots[0] if roots else None

    def _ck48_root(self) -> Path | None:
        found = find_dir(self.root, CK48_DIR)
        for base in (found, self.root / CK48_DIR, self.root):
            if base is not None and any((base / folder).is_dir() for folder in CK48_FOLDERS.values()):
                return base
        return None

    def _stored(self, rel: str) -> str:
        """A raw-root-relative path made relative to the layout root (what ``rgb.path`` stores)."""
        return Path(os.path.relpath(os.path.join(self.root, rel), self._base)).as_posix()

    # -- scanning ----------------------------------------------------------------------------
    def scan(self, report: Report) -> Iterable[Item]:
        if self._images is not None:
            return _OfficialScan(self, report).items()
        return self._scan_ck48(report)

    def _scan_ck48(self, report: Report) -> list[Item]:
        present = [f for f in CK48_FOLDERS.values() if (self._ck48 / f).is_dir()]
        report.note(
            f"CK+48 layout ({len(present)} of 7 class folders): 48x48 crops of the last frames of labelled "
            "sequences; label from the folder on every row, n_frames and is_peak unknown (null), no neutral class"
        )
        items: list[Item] = []
        for folder in present:
            label = self.canonical(folder)
            for path in self.raw_files(self._ck48 / folder, report):
                rel = self.rel(path)
                fields = _frame_fields(path.name)
                if fields is None:
                    report.fault("malformed-name", _NAME_RULE, rel)
                    continue
                row = _frame_row(*fields, n_frames=None, sequence_label=label, is_peak=None)
                row.update(label=label, label_raw=folder, label_source="folder")
                items.append(Item(row["sample_id"], rel, row))
        return _unique(items, report)

    # -- loading -----------------------------------------------------------------------------
    def load(self, item: Item) -> dict[str, Any]:
        data = self.read_scanned(item.source)
        check_image(data, item.source)
        return {**item.payload, "rgb": image(data, self._stored(item.source))}

    def fingerprint_sources(self) -> tuple[Any, ...]:
        return (*super().fingerprint_sources(), annotations)


def _frame_fields(name: str) -> tuple[str, str, str] | None:
    """(subject, sequence, frame digits) of a frame file name, None if it breaks ``_NAME_RULE``."""
    match = _FRAME_NAME.fullmatch(name)
    if match is None or not 1 <= int(match[3]) <= _INT16_MAX:
        return None
    return match[1], match[2], match[3]


def _frame_row(subject: str, seq: str, frame: str, **extra: Any) -> dict[str, Any]:
    """The annotation-free columns of one frame's row."""
    return {
        "sample_id": f"ckplus/{subject}/{seq}/{frame}",
        "subject_id": namespaced("ckplus", subject),
        "sequence_id": f"{subject}/{seq}",
        "frame_index": int(frame),
        **extra,
    }


def _unique(items: list[Item], report: Report) -> list[Item]:
    """Drop (and report) items whose sample_id an earlier item in path order already took."""
    seen: dict[str, str] = {}
    kept = []
    for item in sorted(items, key=lambda it: it.source):
        if item.sample_id in seen:
            report.fault("duplicate-sample", f"same sample as {seen[item.sample_id]}", item.source)
            continue
        seen[item.sample_id] = item.source
        kept.append(item)
    return kept


class _OfficialScan:
    """One pass over the official tree: frames, then annotation files by kind, then rows."""

    def __init__(self, loader: CKPlus, report: Report):
        self.loader, self.report = loader, report
        self.frames: dict[_Key, dict[int, tuple[str, str]]] = defaultdict(dict)  # number → (digits, png path)
        self.annotations: dict[str, dict[tuple, str]] = defaultdict(dict)  # kind → key → rel path
        self.emotion: dict[_Key, tuple[int, int]] = {}  # → (frame, CK+ id)
        self.facs: dict[_Key, tuple[int, list[dict[str, Any]]]] = {}
        self.landmarks: dict[tuple[str, str, int], list[list[float]]] = {}

    def items(self) -> list[Item]:
        images = self.loader._images
        for path in self.loader.raw_files(self.loader.root, self.report):
            if path.is_relative_to(images):
                if path.suffix.lower() == ".png":
                    self._add_frame(path, path.relative_to(images).parts)
            elif path.name.endswith(_ANNOTATION_SUFFIXES):
                self._add_annotation(path)
        self._parse_annotations()
        labelled = len(self.emotion)
        self.report.note(
            f"CK+ official tree: {len(self.frames)} sequences, {labelled} with a valid Emotion file; label set on "
            "the frame the Emotion file names, sequence_label on every frame"
        )
        return list(self._rows())

    # -- collection --------------------------------------------------------------------------
    def _add_frame(self, path: Path, parts: tuple[str, ...]) -> None:
        rel = self.loader.rel(path)
        fields = _frame_fields(path.name)
        if fields is None or len(parts) != 3 or fields[:2] != parts[:2]:
            self.report.fault("malformed-name", f"expected Sxxx/yyy/ folders and {_NAME_RULE}", rel)
            return
        subject, seq, frame = fields
        taken = self.frames[(subject, seq)].setdefault(int(frame), (frame, rel))[1]
        if taken != rel:
            self.report.fault("duplicate-sample", f"same frame as {taken}", rel)

    def _add_annotation(self, path: Path) -> None:
        rel = self.loader.rel(path)
        match = _ANNOTATION_NAME.fullmatch(path.name)
        if match is None:
            self.report.fault("malformed-name", "expected Sxxx_yyy_nnnnnnnn_<kind>.txt", rel)
            return
        subject, seq, frame, kind = match.groups()
        # One emotion/FACS file per sequence, one landmark file per frame.
        key = (subject, seq, int(frame)) if kind == "landmarks" else (subject, seq)
        taken = self.annotations[kind].setdefault(key, rel)
        if taken != rel:
            self.report.fault("duplicate-annotation", f"another {kind} file already read: {taken}", rel)

    # -- parsing -----------------------------------------------------------------------------
    def _parse_annotations(self) -> None:
        for kind, parse, store in (
            ("emotion", _parse_emotion, self.emotion),
            ("facs", _parse_facs, self.facs),
            ("landmarks", _parse_landmarks, self.landmarks),
        ):
            for key, rel in sorted(self.annotations[kind].items()):
                frame = int(_ANNOTATION_NAME.fullmatch(Path(rel).name)[3])
                if frame not in self.frames.get(key[:2], {}):
                    reason = f"names frame {frame} of {key[0]}/{key[1]}, which has no image"
                    self.report.fault("missing-frame", reason, rel)
                    continue
                try:
                    value = parse(self.loader.read_raw(rel).decode("utf-8", errors="replace"))
                except _Bad as exc:
                    self.report.fault(exc.kind, str(exc), rel)
                    continue
                except SampleError as exc:
                    self.report.fault(exc.kind, exc.reason, rel)
                    continue
                except OSError as exc:
                    self.report.fault("unreadable-file", exc.strerror or str(exc), rel)
                    continue
                store[key] = value if kind == "landmarks" else (frame, value)

    # -- rows --------------------------------------------------------------------------------
    def _rows(self) -> Iterator[Item]:
        for (subject, seq), frames in self.frames.items():
            emotion = self.emotion.get((subject, seq))
            facs = self.facs.get((subject, seq))
            sequence_label = None if emotion is None else self.loader.canonical(str(emotion[1]))
            last = max(frames)
            for number, (frame, rel) in frames.items():
                row = _frame_row(
                    subject, seq, frame, n_frames=len(frames), sequence_label=sequence_label, is_peak=number == last
                )
                if emotion is not None and emotion[0] == number:
                    row.update(label=sequence_label, label_raw=str(emotion[1]), label_source="annotation")
                if facs is not None and facs[0] == number:
                    row["aus"] = facs[1]
                points = self.landmarks.get((subject, seq, number))
                if points is not None:
                    row.update(landmarks=points, landmark_scheme="ibug68-2d")
                yield Item(row["sample_id"], rel, row)
