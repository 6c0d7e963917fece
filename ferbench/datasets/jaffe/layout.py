"""Write JAFFE's published layout from in-memory faces: a folder of grayscale TIFFs named
``<poser>.<code><repetition>.<image number>.tiff`` (``KA.AN1.39.tiff``), plus the README and a
semantic-ratings text file that the converter must ignore.

``write_tree`` writes the folder (``jaffe/`` by default, anywhere under the root, e.g. nested
``jaffedbase/jaffe/``); ``file_name`` builds the real names with any extension spelling
(``.tiff``, ``.tif``, ``.TIFF``); ``raw_files`` writes verbatim bytes under verbatim names (planted
unparsable names, truncated files). A ``Sample`` whose ``pixels`` are bytes is written as they are.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
from PIL import Image

#: JAFFE expression code → canonical index (``ferbench.schema.EMOTIONS``).
CODES = {"NE": 0, "HA": 1, "SA": 2, "SU": 3, "FE": 4, "DI": 5, "AN": 6}
#: The ten posers of the real database (two-letter initials).
POSERS = ("KA", "KL", "KM", "KR", "MK", "NA", "NM", "TM", "UY", "YM")
README_NAME = "README"
RATINGS_NAME = "semantic_ratings.txt"


@dataclass(frozen=True)
class Sample:
    """One JAFFE picture: ``poser`` initials, expression ``code``, ``repetition`` ≥ 1, the database's
    running ``number``, and (H, W) uint8 pixels (or ready file bytes)."""

    poser: str
    code: str
    repetition: int
    number: int
    pixels: np.ndarray | bytes

    @property
    def stem(self) -> str:
        return f"{self.poser}.{self.code}{self.repetition}.{self.number}"


def file_name(sample: Sample, ext: str = ".tiff") -> str:
    return f"{sample.stem}{ext}"


def encode_tiff(pixels: np.ndarray) -> bytes:
    """Uncompressed 8-bit grayscale TIFF bytes of a (H, W) uint8 array (deterministic)."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(buf, format="TIFF")
    return buf.getvalue()


def write_tree(
    root: str | Path,
    samples: Iterable[Sample],
    *,
    folder: str = "jaffe",
    ext: str | Mapping[str, str] = ".tiff",
    readme: bool = True,
    ratings: bool = True,
    raw_files: Mapping[str, bytes] | None = None,
) -> Path:
    """Write ``root/<folder>/`` with one TIFF per sample; returns the image folder.

    ``ext`` is one extension for every file or a map sample stem → extension (mixed spellings).
    ``raw_files`` maps a name (relative to the image folder) → bytes written verbatim.
    """
    target = Path(root) / folder if folder else Path(root)
    target.mkdir(parents=True, exist_ok=True)
    posers = set()
    for s in samples:
        posers.add(s.poser)
        suffix = ext if isinstance(ext, str) else ext.get(s.stem, ".tiff")
        data = s.pixels if isinstance(s.pixels, bytes) else encode_tiff(s.pixels)
        (target / file_name(s, suffix)).write_bytes(data)
    for name, data in (raw_files or {}).items():
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    if readme:
        (target / README_NAME).write_text(
            "The Japanese Female Facial Expression (JAFFE) database (synthetic replica).\n"
            "File names: <poser>.<expression><n>.<image number>.tiff\n"
        )
    if ratings:
        head = "#  HAP  SAD  SUR  ANG  DIS  FEA PIC\n"
        lines = [f"{k + 1} 3.00 2.00 1.00 1.00 1.00 1.00 {p}-XX\n" for k, p in enumerate(sorted(posers))]
        (target / RATINGS_NAME).write_text(head + "".join(lines))
    return target
