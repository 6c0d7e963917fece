"""The synthetic world written in the raw layout of ``bu3dfe`` (see ``ferbench.synth.layouts``)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Sequence

from ...errors import FerbenchError
from ...schema import namespaced
from ...synth import world
from ...synth.layouts import SYNTH_LAYOUTS, prepare_root, draw_people, make_summary, sample_truth, subject_rng, bu3dfe83, FRONTAL, Summary
from . import layout


BU3DFE_CODES = {0: "NE", 1: "HA", 2: "SA", 3: "SU", 4: "FE", 5: "DI", 6: "AN"}


BU3DFE_ETHNICITIES = ("WH", "BL", "AE", "AM", "LA", "IN")


def write_bu3dfe(
    out_dir: str | Path, subjects: int = 20, seed: int = 0, size: int = 256, levels: Sequence[int] = world.LEVELS, raw_files: bool = True
) -> Summary:
    """``BU_3DFE/<subject>/``: one neutral and six emotions × ``levels`` textured meshes per subject
    (``raw_files=False`` leaves out the ``RAW`` pair, which converters ignore: half the bytes)."""
    if size > 512:
        raise FerbenchError("bu3dfe: the F2D texture is at most 512 pixels wide")
    people = draw_people("bu3dfe", subjects, seed, 9999)
    root = prepare_root(out_dir)
    numbers: Counter = Counter()
    truth: dict[str, dict] = {}
    for person in people:
        numbers[person.sex] += 1
        raw_id = f"{person.sex}{numbers[person.sex]:04d}"
        ethnicity = BU3DFE_ETHNICITIES[int(subject_rng(seed, person, "bu3dfe-ethnicity").integers(len(BU3DFE_ETHNICITIES)))]
        neutral = world.sample_world([person], labels=(0,), intensities=(1,), size=size, seed=seed, **FRONTAL)
        posed = world.sample_world([person], labels=range(1, 7), intensities=levels, size=size, seed=seed, **FRONTAL)
        for s in (*neutral, *posed):
            ids = bu3dfe83(s)
            scan = layout.Scan(raw_id, BU3DFE_CODES[s.label], s.intensity, ethnicity, s.mesh, ids, s.mesh.vertices[ids], s.rgb, s.rgb)
            layout.write_bu3dfe(root, [scan], top="BU_3DFE", raw_files=raw_files)
            truth[f"bu3dfe/{raw_id}/{scan.stem}"] = sample_truth(person, s.label, namespaced("bu3dfe", raw_id))
    return make_summary("bu3dfe", root, seed, subjects, size, truth)



SYNTH_LAYOUTS.register("bu3dfe", write_bu3dfe)
