"""The synthetic world written in the raw layout of ``rafdb`` (see ``ferbench.synth.layouts``)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence


from ...synth import world
from ...synth.layouts import SYNTH_LAYOUTS, prepare_root, draw_people, make_summary, sample_truth, split_by_subject, Summary
from . import layout


RAFDB_IDS = {3: 1, 4: 2, 5: 3, 1: 4, 2: 5, 6: 6, 0: 7}


def write_rafdb(out_dir: str | Path, subjects: int = 20, seed: int = 0, size: int = 100, levels: Sequence[int] = world.LEVELS) -> Summary:
    """``EmoLabel/list_patition_label.txt`` + ``Image/{aligned,original}/``: 7 emotions, test split by subject."""
    people = draw_people("rafdb", subjects, seed, 10**6)
    root = prepare_root(out_dir)
    split_of = dict(zip((p.id for p in people), split_by_subject(len(people), (("train", 0.8), ("test", 0.2)))))
    counts = {"train": 0, "test": 0}
    samples, truth = [], {}
    aligned = {"size": size, "seed": seed, "scale_jitter": 0.03, "shift_jitter": 0.01}
    for s in world.sample_world(people, labels=range(7), intensities=levels, **aligned):
        split = split_of[s.subject.id]
        counts[split] += 1
        name = f"{split}_{counts[split]:0{5 if split == 'train' else 4}d}"
        samples.append(layout.Sample(name, RAFDB_IDS[s.label], s.rgb, s.rgb))
        truth[f"rafdb/{name}"] = sample_truth(s.subject, s.label, None, split)
    layout.write_basic(root, samples)
    return make_summary("rafdb", root, seed, subjects, size, truth)



SYNTH_LAYOUTS.register("rafdb", write_rafdb)
