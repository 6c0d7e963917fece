"""Synthetic identities: ``Subject`` (face geometry in mm, albedos, expressiveness) drawn per seed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# hair albedos (black, dark brown, brown, blond, grey, red) and their frequencies
_HAIR = (
    (0.03, 0.025, 0.02), (0.08, 0.05, 0.03), (0.2, 0.12, 0.06),
    (0.5, 0.38, 0.2), (0.35, 0.34, 0.33), (0.3, 0.1, 0.04),
)  # fmt: skip
_HAIR_P = (0.3, 0.25, 0.2, 0.1, 0.08, 0.07)
_IRIS = ((0.14, 0.07, 0.03), (0.12, 0.22, 0.38), (0.12, 0.22, 0.1), (0.05, 0.03, 0.02))


@dataclass(frozen=True)
class Subject:
    """One synthetic person: face geometry in mm, linear-RGB albedos, expressiveness gain."""

    id: int
    sex: str
    head_w: float
    head_top: float
    head_d: float
    jaw_taper: float
    eye_x: float
    eye_y: float
    eye_w: float
    eye_open: float
    brow_gap: float
    brow_thick: float
    nose_y: float
    nose_len: float
    nose_w: float
    mouth_y: float
    mouth_w: float
    lip_h: float
    chin_drop: float
    hairline: float
    skin: tuple[float, float, float]
    lip: tuple[float, float, float]
    hair: tuple[float, float, float]
    iris: tuple[float, float, float]
    beard: float
    gain: float

    @property
    def brow_y(self) -> float:
        return self.eye_y + self.brow_gap

    @property
    def chin_y(self) -> float:
        return self.mouth_y - self.chin_drop


def make_subjects(n: int, seed: int = 0) -> list[Subject]:
    """``n`` subjects; subject ``i`` depends only on (seed, i), not on ``n``."""
    return [_subject(i, np.random.default_rng([seed, i])) for i in range(n)]


def _subject(i: int, rng: np.random.Generator) -> Subject:
    male = rng.random() < 0.5
    eye_x, eye_w = rng.normal(32.0 if male else 31.0, 1.5), rng.normal(14.0, 0.8)
    mouth_w = float(np.clip(rng.normal(25.0 if male else 23.5, 1.5), eye_x - eye_w + 3, eye_x - 3))
    tone = rng.uniform()
    skin = np.array([0.2, 0.11, 0.07]) + tone * np.array([0.55, 0.44, 0.38]) + rng.normal(0, 0.015, 3)
    lip = skin * np.array([0.95, 0.6, 0.62]) + np.array([0.06, 0.0, 0.0]) * (1 + (not male) * rng.uniform())
    hair = np.array(_HAIR[rng.choice(len(_HAIR), p=_HAIR_P)]) * rng.uniform(0.8, 1.2)
    return Subject(
        id=i,
        sex="M" if male else "F",
        head_w=rng.normal(75.0 if male else 70.0, 3.0),
        head_top=rng.normal(108.0, 5.0),
        head_d=rng.normal(92.0 if male else 88.0, 3.0),
        jaw_taper=rng.uniform(0.05, 0.2) if male else rng.uniform(0.12, 0.28),
        eye_x=eye_x,
        eye_y=rng.normal(28.0, 2.5),
        eye_w=eye_w,
        eye_open=float(np.clip(rng.normal(8.5, 1.0), 6.5, 10.5)),
        brow_gap=rng.normal(15.0 if male else 16.5, 1.5),
        brow_thick=rng.normal(5.5 if male else 4.2, 0.6),
        nose_y=rng.normal(-3.0, 2.5),
        nose_len=rng.normal(24.0 if male else 21.0, 2.5),
        nose_w=rng.normal(17.5 if male else 16.0, 1.2),
        mouth_y=rng.normal(-36.0, 2.5),
        mouth_w=mouth_w,
        lip_h=rng.normal(5.0 if male else 6.0, 0.7),
        chin_drop=rng.normal(31.0 if male else 28.0, 2.5),
        hairline=rng.normal(66.0 if male else 62.0, 6.0),
        skin=tuple(np.clip(skin, 0.05, 0.95).round(4)),
        lip=tuple(np.clip(lip, 0.03, 0.95).round(4)),
        hair=tuple(np.clip(hair, 0.0, 1.0).round(4)),
        iris=_IRIS[rng.choice(len(_IRIS))],
        beard=float(rng.uniform(0.3, 0.7)) if male and rng.random() < 0.4 else 0.0,
        gain=rng.uniform(0.85, 1.15),
    )
