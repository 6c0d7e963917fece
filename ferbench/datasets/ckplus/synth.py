"""The synthetic world written in the raw layout of ``ckplus`` (see ``ferbench.synth.layouts``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...schema import namespaced
from ...synth import world
from ...synth.layouts import SYNTH_LAYOUTS, prepare_root, draw_people, make_summary, sample_truth, subject_rng, gray, project, ibug68, Summary
from . import layout


CKPLUS_IDS = {6: 1, 7: 2, 5: 3, 4: 4, 1: 5, 2: 6, 3: 7}


def write_ckplus(
    out_dir: str | Path, subjects: int = 20, seed: int = 0, size: int = 128, frames: tuple[int, int] = (6, 12), landmarks: bool = True
) -> Summary:
    """The official CK+ tree: one neutral→peak sequence per emotion 1–7 and subject."""
    people = draw_people("ckplus", subjects, seed, 999)
    root = prepare_root(out_dir)
    truth: dict[str, dict] = {}
    for person in people:
        name = f"S{person.id + 1:03d}"
        numbers = subject_rng(seed, person, "ckplus-sequences").permutation(7) + 1
        for label, number in zip(range(1, 8), numbers):
            clip, seq = _ck_sequence(person, label, int(number), name, seed, size, frames, landmarks)
            layout.write_official(root, [seq])
            aus = [{"au": au, "intensity": float(value), "side": None} for au, value in seq.facs]
            for k in range(1, seq.peak + 1):
                peak = k == seq.peak
                truth[f"ckplus/{seq.folder}/{k:08d}"] = sample_truth(
                    person, clip[-1].label if peak else None, namespaced("ckplus", name), None, aus if peak else None
                )
    return make_summary("ckplus", root, seed, subjects, size, truth)


def _ck_sequence(
    person: world.Subject, label: int, number: int, name: str, seed: int, size: int, frames: tuple[int, int], landmarks: bool
) -> tuple[list[world.FaceSample], layout.CKSequence]:
    rng = subject_rng(seed, person, "ckplus", label)
    clip = world.sequence(
        person, label, int(rng.integers(frames[0], frames[1] + 1)), size=size,
        pose=tuple(rng.uniform(-3, 3, 3)), light=world.random_light(rng, 0.3),
        scale=1 + rng.uniform(-0.05, 0.05), side=world.SIDES[int(rng.integers(2))], seed=int(rng.integers(2**31)),
    )  # fmt: skip
    facs = [(au, int(np.clip(round(v), 1, 5))) for au, v in sorted(clip[-1].aus.items())]
    points = None
    if landmarks:
        ids = ibug68(clip[0])
        points = [project(f, f.mesh.vertices[ids]) for f in clip]
    seq = layout.CKSequence(name, number, [gray(f.rgb) for f in clip], CKPLUS_IDS[clip[-1].label], facs, points)
    return clip, seq



SYNTH_LAYOUTS.register("ckplus", write_ckplus)
