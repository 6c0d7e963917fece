"""Write AffectNet's two published trees (small/cropped npy release, full CSV release) from in-memory samples.

Quirks reproduced: the small release's scalar annotations are saved as unicode-string arrays
(``np.save(p, np.array('3'))``), 0-d or shape (1,) (``scalar_shape``), and its landmarks as 136
floats (``lnd_dtype``); the full release's CSV has the 9-column header (optionally left out of
some files), 136 ``;``-separated landmark values, mixed image extensions (the file name decides
the encoding), -2 valence/arousal written verbatim, and ``extra_lines`` lets a caller plant raw
(e.g. malformed) lines. A sample whose ``image`` is None is listed but not written (a missing
image); ``image`` given as bytes is written verbatim (e.g. a truncated file).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from ...imageio import encode

CSV_HEADER = "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal"
SPLIT_DIRS = {"train": "train_set", "val": "val_set"}
CSV_FILES = {"train": "training.csv", "val": "validation.csv"}


@dataclass(frozen=True)
class Sample:
    """One AffectNet image and its annotations.

    ``name`` is the integer id (small release, e.g. ``"5"``) or ``<folder>/<56 hex>.<ext>``
    (full release). ``landmarks`` is (68, 2) x/y; ``face_box`` is (x, y, w, h), full release only.
    """

    split: str
    name: str
    image: np.ndarray | bytes | None
    expression: int
    valence: float
    arousal: float
    landmarks: np.ndarray
    face_box: tuple[int, int, int, int] = (0, 0, 0, 0)


def _image_bytes(sample: Sample, suffix: str, quality: int) -> bytes | None:
    if sample.image is None or isinstance(sample.image, bytes):
        return sample.image
    return encode(sample.image, suffix, quality)


def _number(value: float) -> str:
    return f"{value:.6g}"


def write_small(
    root: str | Path,
    samples: Iterable[Sample],
    *,
    scalar_shape: tuple[int, ...] = (),
    scalar_text: bool = True,
    lnd_dtype: str = "float64",
    quality: int = 90,
) -> Path:
    """Write ``train_set/`` and ``val_set/`` (images/<id>.jpg, annotations/<id>_{exp,val,aro,lnd}.npy).

    Scalars are unicode strings like the real files (``scalar_text=False`` writes numbers instead)
    of shape ``scalar_shape`` (``()`` or ``(1,)``).
    """
    root = Path(root)
    made: set[Path] = set()
    for s in samples:
        split_dir = root / SPLIT_DIRS[s.split]
        if split_dir not in made:
            (split_dir / "images").mkdir(parents=True, exist_ok=True)
            (split_dir / "annotations").mkdir(parents=True, exist_ok=True)
            made.add(split_dir)
        data = _image_bytes(s, ".jpg", quality)
        if data is not None:
            (split_dir / "images" / f"{s.name}.jpg").write_bytes(data)
        prefix = split_dir / "annotations" / s.name
        for kind, value in (("exp", s.expression), ("val", s.valence), ("aro", s.arousal)):
            scalar = np.array(_number(value) if scalar_text else value).reshape(scalar_shape)
            np.save(f"{prefix}_{kind}.npy", scalar)
        np.save(f"{prefix}_lnd.npy", np.asarray(s.landmarks, dtype=lnd_dtype).reshape(-1))
    return root


def write_full(
    root: str | Path,
    samples: Iterable[Sample],
    *,
    header_in: Sequence[str] = ("train", "val"),
    extra_lines: Mapping[str, Sequence[tuple[int, str]]] | None = None,
    quality: int = 90,
) -> Path:
    """Write ``Manually_Annotated_file_lists/{training,validation}.csv`` and ``Manually_Annotated_Images/``.

    ``extra_lines[split]`` holds ``(index, raw text)`` pairs: the text becomes data line ``index``
    (0-based, header not counted; inserted in ascending order, an index past the end appends).
    """
    root = Path(root)
    images = root / "Manually_Annotated_Images"
    lines: dict[str, list[str]] = {split: [] for split in CSV_FILES}
    for s in samples:
        lines[s.split].append(csv_line(s))
        data = _image_bytes(s, os.path.splitext(s.name)[1], quality)
        if data is not None:
            (images / s.name).parent.mkdir(parents=True, exist_ok=True)
            (images / s.name).write_bytes(data)
    lists = root / "Manually_Annotated_file_lists"
    lists.mkdir(parents=True, exist_ok=True)
    for split, rows in lines.items():
        for position, text in sorted((extra_lines or {}).get(split, ())):
            rows.insert(position, text)
        head = [CSV_HEADER] if split in header_in else []
        (lists / CSV_FILES[split]).write_text("".join(f"{line}\n" for line in head + rows))
    return root


def csv_line(s: Sample) -> str:
    """The CSV row of a full-release sample (x;y landmark order, 2 decimals, like the real files)."""
    landmarks = ";".join(f"{v:.2f}" for v in np.asarray(s.landmarks, dtype=np.float64).reshape(-1))
    box = ",".join(str(int(v)) for v in s.face_box)
    return f"{s.name},{box},{landmarks},{s.expression},{_number(s.valence)},{_number(s.arousal)}"
