"""Write RAF-DB's basic release tree (or its Kaggle repack) from in-memory samples.

Quirks reproduced: the misspelled ``EmoLabel/list_patition_label.txt`` (``label_file`` changes
it), ``train_`` names with 5 digits and ``test_`` names with 4 (the caller picks the names),
aligned copies named ``<name>_aligned.jpg``, 1-based labels, and ``extra_lines`` for planted
raw (e.g. malformed) label lines. A sample whose ``aligned``/``original`` is None has no such
file on disk; bytes are written verbatim.

``write_basic`` also writes a replica of the *compound* release (same tree): give it 4-digit
names (``train_0001``, ``test_0001``) and labels 1..11, which the basic converter must refuse.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ...imageio import encode

LABEL_FILE = "list_patition_label.txt"


@dataclass(frozen=True)
class Sample:
    """One RAF-DB face: ``name`` like ``train_00001`` (no extension), ``label`` 1..7."""

    name: str
    label: int
    aligned: np.ndarray | bytes | None
    original: np.ndarray | bytes | None = None


def _write_image(path: Path, image: np.ndarray | bytes | None, quality: int) -> None:
    if image is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(image if isinstance(image, bytes) else encode(image, path.suffix, quality))


def write_basic(
    root: str | Path,
    samples: Iterable[Sample],
    *,
    label_file: str = LABEL_FILE,
    extra_lines: Sequence[tuple[int, str]] = (),
    quality: int = 90,
) -> Path:
    """Write ``EmoLabel/<label_file>`` and ``Image/{original,aligned}/``.

    ``extra_lines`` holds ``(index, raw text)`` pairs: the text becomes label line ``index``
    (0-based; inserted in ascending order, an index past the end appends).
    """
    root = Path(root)
    lines = []
    for s in samples:
        lines.append(f"{s.name}.jpg {s.label}")
        _write_image(root / "Image" / "original" / f"{s.name}.jpg", s.original, quality)
        _write_image(root / "Image" / "aligned" / f"{s.name}_aligned.jpg", s.aligned, quality)
    for position, text in sorted(extra_lines):
        lines.insert(position, text)
    (root / "EmoLabel").mkdir(parents=True, exist_ok=True)
    (root / "EmoLabel" / label_file).write_text("".join(f"{line}\n" for line in lines))
    return root


def write_kaggle(root: str | Path, samples: Iterable[Sample], *, quality: int = 90) -> Path:
    """Write the Kaggle repack ``DATASET/{train,test}/{label}/<name>_aligned.jpg`` (aligned faces only)
    plus its ``{train,test}_labels.csv`` (``image,label``) beside ``DATASET/``."""
    root = Path(root)
    rows: dict[str, list[str]] = {"train": [], "test": []}
    for s in samples:
        split = s.name.partition("_")[0]
        _write_image(root / "DATASET" / split / str(s.label) / f"{s.name}_aligned.jpg", s.aligned, quality)
        rows[split].append(f"{s.name}_aligned.jpg,{s.label}\n")
    for split, lines in rows.items():
        (root / f"{split}_labels.csv").write_text("image,label\n" + "".join(lines))
    return root
