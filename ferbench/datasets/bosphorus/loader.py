"""Bosphorus 3D face database (Savran et al., BIOID 2008): structured-light face scans.

105 subjects (``bs000``..``bs104``), about 4.6k scans: neutral faces, six posed emotions, 25
single action units, 3 AU combinations, 13 head poses and 4 occlusions. Each scan is four files
sharing one stem, ``bs<SSS>_<CLASS>_<CODE>_<N>``:

* ``.bnt`` — binary range grid (X, Y, Z in mm, u, v texture coordinates; ``geometry.bnt``);
* ``.png`` — the colour texture (passed through untouched as ``rgb``; ``rgb.path`` is stored as
  ``<subject folder>/<file>``, e.g. ``bs000/bs000_E_ANGER_0.png``, relative to the folder holding
  the subject folders whatever folder the raw directory names);
* ``.lm3`` / ``.lm2`` — the visible ones of 24 named landmarks in 3-D / on the ``.png``
  (``geometry.bosphorus_landmarks``).

Layout ``subject-folders``: ``BosphorusDB/bs000/bs000_E_ANGER_0.{bnt,png,lm2,lm3}`` (the top
folder name varies; stems are found recursively). One row per stem, so repeated scans
(``_0``, ``_1``, …) are distinct samples: ``sample_id`` ``bosphorus/bs000/bs000_E_HAPPY_1``,
``subject_id`` ``bosphorus:bs000``, ``repetition`` = N. A stem without its ``.png`` or ``.bnt`` is a
``missing-pair`` fault; a missing ``.lm3`` / ``.lm2`` leaves ``landmarks`` / ``landmarks_2d`` null
(counted in the build report's notes).

Classes (``label_raw`` = ``<CLASS>_<CODE>``, label source ``annotation``): ``N_N`` neutral,
``E_HAPPY`` happiness, ``E_SADNESS`` sadness, ``E_SURPRISE`` surprise, ``E_FEAR`` fear,
``E_DISGUST`` disgust, ``E_ANGER`` anger; no contempt. Every other scan is kept with a null label
and its ``scan_class`` / ``scan_code``: ``LFAU``/``UFAU`` (single AUs), ``CAU`` (combinations),
``YR``/``PR``/``CR`` (poses), ``O`` (occlusions), ``IGN`` (meaning UNVERIFIED).

Action units (``aus``) of ``LFAU``/``UFAU``/``CAU`` scans: code ``<n>[L|R][W]`` → AU n, side
``L``/``R`` when written, and ``LW`` read as "low intensity" (the paper's "low intensity lip corner
puller", bilateral; UNVERIFIED) → intensity 1.0 on the FACS 1–5 (A–E) scale; no suffix → intensity
null (present, intensity not coded). ``CAU`` spellings are UNVERIFIED: AUs joined by ``+`` or
prefixed by ``A`` (``A22A25``, ``22+25``, ``A26A12LW``) are parsed; any other spelling keeps
``aus`` null and adds a note.

Option ``au_rule=true`` (not standard, never the default) also labels exact codes
``LFAU_24`` anger, ``LFAU_9`` disgust, ``LFAU_12`` happiness, ``LFAU_15`` sadness, ``UFAU_2``
surprise, ``UFAU_1`` fear with label source ``au-rule`` (``12L``/``12R``/``12LW`` stay unlabelled).

Depth: the X/Y/Z grid rendered by ``geometry.render.render_grid_depth`` (orthographic by default;
options ``size``, ``mm_per_px``, ``projection``), 16-bit PNG in 0.1 mm, 0 = no surface, +y up;
the camera is in the schema metadata under ``depth``. ``landmarks`` are the ``.lm3`` points as a
fixed (24, 3) array in the database's label order, NaN where absent (``bosphorus24-3d``);
``landmarks_px`` are the same points projected into the depth image (x = column, y = row);
``landmarks_2d`` are the ``.lm2`` texture pixels (``bosphorus24-2d`` layout).

The ``.png`` texture is not pixel-registered to the rendered depth, so ``align=true`` rotates the
RGB only; the depth stays in the scanner's upright metric frame. ``crop_rgb=true`` crops the
texture to the box of the valid samples' texture coordinates (report 003 cropped its Bosphorus RGB
"accordingly to the depth maps"; orientation of v UNVERIFIED, so off by default).

Unlike the public reference code, the ``.bnt`` planes are read in file order X, Y, Z, u, v (not
reversed), and repeated scans are never collapsed onto one name.
"""

from __future__ import annotations

import os
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pyarrow as pa

from ...geometry import bnt, bosphorus_landmarks, render
from ...geometry.bnt import read_bnt
from ...geometry.bosphorus_landmarks import read_lm2, read_lm3, to_slots
from ...geometry.render import depth_metadata, depth_to_png, render_grid_depth
from ...errors import SampleError
from ...imageio import check_image, encode_png
from ...schema import EMOTION_INDEX, LANDMARKS_TYPE, image, namespaced
from .. import _rgbd
from ..base import register_dataset, DatasetLoader, Item, Option, Report

STEM = re.compile(r"^bs(?P<subject>\d{3})_(?P<cls>[A-Z]+)_(?P<code>[A-Za-z0-9]+)_(?P<rep>\d+)$")
EXTENSIONS = ("bnt", "png", "lm3", "lm2")
EMOTIONS = {
    "N_N": "neutral",
    "E_HAPPY": "happiness",
    "E_SADNESS": "sadness",
    "E_SURPRISE": "surprise",
    "E_FEAR": "fear",
    "E_DISGUST": "disgust",
    "E_ANGER": "anger",
}
AU_RULE = {
    "LFAU_24": "anger",
    "LFAU_9": "disgust",
    "LFAU_12": "happiness",
    "LFAU_15": "sadness",
    "UFAU_2": "surprise",
    "UFAU_1": "fear",
}
KNOWN_CLASSES = ("N", "E", "LFAU", "UFAU", "CAU", "YR", "PR", "CR", "O", "IGN")
_AU = re.compile(r"(?P<au>\d{1,2})(?P<mod>LW|L|R)?")
_CAU_SPLIT = re.compile(r"[+A]")


def parse_aus(scan_class: str, code: str) -> list[dict[str, Any]] | None:
    """AU entries of an ``LFAU``/``UFAU``/``CAU`` code, or None if the code does not parse."""
    parts = [code] if scan_class != "CAU" else [p for p in _CAU_SPLIT.split(code.upper()) if p]
    aus = []
    for part in parts:
        m = _AU.fullmatch(part)
        if m is None:
            return None
        mod = m["mod"]
        aus.append({"au": int(m["au"]), "intensity": 1.0 if mod == "LW" else None, "side": mod if mod in ("L", "R") else None})
    return aus or None


@register_dataset
class Bosphorus(DatasetLoader):
    name = "bosphorus"
    title = "Bosphorus 3D Face Database"
    version = "2008"
    homepage = "http://bosphorus.ee.boun.edu.tr/"
    license = "research use under the Bosphorus database licence agreement (signed request to the authors)"
    citation = (
        "A. Savran, N. Alyüz, H. Dibeklioğlu, O. Çeliktutan, B. Gökberk, B. Sankur, L. Akarun, "
        '"Bosphorus Database for 3D Face Analysis", Biometrics and Identity Management (BIOID), '
        "LNCS 5372, Springer, 2008, pp. 47-56"
    )
    layouts = {
        "subject-folders": """
BosphorusDB/
  bs000/
    bs000_N_N_0.bnt  bs000_N_N_0.png  bs000_N_N_0.lm2  bs000_N_N_0.lm3
    bs000_E_ANGER_0.{bnt,png,lm2,lm3}
    bs000_LFAU_12LW_0.{bnt,png,lm2,lm3}   bs000_YR_R90_0.{...}   bs000_O_GLASSES_0.{...}
  bs001/ ... bs104/
""",
    }
    label_map = {raw: EMOTION_INDEX[word] for raw, word in EMOTIONS.items()}
    extra_fields = (
        pa.field("scan_class", pa.string()),
        pa.field("scan_code", pa.string()),
        pa.field("repetition", pa.int8()),
        pa.field("landmarks_2d", LANDMARKS_TYPE),
        pa.field("landmarks_px", LANDMARKS_TYPE),
    )
    options = {
        "au_rule": Option(False, "also label LFAU_24/9/12/15 and UFAU_2/1 scans by the reference code's AU rule"),
        "crop_rgb": Option(False, "crop the colour texture to the scan's valid samples (their u, v), as report 003 did"),
        "align": _rgbd.ALIGN,
        **_rgbd.CAMERA_OPTIONS,
    }

    @property
    def block_items(self) -> int:
        """Small conversion blocks when every scan is rendered."""
        return _rgbd.SLOW_BLOCK

    def _files(self, report: "Report | None" = None) -> list[Path]:
        """The scan files below the root, sorted; bad links left out (faults of ``report``)."""
        probe = report if report is not None else Report()
        return sorted(p for p in self.root.rglob("*") if p.suffix.lower()[1:] in EXTENSIONS and self.usable_file(p, probe))

    def detect(self) -> str:
        if not any(p.suffix.lower() == ".bnt" for p in self._files()):
            raise self.not_found("no .bnt range file anywhere below it")
        return "subject-folders"

    def scan(self, report: "Report") -> Iterable[Item]:
        stems: dict[str, dict[str, Path]] = defaultdict(dict)
        for path in self._files(report):
            ext = path.suffix.lower()[1:]
            if STEM.match(path.stem) is None:
                report.fault("bad-name", "name does not fit bs<SSS>_<CLASS>_<CODE>_<N>", self.rel(path))
            elif ext in stems[path.stem]:
                report.fault("duplicate", f"same scan as {self.rel(stems[path.stem][ext])}", self.rel(path))
            else:
                stems[path.stem][ext] = path
        absent: Counter = Counter()
        for stem, files in sorted(stems.items()):
            item = self._item(stem, files, report)
            if item is not None:
                absent.update(ext for ext in ("lm3", "lm2") if ext not in files)
                yield item
        for ext, n in sorted(absent.items()):
            report.note(f"{n} scan(s) without a .{ext} file: their {'landmarks' if ext == 'lm3' else 'landmarks_2d'} are null")

    def _item(self, stem: str, files: dict[str, Path], report: "Report") -> Item | None:
        lacking = [ext for ext in ("bnt", "png") if ext not in files]
        if lacking:
            present = next(files[ext] for ext in EXTENSIONS if ext in files)
            report.fault("missing-pair", f"scan {stem} has no .{' / .'.join(lacking)} file", self.rel(present))
            return None
        m = STEM.match(stem)
        assert m is not None
        scan_class, code = m["cls"], m["code"]
        aus = None
        if scan_class in ("LFAU", "UFAU", "CAU"):
            aus = parse_aus(scan_class, code)
            if aus is None:
                report.note(f"{stem}: AU code {code!r} not parsed (UNVERIFIED spelling), aus left null")
        elif scan_class not in KNOWN_CLASSES or (scan_class in ("N", "E") and f"{scan_class}_{code}" not in EMOTIONS):
            report.note(f"{stem}: unknown scan type {scan_class}_{code}, kept without label")
        rel = {ext: self.rel(path) for ext, path in files.items()}
        return Item(
            sample_id=f"{self.name}/bs{m['subject']}/{stem}",
            source=rel["bnt"],
            payload={"subject": f"bs{m['subject']}", "class": scan_class, "code": code, "rep": int(m["rep"]), "aus": aus, "files": rel},
        )

    def _label(self, raw: str) -> tuple[int | None, str | None]:
        if raw in EMOTIONS:
            return EMOTION_INDEX[EMOTIONS[raw]], "annotation"
        if self.opts["au_rule"] and raw in AU_RULE:
            return EMOTION_INDEX[AU_RULE[raw]], "au-rule"
        return None, None

    def load(self, item: Item) -> dict[str, Any]:
        p = item.payload
        files = p["files"]
        rgb = self.read_raw(files["png"])
        check_image(rgb, files["png"])
        grid = read_bnt(self.root / files["bnt"], files["bnt"])
        view = render_grid_depth(grid.x, grid.y, grid.z, grid.valid, _rgbd.camera(self.opts))
        lm3 = to_slots(read_lm3(self.root / files["lm3"]), 3, files["lm3"]) if "lm3" in files else None
        lm2 = to_slots(read_lm2(self.root / files["lm2"]), 2, files["lm2"]) if "lm2" in files else None
        if self.opts["crop_rgb"]:
            rgb = crop_to_scan(rgb, grid, files["png"])
        if self.opts["align"]:
            rgb, _, _ = _rgbd.align_images(rgb, None, files["png"])
        raw = f"{p['class']}_{p['code']}"
        label, source = self._label(raw)
        return {
            "sample_id": item.sample_id,
            "subject_id": namespaced(self.name, p["subject"]),
            "label": label,
            "label_raw": raw,
            "label_source": source,
            "rgb": image(rgb, _stored(self.root, files["png"])),
            "depth": image(depth_to_png(view)),
            "aus": p["aus"],
            "landmarks": _rows(lm3),
            "landmark_scheme": None if lm3 is None else "bosphorus24-3d",
            "scan_class": p["class"],
            "scan_code": p["code"],
            "repetition": p["rep"],
            "landmarks_2d": _rows(lm2),
            "landmarks_px": None if lm3 is None else _rows(view.project(lm3)),
        }

    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"depth": depth_metadata(_rgbd.camera(self.opts))}
        if self.opts["au_rule"]:
            meta["au_rule"] = {raw: EMOTION_INDEX[word] for raw, word in AU_RULE.items()}
        return meta

    def fingerprint_sources(self) -> tuple[Any, ...]:
        return (*super().fingerprint_sources(), _rgbd, bnt, bosphorus_landmarks, render)


def crop_to_scan(png: bytes, grid, where: str) -> bytes:
    """The texture cropped to the pixel box of the valid samples' texture coordinates (u left → right,
    v top → bottom, both in [0, 1]: the orientation of the synthetic scans; UNVERIFIED on the real
    files, which is why the option is off by default). A scan without usable u, v is a fault."""
    import io

    from PIL import Image

    ok = grid.valid & np.isfinite(grid.u) & np.isfinite(grid.v) & (grid.u >= 0) & (grid.u <= 1) & (grid.v >= 0) & (grid.v <= 1)
    if not ok.any():
        raise SampleError("bad-texture-coordinates", "no valid sample has u, v in [0, 1]: cannot crop the texture", where)
    with Image.open(io.BytesIO(png)) as im:
        w, h = im.size
        box = (int(np.floor(grid.u[ok].min() * w)), int(np.floor(grid.v[ok].min() * h)),
               max(int(np.ceil(grid.u[ok].max() * w)), int(np.floor(grid.u[ok].min() * w)) + 1),
               max(int(np.ceil(grid.v[ok].max() * h)), int(np.floor(grid.v[ok].min() * h)) + 1))
        return encode_png(np.asarray(im.convert("RGB").crop(box)))


def _rows(points: np.ndarray | None) -> list[list[float]] | None:
    return None if points is None else points.astype(np.float32).tolist()


def _stored(root: Path, rel: str) -> str:
    """``<parent folder>/<file>`` of a raw-root-relative path: the path below the layout root (the
    folder holding the subject folders), the same whichever folder the raw directory names."""
    return "/".join(Path(os.path.abspath(os.path.join(root, rel))).parts[-2:])
