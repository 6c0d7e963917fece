"""The synthetic world written in the raw layout of ``caldr_menders`` (see ``ferbench.synth.layouts``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from ...schema import namespaced
from ...synth import world
from ...synth.layouts import SYNTH_LAYOUTS, prepare_root, draw_people, make_summary, sample_truth, subject_rng, Summary
from . import layout


CALDR_WORDS = {0: "neutral", 1: "happiness", 2: "sadness", 3: "surprise", 4: "fear", 5: "disgust", 6: "anger"}


DEPTH_UNITS_PER_MM = 8  # CalD3r/MenD3s depth: SR300-like raw units of 1/8 mm


def write_caldr_menders(
    out_dir: str | Path, subjects: int = 20, seed: int = 0, size: int = 224, levels: Sequence[int] = (1, 2), tree: str = "rgb-depth"
) -> Summary:
    """``CalD3r/`` and ``MenD3s/``: RGB + 16-bit depth pairs (1/8 mm units) of spontaneous-looking expressions."""
    people = draw_people("caldr_menders", subjects, seed, 199)  # MenD3s numbers have 2 digits
    n_cal = math.ceil(subjects / 2)
    root = prepare_root(out_dir)
    truth: dict[str, dict] = {}
    for person in people:
        source_set, number = ("CalD3r", person.id + 1) if person.id < n_cal else ("MenD3s", person.id - n_cal + 1)
        neutral = world.sample_world([person], labels=(0,), intensities=world.LEVELS, size=size, seed=seed)
        expressive = world.sample_world([person], labels=range(1, 7), intensities=levels, size=size, seed=seed)
        used: set[str] = set()
        for k, s in enumerate((*neutral, *expressive)):
            rng = subject_rng(seed, person, "caldr", k)
            code = _stimulus(rng, used)
            distance = rng.uniform(450.0, 650.0)
            depth = np.where(np.isfinite(s.depth_mm), np.round((distance + np.nan_to_num(s.depth_mm)) * DEPTH_UNITS_PER_MM), 0)
            sample = layout.Sample(source_set, person.sex, number, code, CALDR_WORDS[s.label], s.rgb, depth.astype(np.uint16))
            layout.write_caldr_menders(root, [sample], tree=tree)
            subject_id = namespaced("caldr_menders", f"{source_set}-{number:0{layout.PAD[source_set]}d}")
            truth[f"caldr_menders/{source_set}/{sample.stem()}"] = sample_truth(person, s.label, subject_id)
    return make_summary("caldr_menders", root, seed, subjects, size, truth)


def _stimulus(rng: np.random.Generator, used: set[str]) -> str:
    """A 4-digit picture code (IAPS-like) not yet used by this subject."""
    while (code := str(int(rng.integers(1000, 10000)))) in used:
        pass
    used.add(code)
    return code



SYNTH_LAYOUTS.register("caldr_menders", write_caldr_menders)
