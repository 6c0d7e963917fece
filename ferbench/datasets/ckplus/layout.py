"""Write a faithful CK+ tree (official layout or the CK+48 crop set) from in-memory sequences.

The official writer reproduces what the authors' zips extract to: one PNG per frame under
``cohn-kanade-images/Sxxx/yyy/``, one Emotion file per labelled sequence and one FACS file per
sequence (both named after the last, peak frame), one landmarks file per frame, all numbers in
Matlab ``save -ascii`` style (``%16.7e``, e.g. ``   3.0000000e+00``). ``CKLayout`` switches on
the quirks found in real copies: the ``extended-cohn-kanade-images`` name, nested annotation
trees (``Emotion_labels/Emotion/`` ...), empty Emotion folders for unlabelled sequences and
``.DS_Store`` files. The column spacing of FACS and landmark files is UNVERIFIED (see
``ferbench.datasets.ckplus``); this writer uses the emotion file's verified style for all three.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .loader import CK48_DIR, CK48_FOLDERS
from ...imageio import encode_png

#: Where each annotation tree lands when its zip was extracted into a folder of its own.
NESTED_DIRS = {"Emotion": "Emotion_labels/Emotion", "FACS": "FACS_labels/FACS", "Landmarks": "Landmarks/Landmarks"}
#: Start of a real ``.DS_Store`` file (Apple "Bud1" buddy allocator), padded.
DS_STORE = b"\x00\x00\x00\x01Bud1" + bytes(24)


@dataclass
class CKSequence:
    """One expression sequence: frames from neutral onset (frame 1) to peak (last frame)."""

    subject: str  # "S005"
    number: int  # 1 → folder "001"
    frames: list[np.ndarray]  # uint8 (H, W) grayscale or (H, W, 3) colour
    emotion: int | None = None  # CK+ id for the Emotion file on the peak frame; None: no file
    facs: list[tuple[int, float]] | None = None  # (AU, intensity) lines of the FACS file; None: no file
    landmarks: list[np.ndarray | None] | None = None  # per frame (68, 2) x/y pixels; None entries: no file

    @property
    def folder(self) -> str:
        return f"{self.subject}/{self.number:03d}"

    @property
    def peak(self) -> int:
        return len(self.frames)

    def stem(self, frame: int) -> str:
        """File-name stem of a 1-based frame, e.g. ``S005_001_00000011``."""
        return f"{self.subject}_{self.number:03d}_{frame:08d}"


@dataclass(frozen=True)
class CKLayout:
    """Quirks of one extracted copy of the official distribution."""

    images_dir: str = "cohn-kanade-images"  # or "extended-cohn-kanade-images"
    nested: tuple[str, ...] = ()  # annotation trees ("Emotion", "FACS", "Landmarks") in NESTED_DIRS form
    empty_emotion_dirs: bool = False  # unlabelled sequences with an odd number get an empty Emotion folder
    ds_store: bool = False  # a .DS_Store in every tree root and every subject and sequence image folder

    def tree(self, kind: str) -> str:
        return NESTED_DIRS[kind] if kind in self.nested else kind

    def image_path(self, seq: CKSequence, frame: int) -> str:
        return f"{self.images_dir}/{seq.folder}/{seq.stem(frame)}.png"

    def annotation_path(self, kind: str, seq: CKSequence, frame: int) -> str:
        """Relative path of an ``Emotion``, ``FACS`` or ``Landmarks`` file of ``frame``."""
        suffix = {"Emotion": "emotion", "FACS": "facs", "Landmarks": "landmarks"}[kind]
        return f"{self.tree(kind)}/{seq.folder}/{seq.stem(frame)}_{suffix}.txt"


def matlab_ascii(rows: Iterable[Sequence[float]]) -> str:
    """Numbers as Matlab ``save -ascii`` writes them: ``%16.7e`` per value, one row per line."""
    return "".join("".join(f"{float(v):16.7e}" for v in row) + "\n" for row in rows)


def write_official(root: str | Path, sequences: Iterable[CKSequence], layout: CKLayout = CKLayout()) -> Path:
    """Write the official CK+ tree for ``sequences`` (in the order given) under ``root``."""
    root = Path(root)
    for seq in sequences:
        _write_sequence(root, seq, layout)
        if seq.emotion is None and layout.empty_emotion_dirs and seq.number % 2:
            (root / layout.tree("Emotion") / seq.folder).mkdir(parents=True, exist_ok=True)
        if layout.ds_store:
            for folder in (seq.subject, seq.folder):
                (root / layout.images_dir / folder / ".DS_Store").write_bytes(DS_STORE)
    if layout.ds_store:
        for top in (layout.images_dir, *(layout.tree(k) for k in NESTED_DIRS)):
            if (root / top).is_dir():
                (root / top / ".DS_Store").write_bytes(DS_STORE)
    return root


def _write_sequence(root: Path, seq: CKSequence, layout: CKLayout) -> None:
    for frame, pixels in enumerate(seq.frames, 1):
        _write(root / layout.image_path(seq, frame), encode_png(pixels))
    if seq.emotion is not None:
        _write(root / layout.annotation_path("Emotion", seq, seq.peak), matlab_ascii([[seq.emotion]]))
    if seq.facs is not None:
        _write(root / layout.annotation_path("FACS", seq, seq.peak), matlab_ascii(seq.facs))
    for frame, points in enumerate(seq.landmarks or (), 1):
        if points is not None:
            _write(root / layout.annotation_path("Landmarks", seq, frame), matlab_ascii(points))


def write_ck48(
    root: str | Path, sequences: Iterable[CKSequence], last: int = 3, subdir: str = CK48_DIR, ds_store: bool = False
) -> Path:
    """Write the CK+48 crop set: the last ``last`` frames of each sequence labelled 1..7, as given.

    Frames are written unchanged (pass 48×48 uint8 grayscale for a faithful copy) into
    ``root/subdir/<class>/Sxxx_yyy_nnnnnnnn.png``; ``subdir=""`` puts the class folders in ``root``.
    Unlabelled and neutral sequences have no CK+48 folder and are skipped. ``ds_store`` adds a
    ``.DS_Store`` to every class folder.
    """
    base = Path(root) / subdir
    for seq in sequences:
        folder = CK48_FOLDERS.get(seq.emotion) if seq.emotion is not None else None
        if folder is None:
            continue
        for frame in range(max(1, seq.peak - last + 1), seq.peak + 1):
            _write(base / folder / f"{seq.stem(frame)}.png", encode_png(seq.frames[frame - 1]))
        if ds_store:
            _write(base / folder / ".DS_Store", DS_STORE)
    return base


def _write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data)
    else:
        path.write_bytes(data)
