"""The synthetic world written in the raw layout of ``bosphorus`` (see ``ferbench.synth.layouts``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import FerbenchError
from ...geometry.render import View
from ...schema import namespaced
from ...synth import world
from ...synth.layouts import SYNTH_LAYOUTS, Marks, prepare_root, draw_people, make_summary, sample_truth, subject_rng, project, Summary
from . import layout


BOSPHORUS_CODES = {1: "HAPPY", 2: "SADNESS", 3: "SURPRISE", 4: "FEAR", 5: "DISGUST", 6: "ANGER"}


#: Bosphorus single-AU scans the world can show: code → (AU, side, low intensity). They are
#: rendered at ``AU_SCAN_INTENSITY`` (FACS C), ``LW`` ("low") at 1 (A).
BOSPHORUS_AUS: dict[tuple[str, str], tuple[int, str | None, bool]] = {
    **{("LFAU", c): (int(c), None, False) for c in ("9", "10", "12", "14", "15", "16", "17", "20", "23", "24", "25", "26")},
    ("LFAU", "12L"): (12, "L", False),
    ("LFAU", "12R"): (12, "R", False),
    ("LFAU", "12LW"): (12, None, True),
    **{("UFAU", c): (int(c), None, False) for c in ("1", "2", "4", "43")},
}


AU_SCAN_INTENSITY = 3.0


BOSPHORUS_OCCLUSIONS = {"GLASSES": "glasses", "HAIR": "hair"}


#: Bosphorus label → world point name, or ``("saddle", side)`` for a derived nose-saddle point.
BOSPHORUS_POINTS: dict[str, str | tuple[str, str]] = {
    "Outer left eyebrow": "brow_outer_r", "Middle left eyebrow": "brow_mid_r", "Inner left eyebrow": "brow_inner_r",
    "Inner right eyebrow": "brow_inner_l", "Middle right eyebrow": "brow_mid_l", "Outer right eyebrow": "brow_outer_l",
    "Outer left eye corner": "eye_outer_r", "Inner left eye corner": "eye_inner_r",
    "Inner right eye corner": "eye_inner_l", "Outer right eye corner": "eye_outer_l",
    "Nose saddle left": ("saddle", "r"), "Nose saddle right": ("saddle", "l"),
    "Left nose peak": "alar_r", "Nose tip": "nose_tip", "Right nose peak": "alar_l",
    "Left mouth corner": "mouth_corner_r", "Upper lip outer middle": "lip_upper_outer", "Right mouth corner": "mouth_corner_l",
    "Upper lip inner middle": "lip_upper_inner", "Lower lip inner middle": "lip_lower_inner",
    "Lower lip outer middle": "lip_lower_outer", "Chin middle": "chin",
}  # fmt: skip


VISIBLE_MM = 3.0


def _visible(s: world.FaceSample, points: np.ndarray) -> np.ndarray:
    """True where a posed point is in the image and the surface seen at its pixel is within
    ``VISIBLE_MM`` of it (not hidden by an occluder, the nose or the lips)."""
    view = View(s.depth_mm, s.frame)
    xy = np.floor(view.project(points)).astype(int)
    size = s.depth_mm.shape[0]
    inside = np.all((xy >= 0) & (xy < size), axis=1)
    seen = np.full(len(points), np.nan)
    seen[inside] = s.depth_mm[xy[inside, 1], xy[inside, 0]]
    own = s.frame["z_plane"] - points[:, 2]
    return inside & (np.abs(np.nan_to_num(seen, nan=np.inf) - own) < VISIBLE_MM)


def write_bosphorus(
    out_dir: str | Path, subjects: int = 20, seed: int = 0, size: int = 128, level: int = 4, extras: bool = True
) -> Summary:
    """``BosphorusDB/bsNNN/``: neutral, emotion (and with ``extras`` single-AU and occlusion) scans."""
    people = draw_people("bosphorus", subjects, seed, 1000)
    root = prepare_root(out_dir)
    truth: dict[str, dict] = {}
    for person in people:
        for cls, code, rep, aus, sides, occlusion, label, coded in _bosphorus_plan(person, level, extras):
            stem = f"bs{person.id:03d}_{cls}_{code}_{rep}"
            rng = subject_rng(seed, person, stem)
            s = world.render_face(
                person, aus, sides=sides, size=size, pose=tuple(rng.uniform(-1, 1, 3) * (4.0, 4.0, 2.0)),
                light=world.random_light(rng, 0.5), scale=1 + rng.uniform(-0.05, 0.05), occlusion=occlusion,
                seed=int(rng.integers(2**31)), label=label, intensity=level if label else 0,
            )  # fmt: skip
            layout.write_bosphorus(root, [_bosphorus_scan(s, person.id, cls, code, rep)])
            truth[f"bosphorus/{stem[:5]}/{stem}"] = sample_truth(person, label, namespaced("bosphorus", stem[:5]), None, coded)
    return make_summary("bosphorus", root, seed, subjects, size, truth)


def _bosphorus_plan(person: world.Subject, level: int, extras: bool) -> list[tuple]:
    """(class, code, repetition, AUs, sides, occlusion, label, AUs as the code states them) of
    every scan of one subject."""
    plan: list[tuple] = [("N", "N", rep, {}, {}, None, 0, None) for rep in (0, 1)]
    for label, code in BOSPHORUS_CODES.items():
        plan.append(("E", code, 0, world.prototype(label, level, person.gain), {}, None, label, None))
    if extras:
        for (cls, code), (au, side, low) in BOSPHORUS_AUS.items():
            coded = [{"au": au, "intensity": 1.0 if low else None, "side": side}]
            plan.append((cls, code, 0, {au: 1.0 if low else AU_SCAN_INTENSITY}, {au: side} if side else {}, None, None, coded))
        plan += [("O", code, 0, {}, {}, kind, None, None) for code, kind in BOSPHORUS_OCCLUSIONS.items()]
    return plan


def _bosphorus_scan(s: world.FaceSample, subject: int, cls: str, code: str, rep: int) -> layout.Scan:
    """A range grid (one cell per rendered pixel, cropped to the face) plus visible landmarks."""
    cam = s.frame["camera"]
    if cam["projection"] != "orthographic":
        raise FerbenchError("bosphorus: the range grid needs an orthographic world render")
    n, step = cam["size"], cam["mm_per_px"]
    centres = (np.arange(n) + 0.5 - n / 2) * step
    valid = np.isfinite(s.depth_mm)
    rows, cols = np.flatnonzero(valid.any(1)), np.flatnonzero(valid.any(0))
    r, c = slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)
    x = np.broadcast_to(s.frame["center_x"] + centres[None, :], (n, n))
    y = np.broadcast_to(s.frame["center_y"] - centres[:, None], (n, n))
    z = s.frame["z_plane"] - np.nan_to_num(s.depth_mm)
    u = np.broadcast_to((np.arange(n)[None, :] + 0.5) / n, (n, n))
    v = np.broadcast_to((np.arange(n)[:, None] + 0.5) / n, (n, n))
    m = Marks(s)
    ids = [m.snap(m.saddle(p[1])) if isinstance(p, tuple) else m.named[p] for p in BOSPHORUS_POINTS.values()]
    xyz = s.mesh.vertices[ids]
    seen = _visible(s, xyz)
    px = project(s, xyz)
    names = list(BOSPHORUS_POINTS)
    lm3 = {names[k]: xyz[k] for k in np.flatnonzero(seen)}
    lm2 = {names[k]: px[k] for k in np.flatnonzero(seen)}
    return layout.Scan(
        subject, cls, code, rep, x[r, c], y[r, c], z[r, c], u[r, c], v[r, c], valid[r, c], s.rgb, lm3=lm3, lm2=lm2
    )



SYNTH_LAYOUTS.register("bosphorus", write_bosphorus)
