"""The synthetic world written in the raw layout of ``jaffe`` (see ``ferbench.synth.layouts``).

``jaffe/`` with one grayscale TIFF per subject × expression (the 7 labels, neutral included) ×
level in ``levels`` (the repetitions 1, 2, ...; neutral repeated as often), near-frontal as the
real posed pictures. Each subject gets a unique two-letter code (a seeded draw of AA..ZZ), the
image numbers run over the whole set, subject after subject, each subject's expressions in a
seeded order; README and ratings files are written beside the images, as in the real folder.
"""

from __future__ import annotations

import string
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np

from ...schema import namespaced
from ...synth import world
from ...synth.layouts import FRONTAL, SYNTH_LAYOUTS, Summary, draw_people, gray, make_summary, prepare_root, sample_truth, subject_rng
from . import layout

#: Canonical index → JAFFE code.
JAFFE_CODES = {index: code for code, index in layout.CODES.items()}
ALL_CODES = tuple(a + b for a in string.ascii_uppercase for b in string.ascii_uppercase)


def poser_codes(n: int, seed: int) -> list[str]:
    """``n`` distinct two-letter codes, a seeded draw (same seed, same codes)."""
    order = np.random.default_rng([seed, zlib.crc32(b"jaffe-posers")]).permutation(len(ALL_CODES))
    return [ALL_CODES[i] for i in order[:n]]


def write_jaffe(out_dir: str | Path, subjects: int = 10, seed: int = 0, size: int = 256, levels: Sequence[int] = (2, 3, 4)) -> Summary:
    """``jaffe/<XX>.<code><n>.<number>.tiff``: 7 expressions × ``levels`` per subject, grayscale."""
    people = draw_people("jaffe", subjects, seed, len(ALL_CODES))
    root = prepare_root(out_dir)
    codes = dict(zip((p.id for p in people), poser_codes(len(people), seed)))
    samples: list[layout.Sample] = []
    truth: dict[str, dict] = {}
    number = 0
    for person in people:
        faces = list(world.sample_world([person], labels=range(7), intensities=levels, size=size, seed=seed, **FRONTAL))
        by_label: dict[int, list[world.FaceSample]] = {}
        for s in faces:
            by_label.setdefault(s.label, []).append(s)
        for label in subject_rng(seed, person, "jaffe-order").permutation(7).tolist():
            for repetition, s in enumerate(by_label[label], 1):
                number += 1
                sample = layout.Sample(codes[person.id], JAFFE_CODES[label], repetition, number, gray(s.rgb))
                samples.append(sample)
                truth[f"jaffe/{sample.stem}"] = sample_truth(person, label, namespaced("jaffe", sample.poser))
    layout.write_tree(root, samples)
    return make_summary("jaffe", root, seed, subjects, size, truth)


SYNTH_LAYOUTS.register("jaffe", write_jaffe)
