"""Write a CalD3r/MenD3s raw tree from in-memory RGB + depth images.

Either published tree can be written (``rgb-depth``: ``<Set>/<Emotion>/RGB|DEPTH/…``;
``emotions-color-depth``: ``<Set>/Emotions/<Emotion>/Color|Depth/…``), with the set's own
zero-padding (CalD3r 3 digits, MenD3s 2), the optional ``aligned_`` prefix and files left out on
purpose (``missing``: the real archive lacks two partner images).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Collection

import numpy as np

from ...imageio import encode_png

PAD = {"CalD3r": 3, "MenD3s": 2}
TREES = {
    "rgb-depth": ("{emotion}", "RGB", "DEPTH"),
    "emotions-color-depth": ("Emotions/{emotion}", "Color", "Depth"),
}


@dataclass(frozen=True)
class Sample:
    """One capture: ``rgb`` (H, W, 3) uint8 and ``depth`` (H, W) uint16 (0 = invalid)."""

    source_set: str
    gender: str
    subject: int
    stimulus: str
    label: str
    rgb: np.ndarray
    depth: np.ndarray

    def stem(self, aligned: bool = False) -> str:
        prefix = "aligned_" if aligned else ""
        return f"{prefix}{self.gender}_{self.subject:0{PAD[self.source_set]}d}_{self.stimulus}_{self.label}"


def sample_paths(sample: Sample, tree: str = "rgb-depth", aligned: bool = False) -> tuple[str, str]:
    """Relative (colour, depth) paths of a sample below the set's parent folder."""
    emotion_dir, color_dir, depth_dir = TREES[tree]
    base = f"{sample.source_set}/{emotion_dir.format(emotion=sample.label.capitalize())}"
    stem = sample.stem(aligned)
    return f"{base}/{color_dir}/{stem}_Color.png", f"{base}/{depth_dir}/{stem}_Depth.png"


def write_caldr_menders(
    root: str | Path,
    samples: list[Sample],
    tree: str = "rgb-depth",
    aligned: bool = False,
    missing: Collection[str] = (),
) -> list[Path]:
    """Write ``samples`` below ``root``; relative paths listed in ``missing`` are not written."""
    written = []
    for sample in samples:
        for rel, pixels in zip(sample_paths(sample, tree, aligned), (sample.rgb, sample.depth)):
            if rel in missing:
                continue
            path = Path(root) / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(encode_png(pixels))
            written.append(path)
    return written
