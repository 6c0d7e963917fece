"""The synthetic expression world written out in each dataset's published raw layout.

Every ``write_<name>(out_dir, subjects=, seed=, size=, ...)`` draws ``subjects`` people from
``ferbench.synth.world``, renders their expressions and writes them through the raw-layout writer
of ``ferbench.synth.raw.<name>``, so ``ferbench convert <name> out_dir`` runs the real converter.
``out_dir`` must be empty (or not exist): it becomes the raw root and gets an empty
``ferbench.build.SYNTHETIC_MARKER`` file, so every converted row is marked synthetic. The same
(subjects, seed, size, options) always writes the same bytes; each sample's randomness is keyed
on (seed, subject, what is drawn), never on iteration order.

Each function returns a summary: ``dataset``, ``root``, ``seed``, ``subjects``, ``size``,
``rows``, ``labels`` (emotion name → rows, ``"<none>"`` for rows without one) and ``samples``:
per converted ``sample_id``, what the converter must give (``label``, ``subject_id``, ``split``;
``aus`` as schema records where the layout states AUs; AffectNet ``valence``/``arousal``) and
``world_subject``, the world's person behind the row (known even where the layout has no ids).

Layouts and choices (canonical labels, ``ferbench.schema.EMOTIONS``):

* ``fer2013`` — ``fer2013/fer2013.csv`` (``emotion,pixels,Usage``), faces rendered at ``size`` and
  box-resampled to 48×48 grayscale; labels 0–6 at every level in ``levels`` (neutral as often).
  FER2013 has no subject ids, but the Training / PublicTest / PrivateTest blocks (80/10/10 %)
  are cut by subject so that no identity spans two blocks.
* ``ckplus`` — the official tree: one neutral→peak sequence (``world.sequence``) per emotion
  1–7 per subject (``S001``…), sequence numbers shuffled per subject, ``frames`` frames each,
  grayscale PNGs; an Emotion file on the peak only; a FACS file with the peak's AUs at integer
  FACS intensities 1–5 (CK+ has no side column); with ``landmarks`` a 68-point file per frame
  (see *Landmarks*; the vertices are picked on the first frame and tracked through the clip).
* ``bu3dfe`` — ``BU_3DFE/<F|M><nnnn>/``: the world mesh as ``_F3D.wrl`` (mm, y up, face toward
  +z; skin, eyeballs and mouth cavity), its rendered RGB as ``_F3D.bmp`` texture (the mesh's uv
  maps into it) and as ``_F2D.bmp``, an 83-row ``_F3D.bnd`` and the ``RAW`` pair; one ``NE00``
  plus six emotions × ``levels`` (01–04). Sex from the world subject, ethnicity code drawn
  per subject (arbitrary, not a property of the face).
* ``bosphorus`` — ``BosphorusDB/bsNNN/``: ``N_N_0``, ``N_N_1`` and the six ``E_*`` scans
  (emotions at ``level``); with ``extras`` also single-AU scans (``LFAU``/``UFAU`` codes the world
  models, intensity C, ``LW`` = A, ``L``/``R`` one side) and ``O_GLASSES``/``O_HAIR``. The
  ``.bnt`` grid is the rendered orthographic depth, one cell per pixel (X, Y, Z mm, u/v of the
  pixel in the ``.png``), cropped to the face; ``.lm3``/``.lm2`` hold the visible ones of 22
  points (no ear lobes).
* ``caldr_menders`` — the first half of the subjects (rounded up) in ``CalD3r`` (3-digit
  numbers), the rest in ``MenD3s`` (2-digit); per subject four neutral captures and the six
  emotions at each of ``levels`` (spontaneous: weak by default), a 4-digit stimulus code.
  ``*_Color.png`` RGB and ``*_Depth.png`` 16-bit depth in SR300-like raw units of **1/8 mm**
  (``DEPTH_UNITS_PER_MM``) from a camera 450–650 mm in front of the face, 0 = invalid.
* ``affectnet`` — the small release: ``train_set``/``val_set`` (10 % of the subjects, at least
  one) with ``images/<id>.jpg`` (``size``, 224 in the real data) and ``annotations/<id>_{exp,val,
  aro,lnd}.npy``; ids per split non-contiguous and overlapping across splits; labels 0–7 at every
  level; valence/arousal around a per-emotion centre (``VALENCE_AROUSAL``) growing with the
  level, plus noise; 68 landmarks in the image's pixels.
* ``rafdb`` — the basic release: ``EmoLabel/list_patition_label.txt`` and ``Image/{aligned,
  original}/``, ``train_00001`` / ``test_0001`` names, test = 20 % of the subjects; labels 0–6.

Landmarks. The world names 26 points (``world.LANDMARKS``), which are mesh vertices. Denser
schemes are built from them: points along quadratic curves through named points (lids, lips,
brows offset by ±``BROW_EDGE_MM`` for their edges), along straight lines (nose bridge and
sides), and on a half-ellipse from eye height through the chin (face contour); a named point is
its own vertex, any other point is snapped to the nearest skin vertex in the image plane that no
other point of the scheme holds (so points are distinct, except the iBUG inner mouth corners,
which are the outer ones). So
every landmark is a mesh vertex (BU-3DFE ``.bnd`` indices are exact), placed at the right
anatomical place up to the mesh spacing (a few mm). ``IBUG68`` follows the 68-point iBUG order;
the 83 BU-3DFE rows follow its groups (0–7 left eye, 8–15 right eye, 16–25 left brow, 26–35
right brow, 36–47 nose with subnasale at 42, 48–67 mouth with corners at 48/54, 68–82 contour
with the chin at 75); the order inside a group is UNVERIFIED. "Left" in BU-3DFE and Bosphorus
labels is taken as the image's left (the subject's right), also UNVERIFIED.
"""

from __future__ import annotations

import math
import zlib
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
from PIL import Image

from ..build import SYNTHETIC_MARKER
from ..errors import FerbenchError
from ..geometry.render import View
from ..schema import EMOTIONS, namespaced
from . import world
from .raw import affectnet as raw_affectnet
from .raw import bosphorus as raw_bosphorus
from .raw import bu3dfe as raw_bu3dfe
from .raw import caldr_menders as raw_caldr_menders
from .raw import ckplus as raw_ckplus
from .raw import fer2013 as raw_fer2013
from .raw import rafdb as raw_rafdb

# -- raw label codes of each dataset, by canonical index (from shared/formats) --------------------
FER2013_IDS = {6: 0, 5: 1, 4: 2, 1: 3, 2: 4, 3: 5, 0: 6}
CKPLUS_IDS = {6: 1, 7: 2, 5: 3, 4: 4, 1: 5, 2: 6, 3: 7}
BU3DFE_CODES = {0: "NE", 1: "HA", 2: "SA", 3: "SU", 4: "FE", 5: "DI", 6: "AN"}
BOSPHORUS_CODES = {1: "HAPPY", 2: "SADNESS", 3: "SURPRISE", 4: "FEAR", 5: "DISGUST", 6: "ANGER"}
CALDR_WORDS = {0: "neutral", 1: "happiness", 2: "sadness", 3: "surprise", 4: "fear", 5: "disgust", 6: "anger"}
RAFDB_IDS = {3: 1, 4: 2, 5: 3, 1: 4, 2: 5, 6: 6, 0: 7}
BU3DFE_ETHNICITIES = ("WH", "BL", "AE", "AM", "LA", "IN")
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
#: (valence, arousal) centre of each canonical emotion at full strength (circumplex-like).
VALENCE_AROUSAL = {
    0: (0.0, 0.0), 1: (0.7, 0.4), 2: (-0.6, -0.3), 3: (0.2, 0.75),
    4: (-0.6, 0.7), 5: (-0.65, 0.35), 6: (-0.55, 0.7), 7: (-0.45, 0.25),
}  # fmt: skip
DEPTH_UNITS_PER_MM = 8  # CalD3r/MenD3s depth: SR300-like raw units of 1/8 mm
BROW_EDGE_MM = 2.0
FER2013_SPLITS = (("Training", 0.8), ("PublicTest", 0.1), ("PrivateTest", 0.1))
#: ``world.sample_world`` settings of the lab-captured 3-D sets: near-frontal, no occluders.
FRONTAL = {"pose_jitter": (4.0, 4.0, 2.0), "scale_jitter": 0.05, "shift_jitter": 0.02, "occlusion_rate": 0.0}

Summary = dict[str, Any]


# -- shared helpers -------------------------------------------------------------------------------
def _prepare(out_dir: str | Path) -> Path:
    """The raw root: created if needed, refused if not empty, marked synthetic."""
    root = Path(out_dir)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FerbenchError(f"{root} is not an empty directory; synthetic data is only written into an empty one")
    root.mkdir(parents=True, exist_ok=True)
    (root / SYNTHETIC_MARKER).touch()
    return root


def _people(dataset: str, n: int, seed: int, most: int) -> list[world.Subject]:
    if not 1 <= n <= most:
        raise FerbenchError(f"{dataset}: subjects must be within 1..{most} (its ids have a fixed width), not {n}")
    if seed < 0:
        raise FerbenchError(f"the world seed must be a non-negative integer, not {seed}")
    return world.make_subjects(n, seed)


def _summary(dataset: str, root: Path, seed: int, subjects: int, size: int, samples: dict[str, dict]) -> Summary:
    labels = Counter(EMOTIONS[t["label"]] if t["label"] is not None else "<none>" for t in samples.values())
    return {
        "dataset": dataset,
        "root": str(root),
        "seed": seed,
        "subjects": subjects,
        "size": size,
        "rows": len(samples),
        "labels": dict(sorted(labels.items())),
        "samples": samples,
    }


def _truth(person: world.Subject, label: int | None, subject_id: str | None, split: str | None = None, aus: list | None = None) -> dict:
    """What converting one sample must give, plus the world subject behind it."""
    return {"label": label, "subject_id": subject_id, "split": split, "aus": aus, "world_subject": person.id}


def _splits(n: int, shares: Sequence[tuple[str, float]]) -> list[str]:
    """Split name per subject index: the last subjects go to the later splits, round(share·n) each
    (at least one while the first split keeps one subject)."""
    out, end = [shares[0][0]] * n, n
    for name, share in reversed(shares[1:]):
        k = min(max(1, round(share * n)), end - 1)
        out[end - k : end] = [name] * k
        end -= k
    return out


def _rng(seed: int, subject: world.Subject, *key: str | int) -> np.random.Generator:
    """A random stream keyed on (seed, subject, key), independent of iteration order."""
    words = [k if isinstance(k, int) else zlib.crc32(k.encode()) for k in key]
    return np.random.default_rng([seed, subject.id, 7919, *words])


def _gray(rgb: np.ndarray, side: int | None = None) -> np.ndarray:
    """uint8 luma (ITU-R 601) of an RGB image, box-resampled to ``side`` × ``side`` if given."""
    im = Image.fromarray(rgb).convert("L")
    if side is not None and im.size != (side, side):
        im = im.resize((side, side), Image.BOX)
    return np.asarray(im)


def _project(s: world.FaceSample, points: np.ndarray) -> np.ndarray:
    """(n, 2) image coordinates (x = column, y = row) of posed mesh points."""
    return View(s.depth_mm, s.frame).project(points)


# -- landmarks: named world points and points derived from them, all mesh vertices ---------------
class _Marks:
    """Landmark vertex ids of one face sample (see the module docstring, *Landmarks*)."""

    def __init__(self, s: world.FaceSample):
        self.v = s.mesh.vertices
        self.named = {name: int(i) for name, i in zip(world.LANDMARKS, s.landmark_ids)}
        self.skin = np.unique(s.mesh.faces[np.asarray(s.face_material) == world.SKIN])
        self.free = np.ones(len(self.skin), bool)  # snapped points never reuse a vertex
        self.free[np.isin(self.skin, list(self.named.values()))] = False
        r, l = self.p("eye_outer_r")[:2], self.p("eye_outer_l")[:2]
        self.ex = (l - r) / np.linalg.norm(l - r)  # image right along the eyes
        self.ey = np.array([-self.ex[1], self.ex[0]])  # image up
        self.centre, self.half_eyes = (r + l) / 2, np.linalg.norm(l - r) / 2

    def p(self, name: str) -> np.ndarray:
        return self.v[self.named[name]]

    def snap(self, point: np.ndarray) -> int:
        """The free skin vertex nearest to ``point`` in the image plane (then no longer free)."""
        d = np.sum((self.v[self.skin, :2] - np.asarray(point)[:2]) ** 2, axis=1)
        k = int(np.argmin(np.where(self.free, d, np.inf)))
        self.free[k] = False
        return int(self.skin[k])

    def at(self, name: str | np.ndarray) -> int:
        return self.named[name] if isinstance(name, str) else self.snap(name)

    def curve(self, a: str, m: str, b: str, ts: Iterable[float], offset: float = 0.0) -> list[int]:
        """Points at ``ts`` on the quadratic through a (t=0), m (t=0.5) and b (t=1); named points
        are exact unless ``offset`` (mm, toward image up) moves the curve."""
        pa, pm, pb = self.p(a), self.p(m), self.p(b)
        up = np.r_[self.ey, 0.0] * offset
        out = []
        for t in ts:
            if offset == 0 and t in (0, 0.5, 1):
                out.append(self.named[{0: a, 0.5: m, 1: b}[t]])
                continue
            q = 2 * (t - 0.5) * (t - 1) * pa - 4 * t * (t - 1) * pm + 2 * t * (t - 0.5) * pb
            out.append(self.snap(q + up))
        return out

    def line(self, a: str | np.ndarray, b: str | np.ndarray, ts: Iterable[float]) -> list[int]:
        pa = self.p(a) if isinstance(a, str) else a
        pb = self.p(b) if isinstance(b, str) else b
        return [self.at(a) if t == 0 else self.at(b) if t == 1 else self.snap(pa + t * (pb - pa)) for t in ts]

    def contour(self, n: int) -> list[int]:
        """``n`` points on the face outline from the image-left side at eye height through the chin."""
        chin = self.p("chin")[:2]
        depth = float(np.dot(self.centre - chin, self.ey))
        thetas = np.linspace(math.pi, 2 * math.pi, n)
        pts = [self.centre + 1.25 * self.half_eyes * math.cos(t) * self.ex + depth * math.sin(t) * self.ey for t in thetas]
        return [self.named["chin"] if k == n // 2 else self.snap(p) for k, p in enumerate(pts)]

    def saddle(self, side: str) -> np.ndarray:
        """A point on the side of the nose bridge at the inner eye corners' height."""
        return self.p("nasion") + 0.4 * (self.p(f"eye_inner_{side}") - self.p("nasion"))


def ibug68(s: world.FaceSample) -> np.ndarray:
    """Vertex ids of the 68 iBUG points (0–16 contour, brows, nose, eyes, mouth)."""
    m = _Marks(s)
    thirds, sixths, quarters = (1 / 3, 2 / 3), [k / 6 for k in range(6)], (0.25, 0.5, 0.75)
    ids = m.contour(17)
    ids += m.curve("brow_outer_r", "brow_mid_r", "brow_inner_r", (0, 0.25, 0.5, 0.75, 1))
    ids += m.curve("brow_inner_l", "brow_mid_l", "brow_outer_l", (0, 0.25, 0.5, 0.75, 1))
    ids += m.line("nasion", "nose_tip", (0, 1 / 3, 2 / 3, 1))
    ids += m.line("alar_r", "subnasale", (0, 0.5)) + m.line("subnasale", "alar_l", (0, 0.5, 1))
    ids += [m.named["eye_outer_r"], *m.curve("eye_outer_r", "lid_upper_r", "eye_inner_r", thirds)]
    ids += [m.named["eye_inner_r"], *m.curve("eye_inner_r", "lid_lower_r", "eye_outer_r", thirds)]
    ids += [m.named["eye_inner_l"], *m.curve("eye_inner_l", "lid_upper_l", "eye_outer_l", thirds)]
    ids += [m.named["eye_outer_l"], *m.curve("eye_outer_l", "lid_lower_l", "eye_inner_l", thirds)]
    ids += m.curve("mouth_corner_r", "lip_upper_outer", "mouth_corner_l", sixths)
    ids += m.curve("mouth_corner_l", "lip_lower_outer", "mouth_corner_r", sixths)
    ids += [m.named["mouth_corner_r"], *m.curve("mouth_corner_r", "lip_upper_inner", "mouth_corner_l", quarters)]
    ids += [m.named["mouth_corner_l"], *m.curve("mouth_corner_l", "lip_lower_inner", "mouth_corner_r", quarters)]
    return np.array(ids, dtype=np.int64)


def bu3dfe83(s: world.FaceSample) -> np.ndarray:
    """Vertex ids of the 83 BU-3DFE rows (groups as in the module docstring)."""
    m = _Marks(s)
    quarters, fifths, spread = (0.25, 0.5, 0.75), (0.2, 0.4, 0.6, 0.8), (0, 0.25, 0.5, 0.75, 1)
    ids: list[int] = []
    for side in ("r", "l"):  # image-left eye first
        inner, outer = f"eye_inner_{side}", f"eye_outer_{side}"
        ids += [m.named[inner], *m.curve(inner, f"lid_upper_{side}", outer, quarters)]
        ids += [m.named[outer], *m.curve(outer, f"lid_lower_{side}", inner, quarters)]
    for side in ("r", "l"):
        inner, mid, outer = f"brow_inner_{side}", f"brow_mid_{side}", f"brow_outer_{side}"
        ids += m.curve(inner, mid, outer, spread, BROW_EDGE_MM) + m.curve(outer, mid, inner, spread, -BROW_EDGE_MM)
    mid_r = (m.p("alar_r") + m.p("subnasale")) / 2
    mid_l = (m.p("alar_l") + m.p("subnasale")) / 2
    ids += m.line(m.saddle("r"), "alar_r", (0, 1 / 3, 2 / 3, 1)) + m.line("alar_r", mid_r, (0.5, 1))
    ids += [m.named["subnasale"]] + m.line(mid_l, "alar_l", (0, 0.5, 1)) + m.line("alar_l", m.saddle("l"), (1 / 3, 2 / 3))
    ids += m.curve("mouth_corner_r", "lip_upper_outer", "mouth_corner_l", [k / 6 for k in range(6)])
    ids += m.curve("mouth_corner_l", "lip_lower_outer", "mouth_corner_r", [k / 6 for k in range(6)])
    ids += m.curve("mouth_corner_r", "lip_upper_inner", "mouth_corner_l", fifths)
    ids += m.curve("mouth_corner_l", "lip_lower_inner", "mouth_corner_r", fifths)
    return np.array(ids + m.contour(15), dtype=np.int64)


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


# -- FER2013 --------------------------------------------------------------------------------------
def write_fer2013(out_dir: str | Path, subjects: int = 20, seed: int = 0, size: int = 96, levels: Sequence[int] = world.LEVELS) -> Summary:
    """``fer2013/fer2013.csv``: 48×48 grayscale faces in Training/PublicTest/PrivateTest blocks split by subject."""
    people = _people("fer2013", subjects, seed, 10**6)
    root = _prepare(out_dir)
    usage = dict(zip((p.id for p in people), _splits(len(people), FER2013_SPLITS)))
    block = {name: k for k, (name, _) in enumerate(FER2013_SPLITS)}
    rows = [
        (block[usage[s.subject.id]], _gray(s.rgb, 48), s.label, s.subject)
        for s in world.sample_world(people, labels=range(7), intensities=levels, size=size, seed=seed)
    ]
    rows.sort(key=lambda r: r[0])  # stable: subject-major inside each block
    names = [FER2013_SPLITS[r[0]][0] for r in rows]
    faces, emotions = np.stack([r[1] for r in rows]), [FER2013_IDS[r[2]] for r in rows]
    raw_fer2013.write_csv(root / "fer2013" / "fer2013.csv", "fer2013", faces, emotions, names)
    truth = {f"fer2013/{i:05d}": _truth(person, label, None, names[i]) for i, (_, _, label, person) in enumerate(rows)}
    return _summary("fer2013", root, seed, subjects, size, truth)


# -- CK+ ------------------------------------------------------------------------------------------
def write_ckplus(
    out_dir: str | Path, subjects: int = 20, seed: int = 0, size: int = 128, frames: tuple[int, int] = (6, 12), landmarks: bool = True
) -> Summary:
    """The official CK+ tree: one neutral→peak sequence per emotion 1–7 and subject."""
    people = _people("ckplus", subjects, seed, 999)
    root = _prepare(out_dir)
    truth: dict[str, dict] = {}
    for person in people:
        name = f"S{person.id + 1:03d}"
        numbers = _rng(seed, person, "ckplus-sequences").permutation(7) + 1
        for label, number in zip(range(1, 8), numbers):
            clip, seq = _ck_sequence(person, label, int(number), name, seed, size, frames, landmarks)
            raw_ckplus.write_official(root, [seq])
            aus = [{"au": au, "intensity": float(value), "side": None} for au, value in seq.facs]
            for k in range(1, seq.peak + 1):
                peak = k == seq.peak
                truth[f"ckplus/{seq.folder}/{k:08d}"] = _truth(
                    person, clip[-1].label if peak else None, namespaced("ckplus", name), None, aus if peak else None
                )
    return _summary("ckplus", root, seed, subjects, size, truth)


def _ck_sequence(
    person: world.Subject, label: int, number: int, name: str, seed: int, size: int, frames: tuple[int, int], landmarks: bool
) -> tuple[list[world.FaceSample], raw_ckplus.CKSequence]:
    rng = _rng(seed, person, "ckplus", label)
    clip = world.sequence(
        person, label, int(rng.integers(frames[0], frames[1] + 1)), size=size,
        pose=tuple(rng.uniform(-3, 3, 3)), light=world.random_light(rng, 0.3),
        scale=1 + rng.uniform(-0.05, 0.05), side=world.SIDES[int(rng.integers(2))], seed=int(rng.integers(2**31)),
    )  # fmt: skip
    facs = [(au, int(np.clip(round(v), 1, 5))) for au, v in sorted(clip[-1].aus.items())]
    points = None
    if landmarks:
        ids = ibug68(clip[0])
        points = [_project(f, f.mesh.vertices[ids]) for f in clip]
    seq = raw_ckplus.CKSequence(name, number, [_gray(f.rgb) for f in clip], CKPLUS_IDS[clip[-1].label], facs, points)
    return clip, seq


# -- BU-3DFE --------------------------------------------------------------------------------------
def write_bu3dfe(
    out_dir: str | Path, subjects: int = 20, seed: int = 0, size: int = 256, levels: Sequence[int] = world.LEVELS, raw_files: bool = True
) -> Summary:
    """``BU_3DFE/<subject>/``: one neutral and six emotions × ``levels`` textured meshes per subject
    (``raw_files=False`` leaves out the ``RAW`` pair, which converters ignore: half the bytes)."""
    if size > 512:
        raise FerbenchError("bu3dfe: the F2D texture is at most 512 pixels wide")
    people = _people("bu3dfe", subjects, seed, 9999)
    root = _prepare(out_dir)
    numbers: Counter = Counter()
    truth: dict[str, dict] = {}
    for person in people:
        numbers[person.sex] += 1
        raw_id = f"{person.sex}{numbers[person.sex]:04d}"
        ethnicity = BU3DFE_ETHNICITIES[int(_rng(seed, person, "bu3dfe-ethnicity").integers(len(BU3DFE_ETHNICITIES)))]
        neutral = world.sample_world([person], labels=(0,), intensities=(1,), size=size, seed=seed, **FRONTAL)
        posed = world.sample_world([person], labels=range(1, 7), intensities=levels, size=size, seed=seed, **FRONTAL)
        for s in (*neutral, *posed):
            ids = bu3dfe83(s)
            scan = raw_bu3dfe.Scan(raw_id, BU3DFE_CODES[s.label], s.intensity, ethnicity, s.mesh, ids, s.mesh.vertices[ids], s.rgb, s.rgb)
            raw_bu3dfe.write_bu3dfe(root, [scan], top="BU_3DFE", raw_files=raw_files)
            truth[f"bu3dfe/{raw_id}/{scan.stem}"] = _truth(person, s.label, namespaced("bu3dfe", raw_id))
    return _summary("bu3dfe", root, seed, subjects, size, truth)


# -- Bosphorus ------------------------------------------------------------------------------------
def write_bosphorus(
    out_dir: str | Path, subjects: int = 20, seed: int = 0, size: int = 128, level: int = 4, extras: bool = True
) -> Summary:
    """``BosphorusDB/bsNNN/``: neutral, emotion (and with ``extras`` single-AU and occlusion) scans."""
    people = _people("bosphorus", subjects, seed, 1000)
    root = _prepare(out_dir)
    truth: dict[str, dict] = {}
    for person in people:
        for cls, code, rep, aus, sides, occlusion, label, coded in _bosphorus_plan(person, level, extras):
            stem = f"bs{person.id:03d}_{cls}_{code}_{rep}"
            rng = _rng(seed, person, stem)
            s = world.render_face(
                person, aus, sides=sides, size=size, pose=tuple(rng.uniform(-1, 1, 3) * (4.0, 4.0, 2.0)),
                light=world.random_light(rng, 0.5), scale=1 + rng.uniform(-0.05, 0.05), occlusion=occlusion,
                seed=int(rng.integers(2**31)), label=label, intensity=level if label else 0,
            )  # fmt: skip
            raw_bosphorus.write_bosphorus(root, [_bosphorus_scan(s, person.id, cls, code, rep)])
            truth[f"bosphorus/{stem[:5]}/{stem}"] = _truth(person, label, namespaced("bosphorus", stem[:5]), None, coded)
    return _summary("bosphorus", root, seed, subjects, size, truth)


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


def _bosphorus_scan(s: world.FaceSample, subject: int, cls: str, code: str, rep: int) -> raw_bosphorus.Scan:
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
    m = _Marks(s)
    ids = [m.snap(m.saddle(p[1])) if isinstance(p, tuple) else m.named[p] for p in BOSPHORUS_POINTS.values()]
    xyz = s.mesh.vertices[ids]
    seen = _visible(s, xyz)
    px = _project(s, xyz)
    names = list(BOSPHORUS_POINTS)
    lm3 = {names[k]: xyz[k] for k in np.flatnonzero(seen)}
    lm2 = {names[k]: px[k] for k in np.flatnonzero(seen)}
    return raw_bosphorus.Scan(
        subject, cls, code, rep, x[r, c], y[r, c], z[r, c], u[r, c], v[r, c], valid[r, c], s.rgb, lm3=lm3, lm2=lm2
    )


# -- CalD3r / MenD3s ------------------------------------------------------------------------------
def write_caldr_menders(
    out_dir: str | Path, subjects: int = 20, seed: int = 0, size: int = 224, levels: Sequence[int] = (1, 2), tree: str = "rgb-depth"
) -> Summary:
    """``CalD3r/`` and ``MenD3s/``: RGB + 16-bit depth pairs (1/8 mm units) of spontaneous-looking expressions."""
    people = _people("caldr_menders", subjects, seed, 199)  # MenD3s numbers have 2 digits
    n_cal = math.ceil(subjects / 2)
    root = _prepare(out_dir)
    truth: dict[str, dict] = {}
    for person in people:
        source_set, number = ("CalD3r", person.id + 1) if person.id < n_cal else ("MenD3s", person.id - n_cal + 1)
        neutral = world.sample_world([person], labels=(0,), intensities=world.LEVELS, size=size, seed=seed)
        expressive = world.sample_world([person], labels=range(1, 7), intensities=levels, size=size, seed=seed)
        used: set[str] = set()
        for k, s in enumerate((*neutral, *expressive)):
            rng = _rng(seed, person, "caldr", k)
            code = _stimulus(rng, used)
            distance = rng.uniform(450.0, 650.0)
            depth = np.where(np.isfinite(s.depth_mm), np.round((distance + np.nan_to_num(s.depth_mm)) * DEPTH_UNITS_PER_MM), 0)
            sample = raw_caldr_menders.Sample(source_set, person.sex, number, code, CALDR_WORDS[s.label], s.rgb, depth.astype(np.uint16))
            raw_caldr_menders.write_caldr_menders(root, [sample], tree=tree)
            subject_id = namespaced("caldr_menders", f"{source_set}-{number:0{raw_caldr_menders.PAD[source_set]}d}")
            truth[f"caldr_menders/{source_set}/{sample.stem()}"] = _truth(person, s.label, subject_id)
    return _summary("caldr_menders", root, seed, subjects, size, truth)


def _stimulus(rng: np.random.Generator, used: set[str]) -> str:
    """A 4-digit picture code (IAPS-like) not yet used by this subject."""
    while (code := str(int(rng.integers(1000, 10000)))) in used:
        pass
    used.add(code)
    return code


# -- AffectNet (small release) --------------------------------------------------------------------
def write_affectnet(
    out_dir: str | Path, subjects: int = 20, seed: int = 0, size: int = 224, levels: Sequence[int] = world.LEVELS
) -> Summary:
    """``train_set/`` + ``val_set/``: JPEG faces with string exp/val/aro and 68-landmark npy files."""
    people = _people("affectnet", subjects, seed, 10**6)
    root = _prepare(out_dir)
    split_of = dict(zip((p.id for p in people), _splits(len(people), (("train", 0.9), ("val", 0.1)))))
    next_id = {"train": 0, "val": 0}
    gaps = {split: np.random.default_rng([seed, 7919, k]) for k, split in enumerate(next_id)}
    truth: dict[str, dict] = {}
    for s in world.sample_world(people, labels=range(8), intensities=levels, size=size, seed=seed):
        split = split_of[s.subject.id]
        name = str(next_id[split])
        next_id[split] += 1 + int(gaps[split].integers(0, 3))
        valence, arousal = _valence_arousal(s, _rng(seed, s.subject, "affectnet", s.label, s.intensity, name))
        landmarks = _project(s, s.mesh.vertices[ibug68(s)])
        raw_affectnet.write_small(root, [raw_affectnet.Sample(split, name, s.rgb, s.label, valence, arousal, landmarks)])
        truth[f"affectnet/{split}/{name}"] = {**_truth(s.subject, s.label, None, split), "valence": valence, "arousal": arousal}
    return _summary("affectnet", root, seed, subjects, size, truth)


def _valence_arousal(s: world.FaceSample, rng: np.random.Generator) -> tuple[float, float]:
    """The emotion's centre scaled by its level (0.55–1.0), plus noise, clipped to [-1, 1], 6 digits."""
    strength = 0.4 + 0.15 * max(s.intensity, 1)
    centre = np.asarray(VALENCE_AROUSAL[s.label]) * strength
    va = np.clip(centre + rng.normal(0, 0.08, 2), -1, 1)
    return float(f"{va[0]:.6g}"), float(f"{va[1]:.6g}")


# -- RAF-DB (basic release) -----------------------------------------------------------------------
def write_rafdb(out_dir: str | Path, subjects: int = 20, seed: int = 0, size: int = 100, levels: Sequence[int] = world.LEVELS) -> Summary:
    """``EmoLabel/list_patition_label.txt`` + ``Image/{aligned,original}/``: 7 emotions, test split by subject."""
    people = _people("rafdb", subjects, seed, 10**6)
    root = _prepare(out_dir)
    split_of = dict(zip((p.id for p in people), _splits(len(people), (("train", 0.8), ("test", 0.2)))))
    counts = {"train": 0, "test": 0}
    samples, truth = [], {}
    aligned = {"size": size, "seed": seed, "scale_jitter": 0.03, "shift_jitter": 0.01}
    for s in world.sample_world(people, labels=range(7), intensities=levels, **aligned):
        split = split_of[s.subject.id]
        counts[split] += 1
        name = f"{split}_{counts[split]:0{5 if split == 'train' else 4}d}"
        samples.append(raw_rafdb.Sample(name, RAFDB_IDS[s.label], s.rgb, s.rgb))
        truth[f"rafdb/{name}"] = _truth(s.subject, s.label, None, split)
    raw_rafdb.write_basic(root, samples)
    return _summary("rafdb", root, seed, subjects, size, truth)


#: Dataset name → writer; every writer takes (out_dir, subjects=, seed=, size=).
LAYOUTS: dict[str, Callable[..., Summary]] = {
    "fer2013": write_fer2013,
    "ckplus": write_ckplus,
    "bu3dfe": write_bu3dfe,
    "bosphorus": write_bosphorus,
    "caldr_menders": write_caldr_menders,
    "affectnet": write_affectnet,
    "rafdb": write_rafdb,
}
