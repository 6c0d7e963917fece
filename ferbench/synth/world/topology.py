"""The fixed-topology face mesh shared by every subject: grid layout, slits, materials, landmarks.

A grid cut open along the eye and mouth lines, two eyeball caps and a mouth cavity; vertex ids are
the same for every subject, so ``LANDMARKS`` name vertex ids.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

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
