"""Write a Bosphorus raw tree (``BosphorusDB/bsSSS/<stem>.{bnt,png,lm3,lm2}``) from in-memory scans.

The ``.bnt`` is written byte-exact to the published format (``geometry.bnt``: little-endian
header, count of doubles, X/Y/Z/u/v planes stored bottom-to-top, the ``zmin`` sentinel in all five
planes of background cells); landmark files use ``geometry.bosphorus_landmarks``. Files can be
left out on purpose (``missing``), since some real stems lack one of their four files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Collection

import numpy as np

from ...geometry.bnt import DEFAULT_ZMIN, write_bnt
from ...geometry.bosphorus_landmarks import write_lm2, write_lm3
from ...imageio import encode_png


@dataclass(frozen=True)
class Scan:
    """One scan: top-to-bottom ``(rows, cols)`` planes, a colour texture and optional landmarks.

    ``lm3`` maps landmark names to (x, y, z) mm, ``lm2`` to (x, y) texture pixels; None = no file.
    """

    subject: int
    scan_class: str
    code: str
    repetition: int
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    u: np.ndarray
    v: np.ndarray
    valid: np.ndarray
    texture: np.ndarray
    lm3: dict[str, np.ndarray] | None = None
    lm2: dict[str, np.ndarray] | None = None
    lm3_info: tuple[str, ...] = ()

    @property
    def subject_dir(self) -> str:
        return f"bs{self.subject:03d}"

    @property
    def stem(self) -> str:
        return f"{self.subject_dir}_{self.scan_class}_{self.code}_{self.repetition}"


def write_bosphorus(
    root: str | Path, scans: list[Scan], top: str = "BosphorusDB", missing: Collection[str] = (), zmin: float = DEFAULT_ZMIN
) -> dict[str, Path]:
    """Write ``scans`` below ``root/top``; returns {``<stem>.<ext>``: path} of the files written.

    ``missing`` names files (``bs000_E_ANGER_0.png``) that are not written.
    """
    written: dict[str, Path] = {}
    for scan in scans:
        folder = Path(root) / top / scan.subject_dir
        folder.mkdir(parents=True, exist_ok=True)
        for ext in ("bnt", "png", "lm3", "lm2"):
            path = folder / f"{scan.stem}.{ext}"
            if path.name not in missing and _write(path, scan, ext, zmin):
                written[path.name] = path
    return written


def _write(path: Path, scan: Scan, ext: str, zmin: float) -> bool:
    """Write one of the scan's four files; False when the scan has no such content."""
    if ext == "bnt":
        planes = (scan.x, scan.y, scan.z, scan.u, scan.v)
        write_bnt(path, *planes, valid=scan.valid, zmin=zmin, image_name=f"{scan.stem}.png")
    elif ext == "png":
        path.write_bytes(encode_png(scan.texture))
    elif ext == "lm3" and scan.lm3 is not None:
        write_lm3(path, scan.lm3, info=list(scan.lm3_info) or None)
    elif ext == "lm2" and scan.lm2 is not None:
        write_lm2(path, scan.lm2)
    else:
        return False
    return True
