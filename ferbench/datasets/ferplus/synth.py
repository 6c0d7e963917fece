"""The synthetic world written in the raw layout of ``ferplus`` (see ``ferbench.synth.layouts``).

FER+ relabels the FER2013 faces, so the tree is the ``fer2013`` synthetic world
(``fer2013/fer2013.csv``) plus ``FERPlus/fer2013new.csv`` with the 12-column header, one vote row
per face row (same order and ``Usage``), image names ``fer<row, 7 digits>.png`` as in the real
file. Each row's 10 votes give the world's label 6 to 10 votes and spread the rest over the other
emotions and ``unknown``, so the world's label is the clear majority and the converter's default
``majority`` rule gives it back. The FER2013 world renders no contempt, so neither does this one.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Sequence

import numpy as np

from ...synth import world
from ...synth.layouts import SYNTH_LAYOUTS, make_summary, Summary
from ..fer2013 import layout
from ..fer2013.synth import write_fer2013

#: Canonical index → column of the vote in fer2013new.csv (neutral, happiness, surprise, sadness,
#: anger, disgust, fear, contempt, unknown, NF), from the published header.
FERPLUS_COLUMNS = {0: 0, 1: 1, 3: 2, 2: 3, 6: 4, 5: 5, 4: 6, 7: 7}
UNKNOWN_COLUMN = 8
VOTERS = 10


def votes_for(label: int, rng: np.random.Generator) -> list[int]:
    """10 tagger votes whose clear majority (6 to 10 of them) is ``label`` (canonical index)."""
    counts = [0] * VOTERS
    top = FERPLUS_COLUMNS[label]
    counts[top] = int(rng.integers(6, VOTERS + 1))
    others = [c for c in (*FERPLUS_COLUMNS.values(), UNKNOWN_COLUMN) if c != top]
    for c in rng.choice(others, size=VOTERS - counts[top]):
        counts[int(c)] += 1
    return counts


def write_ferplus(out_dir: str | Path, subjects: int = 20, seed: int = 0, size: int = 96, levels: Sequence[int] = world.LEVELS) -> Summary:
    """``fer2013/fer2013.csv`` (the ``fer2013`` synthetic world) + ``FERPlus/fer2013new.csv`` votes."""
    fer = write_fer2013(out_dir, subjects=subjects, seed=seed, size=size, levels=levels)
    root = Path(fer["root"])
    truth: dict[str, dict] = {}
    usages, votes, names = [], [], []
    for i, (sid, t) in enumerate(fer["samples"].items()):
        assert sid == f"fer2013/{i:05d}", sid  # the CSV's rows, in order
        rng = np.random.default_rng([seed, t["world_subject"], zlib.crc32(b"ferplus-votes"), i])
        usages.append(t["split"])
        votes.append(votes_for(t["label"], rng))
        names.append(f"fer{i:07d}.png")
        truth[f"ferplus/{i:05d}"] = dict(t)
    layout.write_ferplus_csv(root / "FERPlus" / "fer2013new.csv", usages, votes, names)
    return make_summary("ferplus", root, seed, subjects, size, truth)


SYNTH_LAYOUTS.register("ferplus", write_ferplus)
