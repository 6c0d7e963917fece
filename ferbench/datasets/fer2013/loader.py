"""FER2013 (Goodfellow et al., 2013): 35,887 grayscale 48×48 faces, 7 emotions, Kaggle ICML 2013 challenge.

Layouts (auto-detected, first match wins; each file is looked for in ``root`` and ``root/fer2013/``,
in torchvision's order):

* ``fer2013.csv`` — header ``emotion,pixels,Usage``; all three splits with labels.
* ``icml_face_data.csv`` — the same rows with header ``emotion, Usage, pixels`` (leading spaces;
  header names are whitespace-stripped before use).
* ``train.csv+test.csv`` — Kaggle's ``train.csv`` (``emotion,pixels``, Training rows) and/or
  ``test.csv`` (``pixels`` only: label null, ``source_split`` "test").
* ``image-folders`` — the ``msambare/fer2013`` repack ``{train,test}/<class>/<Usage>_<n>.jpg``
  (in ``root``, ``root/fer2013/`` or ``root/archive/``). JPEG bytes pass through untouched.

Rows: a CSV row becomes a 48×48 single-channel PNG (encoded in the worker processes).
``sample_id`` is ``fer2013/<data-row index, 5 digits>`` for fer2013.csv, icml_face_data.csv and
train.csv alike (same rows → same ids), ``fer2013/test/<row>`` for test.csv and
``fer2013/<train|test>/<class>/<file stem>`` for the folders. ``csv_row`` keeps the 0-based
data-row index (null for folders). ``source_split`` is ``Usage`` (whitespace-stripped),
"Training" for train.csv, "test" for test.csv and the ``<Usage>_`` file-name prefix for folders.
FER2013 has no subject ids. Blank lines are not data rows; blank lines before the header are
skipped (with a note), and only a file with nothing but blank lines is "empty". Folder images
store ``rgb.path`` relative to the folder holding ``train/`` and ``test/``
(``train/angry/Training_10022789.jpg``), whether or not the raw directory named an ``archive/``
or ``fer2013/`` wrapper, so the fingerprint depends on the content only.

Labels (``label_raw`` = the id text "0".."6", or the folder name): 0 Angry→6 anger, 1 Disgust→5,
2 Fear→4, 3 Happy→1, 4 Sad→2, 5 Surprise→3, 6 Neutral→0; folders angry, disgust, fear, happy,
sad, surprise, neutral likewise. No contempt.

Faults (reported with file, data-row index and reason, then skipped): wrong number of fields,
non-integer pixels or values outside 0..255 (``malformed-row``), a pixel count other than 2,304
(``bad-pixel-count``), an emotion outside 0..6 (``unknown-label``); broken JPEGs (``bad-image``),
unknown class folders (``unknown-label``) and non-image files (``unexpected-file``).

UNVERIFIED variants accepted: quoted or unquoted pixel fields, LF or CRLF line endings, a UTF-8
BOM, any row count in test.csv, grayscale or 3-channel folder JPEGs (kept as stored), and
folder names with ``archive/`` or ``fer2013/`` wrappers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import numpy as np
import pyarrow as pa

from ...imageio import check_image, encode_png
from ...schema import image
from ..base import register_dataset, DatasetLoader, Item
from . import csv_io
from .csv_io import NUM_PIXELS, SIDE, CsvData, parse_pixels, pixel_fault, read_csv, read_header, stripped

#: Re-exported for FER+ and callers that import them from here.
__all__ = ["FER2013", "NUM_PIXELS", "CsvData", "read_csv", "read_header", "stripped", "parse_pixels", "find_file", "read_fer2013_csv", "pixel_image"]

if TYPE_CHECKING:
    from ..base import Report

#: FER2013 emotion id → canonical index.
ID_LABELS = {"0": 6, "1": 5, "2": 4, "3": 1, "4": 2, "5": 3, "6": 0}
#: msambare class folder → canonical index.
FOLDER_LABELS = {"angry": 6, "disgust": 5, "fear": 4, "happy": 1, "sad": 2, "surprise": 3, "neutral": 0}
#: Labelled all-split CSVs, in the order torchvision prefers them.
LABELLED_CSVS = ("fer2013.csv", "icml_face_data.csv")
CSV_DIRS = ("", "fer2013")
#: The columns each CSV file name must have (header names whitespace-stripped).
CSV_COLUMNS = {
    "fer2013.csv": ("emotion", "pixels", "Usage"),
    "icml_face_data.csv": ("emotion", "Usage", "pixels"),
    "train.csv": ("emotion", "pixels"),
    "test.csv": ("pixels",),
}
FOLDER_DIRS = ("", "fer2013", "archive")
FOLDER_SPLITS = ("train", "test")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


# -- CSV reading (shared with ferplus) ---------------------------------------------------------------
@dataclass
class FerRows:
    """The clean rows of a FER2013 CSV (faulty rows already reported and dropped)."""

    file: str
    total: int
    rows: np.ndarray
    emotion: list[str] | None
    usage: list[str] | None
    pixels: np.ndarray


def find_file(root: Path, names: Sequence[str], dirs: Sequence[str] = CSV_DIRS) -> Path | None:
    """The first ``dir/name`` that is a file, names taking precedence over dirs."""
    for name in names:
        for d in dirs:
            path = root / d / name
            if path.is_file():
                return path
    return None


def read_fer2013_csv(path: Path, root: Path, report: "Report") -> FerRows:
    """Read any FER2013 CSV layout (columns as ``CSV_COLUMNS`` names them for the file): structure,
    pixels and emotion ids checked, faults reported in row order."""
    file = path.relative_to(root).as_posix()
    required = CSV_COLUMNS.get(path.name, CSV_COLUMNS["fer2013.csv"])
    data, faults = read_csv(path, file, required, binary=["pixels"])
    data.note_blank_lines(report)
    column = data.table.column("pixels")
    pixels, pixels_ok = parse_pixels(column)
    faults += [(int(data.rows[i]), *pixel_fault(column[int(i)].as_py())) for i in np.flatnonzero(~pixels_ok)]
    emotion = stripped(data.table, "emotion") if "emotion" in required else None
    label_ok = np.ones(len(pixels_ok), dtype=bool)
    if emotion is not None:
        label_ok = np.array([e in ID_LABELS for e in emotion], dtype=bool)
        faults += [
            (int(data.rows[i]), "unknown-label", f"emotion {emotion[i]!r} is not one of 0..6")
            for i in np.flatnonzero(pixels_ok & ~label_ok)
        ]
    for row, kind, reason in sorted(faults):
        report.fault(kind, reason, file, row)
    keep = np.flatnonzero(pixels_ok & label_ok)
    usage = stripped(data.table, "Usage") if "Usage" in required else None
    return FerRows(
        file,
        data.total,
        data.rows[keep],
        None if emotion is None else [emotion[i] for i in keep],
        None if usage is None else [usage[i] for i in keep],
        pixels[label_ok[pixels_ok]],
    )


def pixel_image(item: Item) -> dict[str, Any]:
    """The row of a CSV item whose payload is ``(row fields, 2,304 pixel bytes)``: pixels → PNG."""
    fields, raw = item.payload
    pixels = np.frombuffer(raw, dtype=np.uint8).reshape(SIDE, SIDE)
    return {**fields, "rgb": image(encode_png(pixels), f"{item.sample_id}.png")}


# -- the loader ---------------------------------------------------------------------------------------
@register_dataset
class FER2013(DatasetLoader):
    name = "fer2013"
    title = "FER2013 (ICML 2013 Challenges in Representation Learning: facial expression recognition)"
    version = "2013"
    homepage = "https://www.kaggle.com/c/challenges-in-representation-learning-facial-expression-recognition-challenge"
    license = "Kaggle competition data: research use under the competition rules; no redistribution"
    citation = (
        "I. J. Goodfellow, D. Erhan, P. L. Carrier, A. Courville, M. Mirza, B. Hamner, W. Cukierski, "
        "Y. Tang, D. Thaler, D.-H. Lee, et al. Challenges in Representation Learning: A Report on "
        "Three Machine Learning Contests. ICONIP 2013."
    )
    layouts = {
        "fer2013.csv": """
fer2013.csv  or  fer2013/fer2013.csv
    emotion,pixels,Usage
    0,70 80 82 ... (2,304 values),Training
""",
        "icml_face_data.csv": """
icml_face_data.csv  or  fer2013/icml_face_data.csv
    emotion, Usage, pixels
""",
        "train.csv+test.csv": """
train.csv (emotion,pixels) and/or test.csv (pixels), in . or fer2013/
""",
        "image-folders": """
train/{angry,disgust,fear,happy,neutral,sad,surprise}/Training_10022789.jpg
test/{angry,...,surprise}/PublicTest_8514439.jpg, PrivateTest_10131363.jpg
    (in ., fer2013/ or archive/)
""",
    }
    label_map = {**ID_LABELS, **FOLDER_LABELS}
    extra_fields = (pa.field("csv_row", pa.int32()),)

    def detect(self) -> str:
        return self._locate()[0]

    def _locate(self) -> tuple[str, list[Path]]:
        labelled = find_file(self.root, LABELLED_CSVS)
        if labelled is not None:
            return labelled.name, [labelled]
        kaggle = [p for p in (find_file(self.root, [n]) for n in ("train.csv", "test.csv")) if p is not None]
        if kaggle:
            return "train.csv+test.csv", kaggle
        for d in FOLDER_DIRS:
            splits = [self.root / d / s for s in FOLDER_SPLITS if _has_class_dirs(self.root / d / s)]
            if splits:
                return "image-folders", splits
        raise self.not_found(
            "no fer2013.csv, icml_face_data.csv, train.csv or test.csv (in . or fer2013/) and no "
            "train/ or test/ class folders (in ., fer2013/ or archive/)"
        )

    def scan(self, report: "Report") -> Iterator[Item]:
        layout, paths = self._locate()
        if layout == "image-folders":
            for split_dir in paths:
                yield from self._scan_folders(split_dir, report)
            return
        for path in paths:
            yield from self._scan_csv(path, report)

    def _scan_csv(self, path: Path, report: "Report") -> Iterator[Item]:
        table = read_fer2013_csv(path, self.root, report)
        is_test = path.name == "test.csv"
        for i, row in enumerate(table.rows.tolist()):
            label_raw = None if is_test else table.emotion[i]
            fields = {
                "sample_id": f"{self.name}/test/{row:05d}" if is_test else f"{self.name}/{row:05d}",
                "source_split": table.usage[i] if table.usage is not None else ("test" if is_test else "Training"),
                "label_raw": label_raw,
                "label": None if label_raw is None else ID_LABELS[label_raw],
                "label_source": None if is_test else "annotation",
                "csv_row": row,
            }
            yield Item(fields["sample_id"], table.file, (fields, table.pixels[i].tobytes()), row)

    def _scan_folders(self, split_dir: Path, report: "Report") -> Iterator[Item]:
        for class_dir in _visible(split_dir):
            if not class_dir.is_dir():
                report.fault("unexpected-file", "file outside a class folder", self.rel(class_dir))
                continue
            known = class_dir.name.lower() in FOLDER_LABELS
            for path in _visible(class_dir):
                rel = self.rel(path)
                if not known:
                    report.fault("unknown-label", f"class folder {class_dir.name!r} is not one of {sorted(FOLDER_LABELS)}", rel)
                elif path.is_symlink() and not self.usable_file(path, report):
                    continue  # a bad link: reported
                elif not path.is_file() or path.suffix.lower() not in IMAGE_SUFFIXES:
                    report.fault("unexpected-file", f"not a {'/'.join(IMAGE_SUFFIXES)} image", rel)
                else:
                    sample_id = f"{self.name}/{split_dir.name}/{class_dir.name}/{path.stem}"
                    stored = f"{split_dir.name}/{class_dir.name}/{path.name}"  # relative to the layout root
                    yield Item(sample_id, rel, (split_dir.name, class_dir.name, path.stem, stored))

    def fingerprint_sources(self) -> tuple[Any, ...]:
        return (*super().fingerprint_sources(), csv_io)

    def load(self, item: Item) -> dict[str, Any]:
        if item.row is not None:
            return pixel_image(item)
        split, folder, stem, stored = item.payload
        data = self.read_scanned(item.source)
        check_image(data, item.source)
        return {
            "sample_id": item.sample_id,
            "source_split": stem.rpartition("_")[0] or split,
            "label_raw": folder,
            "label": FOLDER_LABELS[folder.lower()],
            "label_source": "folder",
            "rgb": image(data, stored),
        }


def _visible(directory: Path) -> list[Path]:
    """Entries of a directory without hidden ones, sorted by name (never file-system order)."""
    return sorted(p for p in directory.iterdir() if not p.name.startswith("."))


def _has_class_dirs(directory: Path) -> bool:
    return directory.is_dir() and any(p.is_dir() and p.name.lower() in FOLDER_LABELS for p in directory.iterdir())
