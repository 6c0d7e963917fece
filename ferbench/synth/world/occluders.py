"""Occluders placed in front of a posed face: a hand, a strand of hair or sunglasses."""

from __future__ import annotations

import math

import numpy as np

from .subjects import Subject
from .topology import LANDMARKS, _grid_faces

OCCLUSIONS = ("hand", "hair", "glasses")


_Part = tuple[np.ndarray, np.ndarray, np.ndarray]  # vertices, faces, per-vertex albedo


def _ellipsoid(centre: np.ndarray, radii: tuple[float, float, float], roll: float, albedo, n: int = 10) -> _Part:
    """A closed ellipsoid rotated by ``roll`` radians about the view axis."""
    theta, phi = np.meshgrid(np.linspace(0, np.pi, n), np.linspace(0, 2 * np.pi, 2 * n, endpoint=False))
    unit = np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], -1).reshape(-1, 3)
    c, s = math.cos(roll), math.sin(roll)
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    ids = np.arange(unit.shape[0]).reshape(2 * n, n)
    faces = _grid_faces(np.concatenate([ids, ids[:1]]), mirror_left=False)
    return (unit * np.asarray(radii)) @ rot.T + centre, faces, np.tile(np.asarray(albedo, float), (len(unit), 1))


def _occluder(kind: str, s: Subject, lm: np.ndarray, rng: np.random.Generator) -> _Part:
    """A hand over the mouth, a strand of hair over one eye or sunglasses, placed in front of the
    posed landmarks ``lm``."""
    front = lm[:, 2].max()
    eyes = [lm[LANDMARKS.index(name)] for name in ("lid_upper_r", "lid_upper_l")]
    if kind == "hand":
        at = lm[LANDMARKS.index("lip_upper_inner")] + rng.uniform(-1, 1, 3) * (25.0, 12.0, 0.0)
        roll = rng.uniform(-0.6, 0.6)
        parts = [_ellipsoid(np.r_[at[:2], front + 8], (40.0, 30.0, 12.0), roll, np.multiply(s.skin, 0.95))]
    elif kind == "hair":
        eye = eyes[int(rng.integers(2))]
        roll = rng.uniform(-0.5, 0.5)
        parts = [_ellipsoid(np.r_[eye[0], eye[1] + 15, front + 2], (9.0, 55.0, 4.0), roll, s.hair)]
    elif kind == "glasses":
        lift = rng.uniform(-3, 3)
        lens = (19.0, 14.0, 2.0)
        parts = [_ellipsoid(np.r_[e[0], e[1] + lift, front + 3], lens, 0.0, (0.02, 0.02, 0.025)) for e in eyes]
    else:
        raise ValueError(f"occlusion must be one of {OCCLUSIONS}, not {kind!r}")
    starts = np.cumsum([0] + [len(v) for v, _, _ in parts])
    return (
        np.concatenate([v for v, _, _ in parts]),
        np.concatenate([f + k for (_, f, _), k in zip(parts, starts)]),
        np.concatenate([c for _, _, c in parts]),
    )
