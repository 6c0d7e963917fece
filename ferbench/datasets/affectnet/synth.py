"""The synthetic world written in the raw layout of ``affectnet`` (see ``ferbench.synth.layouts``)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ...synth import world
from ...synth.layouts import SYNTH_LAYOUTS, prepare_root, draw_people, make_summary, sample_truth, split_by_subject, subject_rng, project, ibug68, Summary
from . import layout


#: (valence, arousal) centre of each canonical emotion at full strength (circumplex-like).
VALENCE_AROUSAL = {
    0: (0.0, 0.0), 1: (0.7, 0.4), 2: (-0.6, -0.3), 3: (0.2, 0.75),
    4: (-0.6, 0.7), 5: (-0.65, 0.35), 6: (-0.55, 0.7), 7: (-0.45, 0.25),
}  # fmt: skip


def write_affectnet(
    out_dir: str | Path, subjects: int = 20, seed: int = 0, size: int = 224, levels: Sequence[int] = world.LEVELS
) -> Summary:
    """``train_set/`` + ``val_set/``: JPEG faces with string exp/val/aro and 68-landmark npy files."""
    people = draw_people("affectnet", subjects, seed, 10**6)
    root = prepare_root(out_dir)
    split_of = dict(zip((p.id for p in people), split_by_subject(len(people), (("train", 0.9), ("val", 0.1)))))
    next_id = {"train": 0, "val": 0}
    gaps = {split: np.random.default_rng([seed, 7919, k]) for k, split in enumerate(next_id)}
    truth: dict[str, dict] = {}
    for s in world.sample_world(people, labels=range(8), intensities=levels, size=size, seed=seed):
        split = split_of[s.subject.id]
        name = str(next_id[split])
        next_id[split] += 1 + int(gaps[split].integers(0, 3))
        valence, arousal = _valence_arousal(s, subject_rng(seed, s.subject, "affectnet", s.label, s.intensity, name))
        landmarks = project(s, s.mesh.vertices[ibug68(s)])
        layout.write_small(root, [layout.Sample(split, name, s.rgb, s.label, valence, arousal, landmarks)])
        truth[f"affectnet/{split}/{name}"] = {**sample_truth(s.subject, s.label, None, split), "valence": valence, "arousal": arousal}
    return make_summary("affectnet", root, seed, subjects, size, truth)


def _valence_arousal(s: world.FaceSample, rng: np.random.Generator) -> tuple[float, float]:
    """The emotion's centre scaled by its level (0.55–1.0), plus noise, clipped to [-1, 1], 6 digits."""
    strength = 0.4 + 0.15 * max(s.intensity, 1)
    centre = np.asarray(VALENCE_AROUSAL[s.label]) * strength
    va = np.clip(centre + rng.normal(0, 0.08, 2), -1, 1)
    return float(f"{va[0]:.6g}"), float(f"{va[1]:.6g}")



SYNTH_LAYOUTS.register("affectnet", write_affectnet)
