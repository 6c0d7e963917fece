"""FACS action units of the synthetic world: names, emotion prototypes, intensities and activations.

Expressions are AU intensities on the FACS 0–5 scale (A = 1 … E = 5). ``EMOTION_AUS`` holds the
prototype of each canonical emotion; level ``k`` (1..4, BU-3DFE's intensity levels) sets each
prototype AU to ``weight × (k + 1) × subject gain`` (capped at 5). ``label_from_aus`` inverts the
prototypes; ``_activations`` turns intensities into the 0..1 muscle activations the mesh responds to.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

AU_NAMES: dict[int, str] = {
    1: "inner brow raiser",
    2: "outer brow raiser",
    4: "brow lowerer",
    5: "upper lid raiser",
    6: "cheek raiser",
    7: "lid tightener",
    9: "nose wrinkler",
    10: "upper lip raiser",
    12: "lip corner puller",
    14: "dimpler",
    15: "lip corner depressor",
    16: "lower lip depressor",
    17: "chin raiser",
    20: "lip stretcher",
    23: "lip tightener",
    24: "lip pressor",
    25: "lips part",
    26: "jaw drop",
    43: "eyes closed",
}
AUS: tuple[int, ...] = tuple(sorted(AU_NAMES))
_AU_INDEX = {au: i for i, au in enumerate(AUS)}

#: Prototype AUs and weights per canonical label (``ferbench.schema.EMOTIONS`` order).
EMOTION_AUS: dict[int, dict[int, float]] = {
    0: {},
    1: {6: 0.8, 12: 1.0},
    2: {1: 1.0, 4: 0.6, 15: 1.0},
    3: {1: 1.0, 2: 1.0, 5: 0.8, 26: 1.0},
    4: {1: 1.0, 2: 0.8, 4: 0.7, 5: 1.0, 20: 1.0, 26: 0.6},
    5: {9: 1.0, 15: 0.8, 16: 0.7},
    6: {4: 1.0, 5: 0.6, 7: 1.0, 23: 1.0},
    7: {12: 0.8, 14: 1.0},
}
#: AUs that act on one side of the face only, per label.
UNILATERAL: dict[int, frozenset[int]] = {7: frozenset({12, 14})}
LEVELS = (1, 2, 3, 4)
SIDES = ("R", "L")  # the subject's right is the image's left (x < 0)


def prototype(label: int, level: int, gain: float = 1.0) -> dict[int, float]:
    """AU intensities (FACS 0–5) of ``label`` at ``level`` (0 = neutral, 1..4)."""
    if label == 0 or level == 0:
        return {}
    if level not in LEVELS:
        raise ValueError(f"level must be 0 or one of {LEVELS}, not {level}")
    return {au: round(min(5.0, w * (level + 1) * gain), 4) for au, w in EMOTION_AUS[label].items()}


def label_from_aus(aus: Mapping[int, float]) -> int | None:
    """The label whose prototype has exactly the active AUs (``{}`` → neutral), else ``None``."""
    active = {au for au, v in aus.items() if v > 0}
    for label, proto in EMOTION_AUS.items():
        if set(proto) == active:
            return label
    return None


def au_vector(aus: Mapping[int, float]) -> np.ndarray:
    """AU intensities as a vector in ``AUS`` order."""
    vec = np.zeros(len(AUS))
    for au, v in aus.items():
        vec[_AU_INDEX[au]] = v
    return vec


def level_of(aus: Mapping[int, float]) -> int:
    """The intensity level (0..4) whose prototype peak, ``level + 1``, is nearest the strongest AU."""
    return 0 if not aus else int(np.clip(round(max(aus.values()) - 1), 1, 4))


#: Muscle response: activation = (intensity / 5) ** RESPONSE, so weak AUs stay visible.
RESPONSE = 0.6


def _activations(aus: Mapping[int, float], sides: Mapping[int, str]) -> np.ndarray:
    """(n_AU, 2) activations 0..1 per AU and side (R, L) from FACS intensities."""
    act = np.zeros((len(AUS), 2))
    for au, v in aus.items():
        if au not in _AU_INDEX:
            raise ValueError(f"AU {au} is not modelled (known: {AUS})")
        col = [SIDES.index(sides[au])] if au in sides else [0, 1]
        act[_AU_INDEX[au], col] = np.clip(v / 5.0, 0.0, 1.0) ** RESPONSE
    return act
