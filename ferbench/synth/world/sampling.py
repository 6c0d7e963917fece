"""Sampling the world: random lights, jittered subject × label × level draws, and neutral → peak clips.

Each sample's random stream is keyed on (seed, subject id, label, level, repeat), never on
iteration order, so ``sample_world`` and ``sequence`` are deterministic per seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np

from ..shading import Light
from .aus import LEVELS, SIDES, UNILATERAL, prototype
from .face import FaceSample, render_face
from .occluders import OCCLUSIONS
from .subjects import Subject

def random_light(rng: np.random.Generator, jitter: float = 1.0) -> Light:
    """A random key light: azimuth ±60°, elevation −20..50°, intensity, ambient and colour vary."""
    az = math.radians(rng.uniform(-60, 60) * jitter)
    el = math.radians(15 + rng.uniform(-35, 35) * jitter)
    warm = rng.uniform(-1, 1) * jitter
    return Light(
        direction=(math.sin(az) * math.cos(el), math.sin(el), math.cos(az) * math.cos(el)),
        intensity=0.85 * (1 + rng.uniform(-0.4, 0.3) * jitter),
        ambient=0.3 * (1 + rng.uniform(-0.5, 0.5) * jitter),
        colour=(1 + 0.1 * warm, 1.0, 1 - 0.1 * warm),
    )


@dataclass(frozen=True)
class _Jitter:
    pose: tuple[float, float, float]
    scale: float
    shift: float
    light: float
    aus: float
    occlusion_rate: float


def sample_world(
    subjects: Iterable[Subject],
    labels: Iterable[int] = range(7),
    intensities: Iterable[int] = LEVELS,
    per_combo: int = 1,
    size: int = 64,
    seed: int = 0,
    pose_jitter: tuple[float, float, float] = (15.0, 10.0, 6.0),
    scale_jitter: float = 0.1,
    shift_jitter: float = 0.04,
    light_jitter: float = 1.0,
    au_jitter: float = 0.1,
    occlusion_rate: float = 0.1,
) -> Iterator[FaceSample]:
    """Samples for every subject × label × level × repeat (neutral: as many, at level 0).

    Pose angles are uniform within ±``pose_jitter`` degrees (yaw, pitch, roll), scale within
    1 ± ``scale_jitter``, shift within ± ``shift_jitter`` of the image; AU intensities are scaled by
    the subject's gain and 1 ± ``au_jitter``; contempt's side is drawn per sample; a fraction
    ``occlusion_rate`` of samples gets an occluder.
    """
    jitter = _Jitter(tuple(pose_jitter), scale_jitter, shift_jitter, light_jitter, au_jitter, occlusion_rate)
    levels = tuple(intensities)
    for subject in subjects:
        for label in labels:
            for j, level in enumerate(levels):
                for k in range(per_combo):
                    rng = np.random.default_rng([seed, subject.id, label, j, k])
                    yield _draw(subject, label, 0 if label == 0 else level, size, jitter, rng)


def _draw(subject: Subject, label: int, level: int, size: int, jitter: _Jitter, rng) -> FaceSample:
    proto = prototype(label, level, subject.gain)
    aus = {au: round(min(5.0, v * (1 + rng.uniform(-jitter.aus, jitter.aus))), 4) for au, v in proto.items()}
    side = SIDES[int(rng.integers(2))]
    occlusion = OCCLUSIONS[int(rng.integers(len(OCCLUSIONS)))] if rng.random() < jitter.occlusion_rate else None
    return render_face(
        subject,
        aus,
        sides={au: side for au in UNILATERAL.get(label, ())},
        size=size,
        pose=tuple(float(v) for v in rng.uniform(-1, 1, 3) * np.asarray(jitter.pose)),
        light=random_light(rng, jitter.light),
        scale=1 + rng.uniform(-jitter.scale, jitter.scale),
        shift=tuple(rng.uniform(-jitter.shift, jitter.shift, 2)),
        occlusion=occlusion,
        seed=int(rng.integers(2**31)),
        label=label,
        intensity=level,
    )


def sequence(
    subject: Subject,
    label: int,
    n_frames: int,
    *,
    peak: int = 4,
    size: int = 64,
    pose: tuple[float, float, float] = (0.0, 0.0, 0.0),
    light: Light | None = None,
    scale: float = 1.0,
    side: str = "R",
    seed: int = 0,
) -> list[FaceSample]:
    """A neutral → peak clip (CK+ style): AU intensities ramp smoothly from 0 to ``label`` at ``peak``.

    Frame 0 is neutral (label 0, no AUs); later frames carry ``label`` and the level reached so far.
    """
    if n_frames < 2:
        raise ValueError("a sequence needs at least 2 frames")
    top = prototype(label, peak, subject.gain)
    sides = {au: side for au in UNILATERAL.get(label, ())}
    frames = []
    for k in range(n_frames):
        r = k / (n_frames - 1)
        r = r * r * (3 - 2 * r)
        aus = {au: round(v * r, 4) for au, v in top.items()} if r > 0 else {}
        level = 0 if not aus else max(1, math.ceil(peak * r - 1e-9))
        frame = render_face(
            subject, aus, sides=sides, size=size, pose=pose, light=light, scale=scale, seed=seed,
            label=label if aus else 0, intensity=level,
        )  # fmt: skip
        frames.append(frame)
    return frames
