"""The synthetic expression world written out in each dataset's published raw layout.

Every ``write_<name>(out_dir, subjects=, seed=, size=, ...)`` draws ``subjects`` people from
``ferbench.synth.world``, renders their expressions and writes them through the raw-layout writer
of ``ferbench.datasets.<name>.layout``, so ``ferbench convert <name> out_dir`` runs the real converter.
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

from . import SYNTHETIC_MARKER
from ..errors import FerbenchError
from ..registry import Registry
from ..geometry.render import View
from ..schema import EMOTIONS
from . import world

# -- raw label codes of each dataset, by canonical index (from shared/formats) --------------------
BROW_EDGE_MM = 2.0
#: ``world.sample_world`` settings of the lab-captured 3-D sets: near-frontal, no occluders.
FRONTAL = {"pose_jitter": (4.0, 4.0, 2.0), "scale_jitter": 0.05, "shift_jitter": 0.02, "occlusion_rate": 0.0}

Summary = dict[str, Any]


# -- shared helpers -------------------------------------------------------------------------------
def prepare_root(out_dir: str | Path) -> Path:
    """The raw root: created if needed, refused if not empty, marked synthetic."""
    root = Path(out_dir)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FerbenchError(f"{root} is not an empty directory; synthetic data is only written into an empty one")
    root.mkdir(parents=True, exist_ok=True)
    (root / SYNTHETIC_MARKER).touch()
    return root


def draw_people(dataset: str, n: int, seed: int, most: int) -> list[world.Subject]:
    if not 1 <= n <= most:
        raise FerbenchError(f"{dataset}: subjects must be within 1..{most} (its ids have a fixed width), not {n}")
    if seed < 0:
        raise FerbenchError(f"the world seed must be a non-negative integer, not {seed}")
    return world.make_subjects(n, seed)


def make_summary(dataset: str, root: Path, seed: int, subjects: int, size: int, samples: dict[str, dict]) -> Summary:
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


def sample_truth(person: world.Subject, label: int | None, subject_id: str | None, split: str | None = None, aus: list | None = None) -> dict:
    """What converting one sample must give, plus the world subject behind it."""
    return {"label": label, "subject_id": subject_id, "split": split, "aus": aus, "world_subject": person.id}


def split_by_subject(n: int, shares: Sequence[tuple[str, float]]) -> list[str]:
    """Split name per subject index: the last subjects go to the later splits, round(share·n) each
    (at least one while the first split keeps one subject)."""
    out, end = [shares[0][0]] * n, n
    for name, share in reversed(shares[1:]):
        k = min(max(1, round(share * n)), end - 1)
        out[end - k : end] = [name] * k
        end -= k
    return out


def subject_rng(seed: int, subject: world.Subject, *key: str | int) -> np.random.Generator:
    """A random stream keyed on (seed, subject, key), independent of iteration order."""
    words = [k if isinstance(k, int) else zlib.crc32(k.encode()) for k in key]
    return np.random.default_rng([seed, subject.id, 7919, *words])


def gray(rgb: np.ndarray, side: int | None = None) -> np.ndarray:
    """uint8 luma (ITU-R 601) of an RGB image, box-resampled to ``side`` × ``side`` if given."""
    im = Image.fromarray(rgb).convert("L")
    if side is not None and im.size != (side, side):
        im = im.resize((side, side), Image.BOX)
    return np.asarray(im)


def project(s: world.FaceSample, points: np.ndarray) -> np.ndarray:
    """(n, 2) image coordinates (x = column, y = row) of posed mesh points."""
    return View(s.depth_mm, s.frame).project(points)


# -- landmarks: named world points and points derived from them, all mesh vertices ---------------
class Marks:
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
    m = Marks(s)
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
    m = Marks(s)
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




#: Dataset name → synthetic writer ``(out_dir, subjects=, seed=, size=) -> Summary``. Each dataset
#: folder registers its own (``ferbench/datasets/<name>/synth.py``).
SYNTH_LAYOUTS: Registry[Callable[..., Summary]] = Registry("synthetic layout", populate=("ferbench.datasets",))
