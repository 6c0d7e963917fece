"""The synthetic expression world: procedural faces whose expressions are made of FACS action units.

Everything is in millimetres in a head frame with y up and the face looking toward +z (the
BU-3DFE/Bosphorus convention), the head centre at the origin.

* **Subjects** (``make_subjects``) draw their identity from a seed: head size and jaw taper, eye
  spacing/size/aperture, brow height and thickness, nose length/width, mouth width and lips, chin,
  skin tone, hair, iris colour, stubble and how strongly they express. Identity is a nuisance.
* **Expressions** are AU intensities on the FACS 0–5 scale (A = 1 … E = 5). ``EMOTION_AUS`` holds
  the prototype of each canonical emotion; level ``k`` (1..4, BU-3DFE's intensity levels) sets each
  prototype AU to ``weight × (k + 1) × subject gain`` (capped at 5). Contempt's AU12+14 act on one
  side only (``sides``: ``"R"`` = the subject's right = image left). The face responds to
  ``(intensity / 5) ** RESPONSE``, so that weak expressions stay visible in small images.
  ``label_from_aus`` inverts the prototypes: labels and AUs always agree.
* **The face mesh** is a fixed-topology grid (the same vertex ids for every subject, so landmarks
  are vertex ids): a flattened ellipsoid carrying eye sockets, brow ridge, nose, cheeks, lips and
  chin. The grid is cut open along the eye and mouth lines; behind the eye slits sit eyeball caps
  and behind the mouth slit a cavity with teeth, so parting the lids or lips reveals them. Each AU is
  a displacement field (a linear blend shape per side); the jaw drop is a rotation about the jaw
  hinge. Texture is evaluated per pixel in the rest coordinates of the surface, so brows, lips and
  lids move with the skin; AU-driven wrinkles (forehead, glabella, nose, nasolabial folds, crow's
  feet, dimples) darken the skin as in wrinkle maps.
* **Rendering** goes through ``ferbench.geometry.render`` (orthographic depth, ``FOV_MM`` wide at
  scale 1) and ``ferbench.synth.shading`` (Lambertian RGB from the same pixel-centre rays), so RGB
  and depth are registered. Head pose, light, scale, framing shift, background and occluders
  (hand, hair strand, sunglasses) vary. ``LANDMARKS`` names 26 mesh vertices (brows, eye
  corners and lids, nose, mouth corners and lips, chin), returned in 3-D and in image pixels.

``sample_world`` and ``sequence`` are deterministic per seed: each sample's random stream is
keyed on (seed, subject id, label, level, repeat), never on iteration order. ``learnability_probe``
reports how well a tiny linear/MLP model learns the labels from pixels across held-out subjects.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Mapping

import numpy as np

from ..geometry.mesh import Mesh
from ..geometry.render import Camera, render_mesh_depth
from . import shading
from .shading import Light

# -- action units and emotion prototypes -------------------------------------------------------

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


# -- subjects -------------------------------------------------------------------------------------

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


# -- mesh topology (identical for every subject) -------------------------------------------------

# grid columns between x knots 0 | eye inner corner | mouth corner | eye centre | eye outer corner | head side
_COL_SEGMENTS = (6, 3, 3, 6, 10)
# grid rows between y knots bottom | chin | mouth | nose tip | eyes | brows | top
_ROW_SEGMENTS = (5, 10, 11, 10, 6, 20)
_CK = np.cumsum((0,) + _COL_SEGMENTS)
_RK = np.cumsum((0,) + _ROW_SEGMENTS)
_M = int(_CK[-1])  # centre column
NC, NR = 2 * _M + 1, int(_RK[-1]) + 1
R_CHIN, R_MOUTH, R_NOSE, R_EYE, R_BROW = (int(r) for r in _RK[1:6])
C_EYE_IN, C_MOUTH, C_EYE, C_EYE_OUT = (int(c) for c in _CK[1:5])
_CAP = 9  # eyeball cap grid side
_CAVITY_ROWS = (-28.0, -18.0, -10.0, -4.0, -0.5, 0.5, 3.5, 8.0)  # mm from the mouth line
_CAVITY_COLS = 13
SKIN, EYE, MOUTH, OCCLUDER = 0, 1, 2, 3  # face materials

LANDMARKS: tuple[str, ...] = (
    "brow_outer_r", "brow_mid_r", "brow_inner_r", "brow_inner_l", "brow_mid_l", "brow_outer_l",
    "eye_outer_r", "eye_inner_r", "lid_upper_r", "lid_lower_r",
    "eye_inner_l", "eye_outer_l", "lid_upper_l", "lid_lower_l",
    "nasion", "nose_tip", "subnasale", "alar_r", "alar_l",
    "mouth_corner_r", "mouth_corner_l", "lip_upper_outer", "lip_upper_inner", "lip_lower_inner",
    "lip_lower_outer", "chin",
)  # fmt: skip
NOSE_TIP = LANDMARKS.index("nose_tip")


@dataclass(frozen=True)
class _Topology:
    faces: np.ndarray  # (F, 3)
    material: np.ndarray  # (F,)
    grid_row: np.ndarray  # (n_skin,) grid row of each skin vertex (dupes: their slit row)
    grid_col: np.ndarray
    lower_mouth: np.ndarray  # (n_skin,) bool: below the mouth line (incl. the lower lip edge)
    upper_eye: np.ndarray
    lower_eye: np.ndarray
    slit_upper: np.ndarray  # vertex ids of slit edges, paired with slit_lower
    slit_lower: np.ndarray
    n_skin: int
    landmarks: np.ndarray  # (K,) vertex ids


def _grid_faces(ids: np.ndarray, mirror_left: bool) -> np.ndarray:
    """Two CCW (seen from +z) triangles per grid cell; rows go up, columns go right."""
    a, b, d, e = ids[:-1, :-1], ids[:-1, 1:], ids[1:, :-1], ids[1:, 1:]
    right = np.stack([np.stack([a, b, e], -1), np.stack([a, e, d], -1)], 2)
    if not mirror_left:
        return right.reshape(-1, 3)
    left = np.stack([np.stack([a, b, d], -1), np.stack([b, e, d], -1)], 2)
    half = ids.shape[1] // 2
    cols = np.arange(ids.shape[1] - 1)[None, :, None, None]
    return np.where(cols < half, left, right).reshape(-1, 3)


@functools.lru_cache(maxsize=1)
def _topology() -> _Topology:
    ids = np.arange(NR * NC).reshape(NR, NC)
    faces = _grid_faces(ids, mirror_left=True)
    below_row = np.repeat(np.arange(NR - 1), 2 * (NC - 1))  # the lower grid row of each face
    rows, cols = np.divmod(np.arange(NR * NC), NC)
    slits = (
        (R_MOUTH, _M - C_MOUTH, _M + C_MOUTH),
        (R_EYE, _M + C_EYE_IN, _M + C_EYE_OUT),
        (R_EYE, _M - C_EYE_OUT, _M - C_EYE_IN),
    )
    upper, lower = [], []
    next_id = NR * NC
    for row, c0, c1 in slits:
        top = ids[row, c0 + 1 : c1]
        dupes = np.arange(next_id, next_id + top.size)
        next_id += top.size
        remap = np.arange(next_id)
        remap[top] = dupes
        sel = below_row == row - 1
        faces[sel] = remap[faces[sel]]
        upper.append(top)
        lower.append(dupes)
    upper_ids, lower_ids = np.concatenate(upper), np.concatenate(lower)
    grid_row = np.concatenate([rows, rows[upper_ids]])
    grid_col = np.concatenate([cols, cols[upper_ids]])
    is_dupe = np.arange(next_id) >= NR * NC
    mouth_dupe = is_dupe & (grid_row == R_MOUTH)
    eye_dupe = is_dupe & (grid_row == R_EYE)
    n_skin = next_id
    material = [np.full(len(faces), SKIN)]
    all_faces = [faces]
    cap_ids = np.arange(_CAP * _CAP).reshape(_CAP, _CAP)
    for _ in range(2):
        all_faces.append(_grid_faces(cap_ids, mirror_left=False) + next_id)
        material.append(np.full(all_faces[-1].shape[0], EYE))
        next_id += _CAP * _CAP
    cav_ids = np.arange(len(_CAVITY_ROWS) * _CAVITY_COLS).reshape(len(_CAVITY_ROWS), _CAVITY_COLS)
    all_faces.append(_grid_faces(cav_ids, mirror_left=False) + next_id)
    material.append(np.full(all_faces[-1].shape[0], MOUTH))
    next_id += cav_ids.size

    def dupe_of(vid: int) -> int:
        return int(lower_ids[np.flatnonzero(upper_ids == vid)[0]])

    def at(row: int, col: int) -> int:  # col counted from the centre column, + = subject's left
        return int(ids[row, _M + col])

    lm = [
        at(R_BROW, -C_EYE_OUT), at(R_BROW, -C_EYE), at(R_BROW, -C_EYE_IN),
        at(R_BROW, C_EYE_IN), at(R_BROW, C_EYE), at(R_BROW, C_EYE_OUT),
        at(R_EYE, -C_EYE_OUT), at(R_EYE, -C_EYE_IN), at(R_EYE, -C_EYE), dupe_of(at(R_EYE, -C_EYE)),
        at(R_EYE, C_EYE_IN), at(R_EYE, C_EYE_OUT), at(R_EYE, C_EYE), dupe_of(at(R_EYE, C_EYE)),
        at(R_EYE, 0), at(R_NOSE, 0), at(R_NOSE - 3, 0), at(R_NOSE - 1, -C_EYE_IN), at(R_NOSE - 1, C_EYE_IN),
        at(R_MOUTH, -C_MOUTH), at(R_MOUTH, C_MOUTH), at(R_MOUTH + 2, 0), at(R_MOUTH, 0),
        dupe_of(at(R_MOUTH, 0)), at(R_MOUTH - 2, 0), at(R_CHIN, 0),
    ]  # fmt: skip
    return _Topology(
        faces=np.concatenate(all_faces).astype(np.int32),
        material=np.concatenate(material).astype(np.int8),
        grid_row=grid_row,
        grid_col=grid_col,
        lower_mouth=(grid_row < R_MOUTH) | mouth_dupe,
        upper_eye=(grid_row > R_EYE) | ((grid_row == R_EYE) & ~eye_dupe),
        lower_eye=(grid_row < R_EYE) | eye_dupe,
        slit_upper=upper_ids,
        slit_lower=lower_ids,
        n_skin=n_skin,
        landmarks=np.array(lm, dtype=np.int64),
    )


# -- subject geometry -------------------------------------------------------------------------------


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


# -- texture ------------------------------------------------------------------------------------------


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


# -- occluders -------------------------------------------------------------------------------------------

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


# -- rendering ---------------------------------------------------------------------------------------------

FOV_MM = 150.0  # image width at scale 1


@dataclass
class FaceSample:
    """One rendered synthetic face: labels, AUs, registered RGB + depth, mesh and landmarks.

    ``mesh`` is in the posed scan frame (mm; the image centre on the optical axis at x = y = 0) and
    holds skin, eyeball caps, mouth cavity and any occluder (``face_material`` per face: ``SKIN``,
    ``EYE``, ``MOUTH``, ``OCCLUDER``); its ``uv`` maps vertices into ``rgb`` (v up). Landmarks are
    mesh vertices named by ``LANDMARKS``; ``landmarks_2d`` are (x = column, y = row) pixels.
    ``depth_mm`` follows ``ferbench.geometry.render`` (``frame`` is the view frame).
    """

    subject: Subject
    label: int | None
    intensity: int
    aus: dict[int, float]
    rgb: np.ndarray
    depth_mm: np.ndarray
    mesh: Mesh
    landmarks_2d: np.ndarray
    landmarks_3d: np.ndarray
    pose: tuple[float, float, float]
    occluded: bool
    sides: dict[int, str] = field(default_factory=dict)
    occlusion: str | None = None
    face_material: np.ndarray | None = None
    frame: dict = field(default_factory=dict)

    @property
    def landmark_ids(self) -> np.ndarray:
        return _topology().landmarks


def _rotation(pose: tuple[float, float, float]) -> np.ndarray:
    """Rotation of (yaw about +y, pitch about +x, roll about +z) degrees, applied roll·pitch·yaw."""
    (cy, sy), (cp, sp), (cr, sr) = ((math.cos(a), math.sin(a)) for a in np.radians(pose))
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return rz @ rx @ ry


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


def _close_slits(v: np.ndarray, t: _Topology) -> None:
    """Lid/lip edges may meet but never cross: crossed pairs meet halfway."""
    up, lo = v[t.slit_upper, 1], v[t.slit_lower, 1]
    crossed = lo > up
    mid = (up + lo) / 2
    v[t.slit_upper[crossed], 1] = mid[crossed]
    v[t.slit_lower[crossed], 1] = mid[crossed]


def _background(size: int, rng: np.random.Generator) -> np.ndarray:
    """A random vertical colour gradient with grain, linear RGB."""
    top, bottom = rng.uniform(0.02, 0.7, 3), rng.uniform(0.02, 0.7, 3)
    ramp = np.linspace(0, 1, size)[:, None, None]
    return top + (bottom - top) * ramp + rng.normal(0, 0.02, (size, size, 3))


def level_of(aus: Mapping[int, float]) -> int:
    """The intensity level (0..4) whose prototype peak, ``level + 1``, is nearest the strongest AU."""
    return 0 if not aus else int(np.clip(round(max(aus.values()) - 1), 1, 4))


def render_face(
    subject: Subject,
    aus: Mapping[int, float],
    *,
    sides: Mapping[int, str] | None = None,
    size: int = 64,
    pose: tuple[float, float, float] = (0.0, 0.0, 0.0),
    light: Light | None = None,
    scale: float = 1.0,
    shift: tuple[float, float] = (0.0, 0.0),
    occlusion: str | None = None,
    seed: int = 0,
    label: int | None = None,
    intensity: int | None = None,
) -> FaceSample:
    """Render ``subject`` showing ``aus`` (FACS 0–5 intensities; ``sides`` marks unilateral AUs).

    ``pose`` is (yaw, pitch, roll) in degrees about the head centre; ``scale`` > 1 zooms in; ``shift``
    moves the face by that fraction of the image (x right, y down); ``seed`` drives the background,
    pixel noise and occluder placement. ``label`` defaults to ``label_from_aus``, ``intensity`` to
    ``level_of``.
    """
    sides = dict(sides or {})
    rng = np.random.default_rng(seed)
    t, geo = _topology(), _geometry(subject)
    act = _activations(aus, sides)
    verts = geo.rest + np.einsum("ks,ksnc->nc", act, geo.basis)
    _close_slits(verts, t)
    rot = _rotation(pose)
    centre = rot @ np.array([0.0, (subject.brow_y + subject.chin_y - 12) / 2, subject.head_d])
    fov = FOV_MM / scale
    offset = np.r_[centre[:2] - np.asarray(shift) * fov * np.array([1, -1]), 0.0]
    verts = verts @ rot.T - offset
    faces, material, tex = geo.faces, geo.material, geo.tex
    if occlusion is not None:
        ov, of, oalb = _occluder(occlusion, subject, verts[t.landmarks], rng)
        faces = np.concatenate([faces, of + len(verts)])
        material = np.concatenate([material, np.full(len(of), OCCLUDER, np.int8)])
        verts, tex = np.concatenate([verts, ov]), np.concatenate([tex, oalb])
    mesh = Mesh(verts, faces)
    view = render_mesh_depth(mesh, Camera(size=size, mm_per_px=fov / size, center="origin"))
    rgb = _shade(subject, mesh, material, tex, act, view.frame, light or Light(), rng)
    uv = view.project(verts) / size
    mesh.uv, mesh.face_uv = np.stack([uv[:, 0], 1 - uv[:, 1]], 1).astype(np.float32), mesh.faces.copy()
    lm3 = verts[t.landmarks]
    return FaceSample(
        subject=subject,
        label=label_from_aus(aus) if label is None else label,
        intensity=level_of(aus) if intensity is None else int(intensity),
        aus={int(k): float(v) for k, v in sorted(aus.items()) if v > 0},
        rgb=rgb,
        depth_mm=view.depth_mm,
        mesh=mesh,
        landmarks_2d=view.project(lm3).astype(np.float32),
        landmarks_3d=lm3.astype(np.float32),
        pose=tuple(float(a) for a in pose),
        occluded=occlusion is not None,
        sides={int(k): v for k, v in sides.items() if aus.get(k, 0) > 0},
        occlusion=occlusion,
        face_material=material,
        frame=view.frame,
    )


def _shade(
    s: Subject, mesh: Mesh, material: np.ndarray, tex: np.ndarray, act: np.ndarray, frame: dict, light: Light, rng
) -> np.ndarray:
    """sRGB uint8 image: per-pixel albedo by material, Lambertian light, background and noise."""
    hits = shading.cast(mesh, frame)
    image = _background(frame["camera"]["size"], rng)
    if hits.mask.any():
        q = hits.interpolate(mesh.faces, tex)
        normals = hits.interpolate(mesh.faces, shading.vertex_normals(mesh.vertices, mesh.faces))
        seen = material[hits.face[hits.mask]]
        albedo = np.empty((len(q), 3))
        for m in (SKIN, EYE, MOUTH, OCCLUDER):
            if (sel := seen == m).any():
                albedo[sel] = _albedo(m, s, q[sel], act)
        image[hits.mask] = shading.lambert(albedo, normals, light)
    image += rng.normal(0, 0.008, image.shape)
    return shading.to_srgb8(image)


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


# -- sampling ---------------------------------------------------------------------------------------------


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


# -- learnability probe (a guide for the demo, not a test) -------------------------------------------------


def learnability_probe(
    n_subjects: int = 40,
    held_out: int = 10,
    size: int = 32,
    seed: int = 0,
    hidden: int = 0,
    epochs: int = 300,
    **world,
) -> dict:
    """Balanced accuracy of a tiny softmax (``hidden`` = 0) or one-hidden-layer MLP on flattened
    grayscale ``size``-px images (rendered at 2× and area-averaged), trained on all but the last
    ``held_out`` subjects and tested on those; ``world`` goes to ``sample_world``. Returns figures
    and timings (full-batch AdamW, deterministic per seed).
    """
    import torch

    from ..metrics import confusion, scores

    start = time.perf_counter()
    samples = list(sample_world(make_subjects(n_subjects, seed), size=2 * size, seed=seed, **world))
    render_s = time.perf_counter() - start
    gray = np.stack([s.rgb.mean(-1).reshape(size, 2, size, 2).mean((1, 3)).ravel() / 255 for s in samples])
    y = np.array([s.label for s in samples])
    test = np.array([s.subject.id >= n_subjects - held_out for s in samples])
    x = torch.tensor((gray - gray[~test].mean(0)) / (gray[~test].std(0) + 1e-3), dtype=torch.float32)
    n_cls = int(y.max()) + 1
    torch.manual_seed(seed)
    width = hidden or n_cls
    head = [torch.nn.ReLU(), torch.nn.Linear(hidden, n_cls)] if hidden else []
    model = torch.nn.Sequential(torch.nn.Linear(x.shape[1], width), *head)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    x_train, y_train = x[~test], torch.tensor(y[~test])
    for _ in range(epochs):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x_train), y_train).backward()
        opt.step()
    with torch.no_grad():
        pred = model(x[test]).argmax(1).numpy()
    majority = np.full(test.sum(), np.bincount(y[~test]).argmax())
    return {
        "balanced_accuracy": float(scores(confusion(y[test], pred, n_cls))["balanced_accuracy"]),
        "majority_baseline": float(scores(confusion(y[test], majority, n_cls))["balanced_accuracy"]),
        "n_train": int((~test).sum()),
        "n_test": int(test.sum()),
        "images_per_s": round(len(samples) / render_s, 1),
        "total_s": round(time.perf_counter() - start, 2),
    }
