"""The synthetic world written in the raw layout of ``kdef`` (see ``ferbench.synth.layouts``).

``KDEF_and_AKDEF/KDEF/<session><gender><nn>/``: every drawn person (at most 70, 35 per gender)
shows the seven expressions in each session (A and B, by default) at each angle (all five, by
default). The gender is the world subject's sex, unless its 35 numbers are taken, then the other
one; numbers count up per gender in drawing order. One photograph per (person, session,
expression) fixes the expression's AU intensities (the prototype at ``level``, ±10 %), the light
(mild variation: KDEF's studio lighting was controlled), a small head-pose offset, scale and
framing; the angles are head yaws of that photograph (``YAW``: FL −90°, HL −45°, S 0°, HR +45°,
FR +90°; which profile KDEF calls "left" is UNVERIFIED here, the converter does not care).
Images are square ``size`` × ``size`` JPEGs (the release's are 562×762 portrait).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Sequence

from ...errors import FerbenchError
from ...schema import namespaced
from ...synth import world
from ...synth.layouts import SYNTH_LAYOUTS, Summary, draw_people, make_summary, prepare_root, sample_truth, subject_rng
from . import layout

#: Canonical label → KDEF expression code.
KDEF_CODES = {0: "NE", 1: "HA", 2: "SA", 3: "SU", 4: "AF", 5: "DI", 6: "AN"}
#: Angle code → head yaw in degrees (the world's pose convention).
YAW = {"FL": -90.0, "HL": -45.0, "S": 0.0, "HR": 45.0, "FR": 90.0}
POSE_JITTER = (3.0, 3.0, 2.0)  # degrees of (yaw, pitch, roll) around the angle's yaw
SCALE_JITTER, SHIFT_JITTER, LIGHT_JITTER, AU_JITTER = 0.03, 0.01, 0.3, 0.1


def write_kdef(
    out_dir: str | Path,
    subjects: int = 20,
    seed: int = 0,
    size: int = 128,
    level: int = 3,
    sessions: Sequence[str] = layout.SESSIONS,
    angles: Sequence[str] = layout.ANGLES,
) -> Summary:
    """``KDEF_and_AKDEF/KDEF/``: 7 posed expressions × ``angles`` × ``sessions`` per person."""
    people = draw_people("kdef", subjects, seed, len(layout.GENDERS) * layout.PEOPLE_PER_GENDER)
    sessions, angles = tuple(dict.fromkeys(sessions)), tuple(dict.fromkeys(angles))
    if not sessions or not set(sessions) <= set(layout.SESSIONS):
        raise FerbenchError(f"kdef: sessions must be some of {layout.SESSIONS}, not {sessions}")
    if not angles or not set(angles) <= set(YAW):
        raise FerbenchError(f"kdef: angles must be some of {layout.ANGLES}, not {angles}")
    if level not in world.LEVELS:
        raise FerbenchError(f"kdef: level must be one of {world.LEVELS}, not {level}")
    root = prepare_root(out_dir)
    numbers: Counter = Counter()
    truth: dict[str, dict] = {}
    for person in people:
        gender = person.sex if numbers[person.sex] < layout.PEOPLE_PER_GENDER else ({"F", "M"} - {person.sex}).pop()
        numbers[gender] += 1
        number = numbers[gender]
        subject_id = namespaced("kdef", f"{gender}{number:02d}")
        for session in sessions:
            photos = []
            for label, code in KDEF_CODES.items():
                for angle, s in zip(angles, _photographs(person, label, session, angles, size, seed, level)):
                    photo = layout.Photo(session, gender, number, code, angle, s.rgb)
                    photos.append(photo)
                    truth[f"kdef/{photo.stem}"] = sample_truth(person, label, subject_id)
            layout.write_kdef(root, photos)
    return make_summary("kdef", root, seed, subjects, size, truth)


def _photographs(person: world.Subject, label: int, session: str, angles: Sequence[str], size: int, seed: int, level: int):
    """The renders of one (person, session, expression) at each angle, sharing its AUs, light,
    framing and backdrop (one studio set-up per photograph)."""
    rng = subject_rng(seed, person, "kdef", session, label)
    peak = 0 if label == 0 else level
    proto = world.prototype(label, peak, person.gain)
    aus = {au: round(min(5.0, v * (1 + rng.uniform(-AU_JITTER, AU_JITTER))), 4) for au, v in proto.items()}
    light = world.random_light(rng, LIGHT_JITTER)
    yaw, pitch, roll = (float(v) for v in rng.uniform(-1, 1, 3) * POSE_JITTER)
    scale = 1 + float(rng.uniform(-SCALE_JITTER, SCALE_JITTER))
    shift = tuple(float(v) for v in rng.uniform(-SHIFT_JITTER, SHIFT_JITTER, 2))
    render_seed = int(rng.integers(2**31))
    for angle in angles:
        yield world.render_face(
            person, aus, size=size, pose=(YAW[angle] + yaw, pitch, roll), light=light, scale=scale, shift=shift,
            seed=render_seed, label=label, intensity=peak,
        )  # fmt: skip


SYNTH_LAYOUTS.register("kdef", write_kdef)
