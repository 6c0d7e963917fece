"""Tiny JAFFE trees (8×8 noise TIFFs written through ``layout.py``) with the real naming and planted faults.

* ``flat`` — ``jaffe/`` (the root is its parent) with README, ratings file, ``.DS_Store``, an
  AppleDouble ``._`` twin and ``Thumbs.db`` (all ignored). Planted: a truncated TIFF
  (``bad-image``), a name without repetition index and one without image number (``bad-name``), an
  unknown expression code (``unknown-label``), a second file for (KA, HA, 1) and a copy of a file
  in a subfolder (``duplicate-sample``).
* ``nested-tif`` — ``jaffedbase/jaffe/`` two folders down, every extension spelling (``.tif``,
  ``.TIF``, ``.TIFF``, ``.Tiff``), one lower-case name and one image number with leading zeros;
  no fault.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..base import Expected
from .layout import CODES, Sample, encode_tiff, file_name, write_tree

SIDE = 8


def pixels(seed: int) -> np.ndarray:
    return np.random.default_rng([seed, 5]).integers(0, 256, (SIDE, SIDE), dtype=np.uint8)


def good_samples(posers: tuple[str, ...] = ("KA", "KM", "YM"), extra_reps: tuple[str, ...] = ("HA", "SU")) -> list[Sample]:
    """Every poser × the seven codes (repetition 1), the first poser also repetition 2 of
    ``extra_reps``; image numbers run from 1 in that order."""
    out: list[Sample] = []
    for i, poser in enumerate(posers):
        for code in CODES:
            reps = (1, 2) if i == 0 and code in extra_reps else (1,)
            for rep in reps:
                number = len(out) + 1
                out.append(Sample(poser, code, rep, number, pixels(number)))
    return out


def _expected(layout: str, samples: list[Sample], faults: list[tuple[str, str, int | None]] = ()) -> Expected:
    ids = {f"jaffe/{s.poser.upper()}.{s.code.upper()}{s.repetition}.{s.number}": s for s in samples}
    return Expected(
        layout=layout,
        labels={sid: CODES[s.code.upper()] for sid, s in ids.items()},
        faults=tuple(sorted(faults, key=str)),
        subjects={sid: f"jaffe:{s.poser.upper()}" for sid, s in ids.items()},
    )


def flat_tree(root: str | Path) -> Expected:
    root = Path(root)
    good = good_samples()
    truncated = encode_tiff(pixels(90))
    truncated = truncated[: len(truncated) // 2]
    first_happy = next(s for s in good if (s.poser, s.code, s.repetition) == ("KA", "HA", 1))
    raw = {
        "YM.SU2.90.tiff": truncated,
        "KM.AN.91.tiff": encode_tiff(pixels(91)),
        "KM.AN2.tiff": encode_tiff(pixels(92)),
        "KA.AG1.93.tiff": encode_tiff(pixels(93)),
        "KA.HA1.94.tiff": encode_tiff(pixels(94)),
        f"backup/{file_name(first_happy)}": encode_tiff(pixels(95)),
        f"._{file_name(good[0])}": b"\0\5\26\7 AppleDouble",
        ".DS_Store": b"\0\0\0\1Bud1",
        "Thumbs.db": b"\xd0\xcf\x11\xe0",
    }
    write_tree(root, good, folder="jaffe", raw_files=raw)
    faults = [
        ("bad-image", "jaffe/YM.SU2.90.tiff", None),
        ("bad-name", "jaffe/KM.AN.91.tiff", None),
        ("bad-name", "jaffe/KM.AN2.tiff", None),
        ("unknown-label", "jaffe/KA.AG1.93.tiff", None),
        ("duplicate-sample", "jaffe/KA.HA1.94.tiff", None),
        ("duplicate-sample", f"jaffe/backup/{file_name(first_happy)}", None),
    ]
    # the truncated file is a well-named sample until it is decoded: it drops out of the rows
    return _expected("official", good, faults)


def nested_tree(root: str | Path) -> Expected:
    root = Path(root)
    good = good_samples(("KL", "NA"), ("DI",))
    spellings = (".tif", ".TIF", ".TIFF", ".Tiff", ".tiff")
    ext = {s.stem: spellings[k % len(spellings)] for k, s in enumerate(good)}
    lower, zeros = good[3], good[9]
    plain = [s for s in good if s not in (lower, zeros)]
    raw = {
        f"{lower.stem.lower()}.tif": encode_tiff(lower.pixels),
        f"{zeros.poser}.{zeros.code}{zeros.repetition}.{zeros.number:03d}.tif": encode_tiff(zeros.pixels),
    }
    write_tree(root, plain, folder="jaffedbase/jaffe", ext=ext, readme=False, ratings=False, raw_files=raw)
    write_tree(root, [], folder="jaffedbase", ratings=False)  # README one level up
    return _expected("official", good)


VARIANTS = {
    "flat": flat_tree,
    "nested-tif": nested_tree,
}
