"""The synthetic world written in the raw layout of ``fer2013`` (see ``ferbench.synth.layouts``)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ...synth import world
from ...synth.layouts import SYNTH_LAYOUTS, prepare_root, draw_people, make_summary, sample_truth, split_by_subject, gray, Summary
from . import layout


FER2013_IDS = {6: 0, 5: 1, 4: 2, 1: 3, 2: 4, 3: 5, 0: 6}


FER2013_SPLITS = (("Training", 0.8), ("PublicTest", 0.1), ("PrivateTest", 0.1))


def write_fer2013(out_dir: str | Path, subjects: int = 20, seed: int = 0, size: int = 96, levels: Sequence[int] = world.LEVELS) -> Summary:
    """``fer2013/fer2013.csv``: 48×48 grayscale faces in Training/PublicTest/PrivateTest blocks split by subject."""
    people = draw_people("fer2013", subjects, seed, 10**6)
    root = prepare_root(out_dir)
    usage = dict(zip((p.id for p in people), split_by_subject(len(people), FER2013_SPLITS)))
    block = {name: k for k, (name, _) in enumerate(FER2013_SPLITS)}
    rows = [
        (block[usage[s.subject.id]], gray(s.rgb, 48), s.label, s.subject)
        for s in world.sample_world(people, labels=range(7), intensities=levels, size=size, seed=seed)
    ]
    rows.sort(key=lambda r: r[0])  # stable: subject-major inside each block
    names = [FER2013_SPLITS[r[0]][0] for r in rows]
    faces, emotions = np.stack([r[1] for r in rows]), [FER2013_IDS[r[2]] for r in rows]
    layout.write_csv(root / "fer2013" / "fer2013.csv", "fer2013", faces, emotions, names)
    truth = {f"fer2013/{i:05d}": sample_truth(person, label, None, names[i]) for i, (_, _, label, person) in enumerate(rows)}
    return make_summary("fer2013", root, seed, subjects, size, truth)



SYNTH_LAYOUTS.register("fer2013", write_fer2013)
