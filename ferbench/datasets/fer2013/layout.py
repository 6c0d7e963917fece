"""Write FER2013's published layouts and FER+'s ``fer2013new.csv`` from in-memory faces.

* ``write_csv`` — one CSV in any of the four Kaggle layouts: ``fer2013`` (``emotion,pixels,Usage``),
  ``icml`` (``emotion, Usage, pixels``, with the leading spaces), ``train`` (``emotion,pixels``)
  and ``test`` (``pixels``). Quirks: quoted pixel fields, CRLF endings; ``raw_rows`` writes given
  data rows verbatim (planted malformed rows). Pixels are (N, 48, 48) uint8 arrays or ready
  strings (for planted bad pixel strings, or one pre-built string reused for speed).
* ``write_competition`` — the unzipped Kaggle competition tree (``fer2013/fer2013.csv``,
  ``icml_face_data.csv``, ``train.csv`` with the Training rows, ``test.csv`` with the pixels of
  the PublicTest + PrivateTest rows — its real row count is unverified).
* ``write_image_folders`` — the ``msambare/fer2013`` repack ``{train,test}/<class>/<Usage>_<n>.jpg``.
* ``write_ferplus_csv`` — ``fer2013new.csv`` with the 12-column header or the original 11-column one.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ...imageio import encode

#: msambare class folder of each FER2013 emotion id 0..6.
FOLDERS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
HEADERS = {
    "fer2013": "emotion,pixels,Usage",
    "icml": "emotion, Usage, pixels",
    "train": "emotion,pixels",
    "test": "pixels",
}
FERPLUS_VOTES = "neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"

Pixels = np.ndarray | Sequence[str]


def pixel_string(face: np.ndarray) -> str:
    """The space-separated row-major pixel values of one 48×48 uint8 face."""
    return " ".join(map(str, np.asarray(face, dtype=np.uint8).ravel().tolist()))


def _pixel_strings(pixels: Pixels) -> list[str]:
    if isinstance(pixels, np.ndarray):
        return [pixel_string(face) for face in pixels]
    return list(pixels)


def write_csv(
    path: str | Path,
    layout: str,
    pixels: Pixels,
    emotions: Sequence[int | str] = (),
    usages: Sequence[str] = (),
    *,
    quote_pixels: bool = False,
    newline: str = "\n",
    raw_rows: Mapping[int, str] | None = None,
) -> Path:
    """Write one FER2013 CSV; ``layout`` is a key of ``HEADERS``, ``raw_rows`` maps data-row index → text."""
    header = HEADERS[layout]
    columns = [c.strip() for c in header.split(",")]
    texts = _pixel_strings(pixels)
    values = {"emotion": [str(e) for e in emotions], "Usage": list(usages), "pixels": [f'"{t}"' if quote_pixels else t for t in texts]}
    lines = [header]
    for i in range(len(texts)):
        if raw_rows and i in raw_rows:
            lines.append(raw_rows[i])
        else:
            lines.append(",".join(values[c][i] for c in columns))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        f.write(newline.join(lines) + newline)
    return path


def write_competition(root: str | Path, faces: np.ndarray, emotions: Sequence[int], usages: Sequence[str]) -> Path:
    """The unzipped Kaggle competition download, all four CSVs, from the same faces."""
    root = Path(root)
    texts = _pixel_strings(faces)
    write_csv(root / "fer2013" / "fer2013.csv", "fer2013", texts, emotions, usages)
    write_csv(root / "icml_face_data.csv", "icml", texts, emotions, usages)
    train = [i for i, u in enumerate(usages) if u == "Training"]
    test = [i for i, u in enumerate(usages) if u != "Training"]
    write_csv(root / "train.csv", "train", [texts[i] for i in train], [emotions[i] for i in train], quote_pixels=True)
    write_csv(root / "test.csv", "test", [texts[i] for i in test], quote_pixels=True)
    return root


def write_image_folders(
    root: str | Path,
    faces: np.ndarray,
    emotions: Sequence[int],
    usages: Sequence[str],
    numbers: Sequence[int],
    *,
    order_seed: int | None = None,
    quality: int = 90,
) -> list[Path]:
    """The msambare repack: face i → ``<train|test>/<class>/<usage>_<number>.jpg`` (grayscale JPEG).

    ``order_seed`` shuffles the order in which files are created. Returns the paths in input order.
    """
    root = Path(root)
    paths = [
        root / ("train" if usage == "Training" else "test") / FOLDERS[int(emotion)] / f"{usage}_{number}.jpg"
        for emotion, usage, number in zip(emotions, usages, numbers)
    ]
    order = list(range(len(paths)))
    if order_seed is not None:
        random.Random(order_seed).shuffle(order)
    for i in order:
        paths[i].parent.mkdir(parents=True, exist_ok=True)
        paths[i].write_bytes(encode(np.asarray(faces[i], dtype=np.uint8), ".jpg", quality))
    return paths


def write_ferplus_csv(
    path: str | Path,
    usages: Sequence[str],
    votes: np.ndarray | Sequence[Sequence[int]],
    image_names: Sequence[str] | None = None,
    *,
    raw_rows: Mapping[int, str] | None = None,
) -> Path:
    """Write ``fer2013new.csv``: with ``image_names`` ("" for an empty name) the current 12-column
    header, without them the original 11-column one. ``raw_rows`` maps data-row index → verbatim text."""
    named = image_names is not None
    lines = ["Usage," + ("Image name," if named else "") + FERPLUS_VOTES]
    for i, (usage, counts) in enumerate(zip(usages, votes)):
        if raw_rows and i in raw_rows:
            lines.append(raw_rows[i])
            continue
        name = [image_names[i]] if image_names is not None else []
        lines.append(",".join([usage, *name, *map(str, counts)]))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path
