"""Per-pixel albedo of the face materials (skin, eyes, mouth), evaluated in rest coordinates.

Brows, lips, lids, hair and beard are painted on the skin; AU-driven wrinkles (forehead, glabella,
nose, nasolabial folds, crow's feet, dimples) darken it as in wrinkle maps.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from .aus import AUS
from .geometry import _g
from .subjects import Subject
from .topology import EYE, MOUTH, SKIN

def _sstep(t: np.ndarray, width: float = 0.6) -> np.ndarray:
    """Soft 0→1 edge at t = 0."""
    return np.clip(0.5 + t / (2 * width), 0, 1)


def _skin_albedo(s: Subject, x: np.ndarray, y: np.ndarray, act: Mapping[int, np.ndarray]) -> np.ndarray:
    """Linear-RGB albedo of skin pixels at rest coordinates (x, y); ``act`` AU activations 0..1."""
    ax = np.abs(x)
    colour = np.tile(np.asarray(s.skin), (len(x), 1))
    colour *= 1 + 0.12 * _g(ax - (s.eye_x + 4), y - s.nose_y, 14, 12)[:, None] * np.array([0.5, -0.4, -0.4])
    beard = s.beard * _sstep(s.nose_y - 9 - y, 2.0) * _sstep(s.head_w * 0.8 - ax, 3.0)
    colour += (np.asarray(s.hair) - colour) * beard[:, None] * 0.6
    lips_k = 1 - 0.6 * act[23] - 0.5 * act[24]
    profile = np.sqrt(np.clip(1 - (x / s.mouth_w) ** 2, 0, None))
    dy = y - s.mouth_y
    lip_h = s.lip_h * lips_k * profile
    lips = np.where(dy >= 0, _sstep(lip_h - dy), _sstep(1.1 * lip_h + dy))
    lips *= profile > 0
    colour += (np.asarray(s.lip) - colour) * lips[:, None]
    inner, outer = s.eye_x - s.eye_w - 3, s.eye_x + s.eye_w + 5
    along = np.clip((ax - inner) / (outer - inner), 0, 1)
    centre = s.brow_y + 3 * (1 - ((ax - s.eye_x) / (s.eye_w + 4)) ** 2)
    thick = s.brow_thick * (1.2 - 0.6 * along)
    brows = _sstep(thick / 2 - np.abs(y - centre)) * _sstep(ax - inner) * _sstep(outer - ax)
    colour += (np.asarray(s.hair) * 0.7 - colour) * 0.9 * brows[:, None]
    hairline = s.hairline - 10 * (x / (s.eye_x + 15)) ** 2
    sideburns = _sstep(ax - 0.86 * s.head_w, 2.0) * _sstep(y - (s.eye_y - 8), 2.0)
    hair = np.maximum(_sstep(y - hairline, 1.5), sideburns)
    colour += (np.asarray(s.hair) - colour) * hair[:, None]
    eye = np.clip(1 - ((ax - s.eye_x) / s.eye_w) ** 2, 0, None)
    dye = y - s.eye_y
    lash = eye * np.where(dye >= 0, _sstep(1.3 - dye, 0.4), 0.5 * _sstep(0.6 + dye, 0.3))
    shadow = 0.25 * eye * _g(np.zeros_like(x), dye - 4, 1, 2.5)
    nostril = _sstep(1 - ((ax - s.nose_w * 0.3) / 3.5) ** 2 - ((y - (s.nose_y - 5)) / 2.0) ** 2, 0.3)
    dark = np.clip(0.8 * lash + shadow + 0.7 * nostril + _wrinkles(s, x, y, act), 0, 0.9)
    return colour * (1 - dark)[:, None]


def _nasolabial(s: Subject, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Distance (mm) of (|x|, y) to the nasolabial fold line from the nose wing to past the mouth corner."""
    a = np.array([s.nose_w * 0.6, s.nose_y - 4])
    b = np.array([s.mouth_w + 7, s.mouth_y - 7])
    p = np.stack([np.abs(x), y], 1) - a
    d = b - a
    t = np.clip(p @ d / (d @ d), 0, 1)
    return np.linalg.norm(p - t[:, None] * d, axis=1)


def _wrinkles(s: Subject, x: np.ndarray, y: np.ndarray, act: Mapping[int, np.ndarray]) -> np.ndarray:
    """Darkening (0..1) of AU-driven wrinkles and folds."""
    ax = np.abs(x)
    forehead = _sstep(y - (s.brow_y + 7), 1.5) * _sstep(s.hairline - 5 - y, 1.5)
    forehead *= _sstep(s.eye_x + s.eye_w - ax, 3)
    fold = 0.08 + 0.45 * np.clip(act[12] + 0.6 * act[9] + 0.6 * act[10] + 0.3 * act[6], 0, 1)
    crows_feet = _g(ax - (s.eye_x + s.eye_w + 5), y - s.eye_y, 3, 6) * _lines(y, 3.0)
    return (
        0.3 * np.maximum(act[1], act[2]) * forehead * _lines(y - s.brow_y, 7.0)
        + 0.5 * act[4] * _g(ax - 4, y - (s.brow_y - 3), 1.5, 7)
        + 0.45 * act[9] * _lines(y - s.nose_y, 4.0) * _g(x, y - (s.nose_y + 16), 9, 6)
        + fold * np.exp(-0.5 * (_nasolabial(s, x, y) / 1.6) ** 2)
        + 0.35 * act[6] * crows_feet
        + 0.4 * act[14] * _g(ax - (s.mouth_w + 4), y - s.mouth_y, 2, 3)
        + 0.35 * act[15] * _g(ax - (s.mouth_w + 1), y - (s.mouth_y - 9), 1.5, 6)
        + 0.2 * act[17] * _g(x, y - s.chin_y, 10, 6)
    )


def _lines(t: np.ndarray, period: float) -> np.ndarray:
    """Parallel wrinkle lines: 0..1, peaking every ``period`` mm of ``t``."""
    return 0.5 + 0.5 * np.cos(2 * np.pi * t / period)


def _eye_albedo(s: Subject, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    r = np.hypot(dx, dy)
    sclera = np.array([0.72, 0.69, 0.66])
    iris = np.asarray(s.iris) * (1 - 0.4 * _sstep(r - 4.8, 0.4))[:, None]
    colour = sclera + (iris - sclera) * _sstep(5.5 - r, 0.3)[:, None]
    return colour * (1 - 0.9 * _sstep(2.2 - r, 0.3))[:, None]


def _mouth_albedo(s: Subject, x: np.ndarray, off: np.ndarray) -> np.ndarray:
    height = np.abs(off)
    teeth = _sstep(height - 0.5, 0.2) * _sstep(3.5 - height, 0.3) * _sstep(s.mouth_w * 0.8 - np.abs(x), 1.0)
    teeth *= 1 - 0.3 * np.exp(-0.5 * ((np.mod(x, 4.0) - 2.0) / 0.4) ** 2)
    cavity, tooth = np.array([0.09, 0.02, 0.02]), np.array([0.7, 0.66, 0.58])
    return cavity + (tooth - cavity) * teeth[:, None]


def _albedo(material: int, s: Subject, q: np.ndarray, act: np.ndarray) -> np.ndarray:
    """Linear-RGB albedo of pixels of one material from their interpolated texture coordinates."""
    if material == SKIN:
        right = q[:, 0] < 0  # the subject's right side
        per_pixel = {au: np.where(right, act[i, 0], act[i, 1]) for i, au in enumerate(AUS)}
        return _skin_albedo(s, q[:, 0], q[:, 1], per_pixel)
    if material == EYE:
        return _eye_albedo(s, q[:, 0], q[:, 1])
    if material == MOUTH:
        return _mouth_albedo(s, q[:, 0], q[:, 1])
    return q  # occluders carry their albedo
