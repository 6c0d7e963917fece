"""Per-subject rest geometry of the face mesh and its AU displacement basis.

The skin is a flattened ellipsoid carrying eye sockets, brow ridge, nose, cheeks, lips and chin;
eyeball caps and a mouth cavity with teeth sit behind the slits. Each AU is a displacement field
(a linear blend shape per side); the jaw drop is a rotation about the jaw hinge.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from .aus import _AU_INDEX, AUS
from .subjects import Subject
from .topology import (
    _CAP,
    _CAVITY_COLS,
    _CAVITY_ROWS,
    _COL_SEGMENTS,
    _ROW_SEGMENTS,
    _Topology,
    _topology,
)

def _g(u: np.ndarray, v: np.ndarray, su: float, sv: float) -> np.ndarray:
    return np.exp(-0.5 * ((u / su) ** 2 + (v / sv) ** 2))


def _sigmoid(t: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(t, -50, 50)))


def _knots(knots: Iterable[float], counts: Iterable[int]) -> np.ndarray:
    knots, out = list(knots), []
    for k, n in enumerate(counts):
        out.append(np.linspace(knots[k], knots[k + 1], n, endpoint=False))
    return np.concatenate(out + [np.array([knots[-1]])])


def _grid_axes(s: Subject) -> tuple[np.ndarray, np.ndarray]:
    half = _knots((0.0, s.eye_x - s.eye_w, s.mouth_w, s.eye_x, s.eye_x + s.eye_w, s.head_w), _COL_SEGMENTS)
    xs = np.concatenate([-half[:0:-1], half])
    bottom = s.chin_y - 12.0
    ys = _knots((bottom, s.chin_y, s.mouth_y, s.nose_y, s.eye_y, s.brow_y, s.head_top), _ROW_SEGMENTS)
    return xs, ys


def _outline(s: Subject, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Head outline measure: < 1 inside the face, 1 on the rim."""
    return np.abs(x / _half_width(s, y)) ** 2.6 + (y / _half_height(s, y)) ** 2


def _half_width(s: Subject, y: np.ndarray) -> np.ndarray:
    """Horizontal semi-axis at height y (the jaw tapers below the nose)."""
    taper = np.clip((s.nose_y - y) / (s.nose_y + 12.0 - s.chin_y), 0, 1) ** 1.5
    return s.head_w * (1 - s.jaw_taper * taper)


def _half_height(s: Subject, y: np.ndarray) -> np.ndarray:
    return np.where(y >= 0, s.head_top, 12.0 - s.chin_y)


def _rim_clamp(s: Subject, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x pulled onto the head outline where the grid reaches beyond it."""
    rim = _half_width(s, y) * np.clip(1 - (y / _half_height(s, y)) ** 2, 0, None) ** (1 / 2.6)
    return np.clip(x, -rim, rim)


def _surface_z(s: Subject, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Rest-pose z of the skin at (x, y): flattened ellipsoid plus facial features."""
    z0 = s.head_d * np.sqrt(np.clip(1 - _outline(s, x, y), 0, None))
    ax = np.abs(x)
    ty, span = y - s.nose_y, s.eye_y - s.nose_y
    ridge = np.where(
        ty >= 0,
        np.where(ty <= span, 0.25 + 0.75 * (1 - ty / span), 0.25 * np.exp(-0.5 * ((ty - span) / 6) ** 2)),
        np.exp(-0.5 * (ty / 4.5) ** 2),
    )
    width = np.where(ty >= 0, 5.5 + (s.nose_w * 0.3 - 5.5) * np.clip(1 - ty / span, 0, 1), s.nose_w * 0.35)
    features = (
        -6.0 * _g(ax - s.eye_x, y - s.eye_y, 13, 9)
        + 4.0 * _g(x, y - (s.brow_y - 2), 40, 6)
        + s.nose_len * ridge * np.exp(-0.5 * (x / width) ** 2)
        + 5.0 * _g(ax - s.nose_w * 0.45, y - (s.nose_y - 4), 4.5, 4)
        + 5.0 * _g(ax - (s.eye_x + 4), y - (s.nose_y + 2), 16, 14)
        + 3.5 * _g(x, y - (s.mouth_y + s.lip_h * 0.6), s.mouth_w * 0.8, 3.5)
        + 3.5 * _g(x, y - (s.mouth_y - s.lip_h * 0.7), s.mouth_w * 0.75, 4)
        - 2.0 * _g(x, y - (s.mouth_y - s.lip_h * 1.7 - 3), s.mouth_w * 0.7, 3)
        + 5.0 * _g(x, y - s.chin_y, 18, 10)
    )
    return z0 + np.clip(z0 / (0.6 * s.head_d), 0, 1) * features


@dataclass(frozen=True)
class _Geometry:
    rest: np.ndarray  # (N, 3)
    tex: np.ndarray  # (N, 3) texture coordinates per material
    basis: np.ndarray  # (n_AU, 2 sides, N, 3) displacement at full intensity
    faces: np.ndarray
    material: np.ndarray


def _lid_fields(s: Subject, x: np.ndarray, y: np.ndarray, t: _Topology) -> tuple[np.ndarray, np.ndarray]:
    """Unit upper/lower eyelid displacement weights (1 on the lid edge at the eye centre)."""
    shape = np.clip(1 - ((np.abs(x) - s.eye_x) / s.eye_w) ** 2, 0, None)
    up = shape * np.exp(-0.5 * (np.clip(y - s.eye_y, 0, None) / 5.0) ** 2) * t.upper_eye
    lo = shape * np.exp(-0.5 * (np.clip(s.eye_y - y, 0, None) / 4.0) ** 2) * t.lower_eye
    return up, lo


def _lid_heights(s: Subject) -> tuple[float, float]:
    """How far the upper / lower lid edge sits above / below the eye line at rest (mm)."""
    return s.eye_open * 0.55, s.eye_open * 0.45


def _jaw(s: Subject, p: np.ndarray, weight: np.ndarray, degrees: float = 12.0) -> np.ndarray:
    """Displacement of points ``p`` rotated by the jaw about the hinge axis, times ``weight``."""
    phi = math.radians(degrees)
    hinge = np.array([0.0, s.eye_y - 5.0, -10.0])
    q = p - hinge
    c, s_ = math.cos(phi), math.sin(phi)
    moved = q @ np.array([[1.0, 0.0, 0.0], [0.0, c, -s_], [0.0, s_, c]]).T
    return (moved - q) * weight[:, None]


def _skin_fields(s: Subject, p: np.ndarray, t: _Topology) -> dict[int, np.ndarray]:
    """(n_skin, 3) displacement of every AU at intensity 5, bilateral."""
    x, y = p[:, 0], p[:, 1]
    ax, sgn = np.abs(x), np.sign(x)
    up, lo = _lid_fields(s, x, y, t)
    h_up, h_lo = _lid_heights(s)
    upper_m, lower_m = ~t.lower_mouth, t.lower_mouth
    brow = _sigmoid((y - (s.eye_y + h_up + 1.0)) / 1.5)
    my, mw, lh = s.mouth_y, s.mouth_w, s.lip_h
    zeros = np.zeros_like(x)

    def vec(dx=zeros, dy=zeros, dz=zeros) -> np.ndarray:
        return np.stack([dx, dy, dz], 1)

    w4 = _g(ax - (s.eye_x - 7), y - s.brow_y, 13, 9) * brow
    w6 = _g(ax - (s.eye_x + 3), y - (s.nose_y + 6), 15, 12) * t.lower_eye
    w9 = _g(x, y - (s.nose_y + 12), 9, 8)
    w9b = _g(ax - (s.eye_x - 10), y - s.brow_y, 8, 8) * brow
    w9l = _g(x, y - (my + lh), mw * 0.7, 5) * upper_m
    w12 = _g(ax - mw, y - my, 11, 9)
    w12c = _g(ax - (mw + 10), y - (my + 15), 10, 10)
    w14 = _g(ax - mw, y - my, 7, 6)
    w15 = _g(ax - mw, y - my, 10, 8)
    w16 = _g(x, y - (my - 3), mw * 0.7, 6) * lower_m
    w17 = _g(x, y - s.chin_y, 18, 12) * lower_m
    w17l = _g(x, y - (my - 4), mw * 0.7, 5) * lower_m
    w20 = _g(ax - mw, y - my, 14, 9)
    w25l = _g(x, y - (my - 2), mw * 0.6, 6) * lower_m
    w25u = _g(x, y - (my + 2), mw * 0.6, 5) * upper_m
    lip_up = _g(x, y - (my + lh), mw * 0.8, 3) * upper_m
    lip_lo = _g(x, y - (my - lh), mw * 0.8, 3) * lower_m
    corner = _g(ax - mw, y - my, 8, 8)
    inside = ax < mw - 1e-6
    lateral = 2.0 + 0.8 * np.clip(ax - mw, 0, None)
    jaw_w = np.clip(0.5 + (my - y) / (2 * lateral), 0, 1)
    jaw_w = np.where(inside & lower_m, 1.0, np.where(inside & upper_m & (y >= my - 1e-6), 0.0, jaw_w))
    return {
        1: vec(dy=12.0 * _g(ax - (s.eye_x - 8), y - s.brow_y, 9, 12) * brow),
        2: vec(dy=10.0 * _g(ax - (s.eye_x + 9), y - s.brow_y, 10, 12) * brow),
        4: vec(dx=-5.0 * sgn * w4, dy=-7.0 * w4, dz=-1.5 * w4),
        5: vec(dy=4.5 * up),
        6: vec(dy=5.0 * w6 + 2.5 * lo, dz=3.0 * w6),
        7: vec(dy=3.0 * lo - 1.5 * up),
        9: vec(dy=4.0 * w9 - 3.0 * w9b + 2.5 * w9l + 1.5 * lo, dz=-1.0 * w9),
        10: vec(dy=4.5 * _g(x, y - (my + 2), mw * 0.75, 5) * upper_m),
        12: vec(dx=6.0 * sgn * w12, dy=7.0 * w12 + 2.0 * w12c, dz=-1.5 * w12 + 2.0 * w12c),
        14: vec(dx=-2.5 * sgn * w14, dz=-2.5 * w14),
        15: vec(dx=-1.0 * sgn * w15, dy=-7.0 * w15),
        16: vec(dy=-5.0 * w16, dz=1.0 * w16),
        17: vec(dy=4.0 * w17 + 2.0 * w17l, dz=2.0 * w17 + 1.5 * w17l),
        20: vec(dx=8.0 * sgn * w20, dy=-2.5 * w20, dz=-1.0 * w20),
        23: vec(dx=-3.0 * sgn * corner, dy=-2.5 * lip_up + 2.5 * lip_lo),
        24: vec(dy=-2.0 * lip_up + 2.0 * lip_lo, dz=-2.0 * _g(x, y - my, mw, 6)),
        25: vec(dy=-4.0 * w25l + 1.5 * w25u),
        26: _jaw(s, p, jaw_w),
        43: vec(dy=-h_up * up + h_lo * lo),
    }


def _eye_cap(s: Subject, side: float) -> tuple[np.ndarray, np.ndarray]:
    """Eyeball cap behind one eye slit, following the skin 0.6 mm (centre) to 6.6 mm (rim) inside,
    and its (dx, dy) texture offsets from the eye centre."""
    u = np.linspace(-1, 1, _CAP)
    su, sv = np.meshgrid(u, u)
    dx, dy = (su * np.sqrt(1 - sv**2 / 2)).ravel(), (sv * np.sqrt(1 - su**2 / 2)).ravel()
    px, py = side * s.eye_x + (s.eye_w + 4.0) * dx, s.eye_y + 12.0 * dy
    z = _surface_z(s, px, py) - 0.6 - 6.0 * (dx**2 + dy**2)
    return np.stack([px, py, z], 1), np.stack([px - side * s.eye_x, py - s.eye_y, np.zeros_like(px)], 1)


def _cavity(s: Subject) -> tuple[np.ndarray, np.ndarray]:
    """Mouth cavity behind the mouth slit, inside the head outline: teeth rows 5 mm, the rest
    10 mm inside the skin; texture coordinates (x, height above the mouth line)."""
    off = np.array(_CAVITY_ROWS)
    off[off < -5] *= min(1.0, (s.chin_drop - 2) / 28)  # the throat rows stay above a short chin
    gx, go = np.meshgrid(np.linspace(-(s.mouth_w + 18), s.mouth_w + 18, _CAVITY_COLS), off)
    gy = s.mouth_y + go
    gx = gx * np.minimum(1.0, 0.8 * _rim_clamp(s, np.full_like(gx, 1e3), gy) / (s.mouth_w + 18))
    teeth = (np.abs(go) <= 4) & (np.abs(gx) < s.mouth_w * 0.8)
    z = _surface_z(s, gx, gy) - np.where(teeth, 5.0, 10.0)
    pts = np.stack([gx.ravel(), gy.ravel(), z.ravel()], 1)
    return pts, np.stack([gx.ravel(), go.ravel(), np.zeros(gx.size)], 1)


@functools.lru_cache(maxsize=16)  # ~1.8 MB each; sampling goes subject by subject
def _geometry(s: Subject) -> _Geometry:
    t = _topology()
    xs, ys = _grid_axes(s)
    y = ys[t.grid_row]
    x = _rim_clamp(s, xs[t.grid_col], y)
    skin = np.stack([x, y, _surface_z(s, x, y)], 1)
    up, lo = _lid_fields(s, x, y, t)
    h_up, h_lo = _lid_heights(s)
    skin[:, 1] += h_up * up - h_lo * lo
    skin_tex = np.stack([x, y, np.zeros_like(x)], 1)
    caps = [_eye_cap(s, side) for side in (-1.0, 1.0)]
    cav, cav_tex = _cavity(s)
    rest = np.concatenate([skin] + [c[0] for c in caps] + [cav])
    tex = np.concatenate([skin_tex] + [c[1] for c in caps] + [cav_tex])
    fields = _skin_fields(s, np.stack([x, y, skin[:, 2]], 1), t)
    basis = np.zeros((len(AUS), 2, len(rest), 3), np.float32)
    right = _sigmoid(-rest[:, 0] / 2.0)[:, None]
    cav_start = t.n_skin + 2 * _CAP * _CAP
    for au, f in fields.items():
        full = np.zeros_like(rest)
        full[: t.n_skin] = f
        if au == 26:
            full[cav_start:] = _jaw(s, cav, (cav_tex[:, 1] < 0).astype(float))
        basis[_AU_INDEX[au], 0] = full * right
        basis[_AU_INDEX[au], 1] = full * (1 - right)
    return _Geometry(rest, tex, basis, t.faces, t.material)
