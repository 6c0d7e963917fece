"""BU-3DFE (Binghamton University 3D Facial Expression database; Yin et al., FGR 2006).

100 subjects (56 female ``F0001``..``F0056``, 44 male ``M0001``..``M0044``), each with six
prototypic expressions at four intensities plus one neutral model: 2,500 textured 3-D face
models captured with a 3dMD stereo digitiser.

Layout ``subject-folders`` (the top folder name varies — ``BU_3DFE/``, ``BU-3DFE/BU-3DFE/``, … —
so subject folders are found recursively): ``<F0001>/F0001_AN01WH_<KIND>.<ext>`` with

* ``_F3D.wrl`` — cropped face mesh, VRML 2.0 (``geometry.vrml``; mixed polygon sizes),
* ``_F3D.bnd`` — its 83 landmarks ``<vertex index> <x> <y> <z>`` (``geometry.bnd``),
* ``_F3D.bmp`` — the two-view texture of the F3D mesh,
* ``_F2D.bmp`` — a 512×512 frontal texture (warped, **not registered to the depth**),
* ``_RAW.wrl`` / ``_RAW.pse`` — the uncropped model in another frame (ignored).

File name ``<F|M><nnnn>_<EXPR><II><ETH>_<KIND>.<ext>``: EXPR ``AN DI FE HA SA SU NE``, intensity
``01``..``04`` (low, middle, high, highest) and ``00`` for neutral only, ethnicity ``WH`` White,
``BL`` Black, ``AE`` East Asian, ``AM`` Middle-East Asian, ``LA`` Hispanic/Latino, ``IN`` Indian
(the code set is verified, the letter-to-meaning pairing is UNVERIFIED). One row per F3D model:
``sample_id`` ``bu3dfe/F0001/F0001_AN01WH``, ``subject_id`` ``bu3dfe:F0001``, columns ``sex``,
``ethnicity``, ``expression`` (the code), ``intensity`` (int8, 0 for neutral).

Classes (``label_raw`` = the expression code, label source ``annotation``): NE neutral,
HA happiness, SA sadness, SU surprise, FE fear, DI disgust, AN anger; no contempt.

Depth: the F3D mesh rendered by ``geometry.render.render_mesh_depth`` (orthographic by default,
``projection=perspective`` optional; ``size``, ``mm_per_px``), 16-bit PNG in 0.1 mm, 0 = no surface,
+y up (the mesh frame is mm, y up, face toward +z: UNVERIFIED but what public code assumes); the
camera is in the schema metadata under ``depth``. ``landmarks`` are the 83 ``.bnd`` points in mesh
mm (``bu3dfe83-3d``); ``landmarks_px`` are the same points projected into the depth image.

RGB: by default the ``_F2D.bmp`` bytes pass through (BMP; it is a frontal texture, not a camera
image, and not pixel-registered to the depth); ``rgb.path`` is stored as ``<subject folder>/<file>``
(``F0001/F0001_AN01WH_F2D.bmp``), relative to the folder holding the subject folders whatever
folder the raw directory names, so the fingerprint depends on the content only. ``rgb=render`` instead renders the F3D mesh with
its ``_F3D.bmp`` texture through the depth camera (``render_textured``), so RGB and depth are
pixel-registered (PNG). ``align=true`` rotates RGB and depth together when registered
(``rgb=render``; ``landmarks_px`` follow), else the RGB only.

Faults: a model missing its ``_F3D.wrl``, ``_F3D.bnd`` or RGB source (``missing-pair``), a
malformed VRML (``bad-mesh``), a ``.bnd`` without 83 rows (``bad-landmarks``), a partner file
whose name breaks the grammar (``bad-name``).
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pyarrow as pa

from ...geometry import bnd, render, vrml
from ...geometry.bnd import read_bnd
from ...geometry.render import depth_metadata, depth_to_png, render_mesh_depth, render_textured
from ...geometry.vrml import read_vrml
from ...imageio import check_image, decode, encode_png
from ...schema import EMOTION_INDEX, LANDMARKS_TYPE, image, namespaced
from .. import _rgbd
from ..base import register_dataset, DatasetLoader, Item, Option, Report

NAME = re.compile(
    r"^(?P<subject>(?P<sex>[FM])\d{4})_(?P<expr>AN|DI|FE|HA|SA|SU|NE)(?P<int>0[0-4])(?P<eth>WH|BL|AE|AM|LA|IN)"
    r"_(?P<kind>F2D|F3D|RAW)\.(?P<ext>(?i:bmp|wrl|bnd|pse))$"
)
#: Names of the files a converter uses; one that breaks the grammar is a reported fault.
PARTNER = re.compile(r"_(F2D\.bmp|F3D\.(bmp|wrl|bnd))$", re.IGNORECASE)
EXPRESSIONS = {"NE": "neutral", "HA": "happiness", "SA": "sadness", "SU": "surprise", "FE": "fear", "DI": "disgust", "AN": "anger"}
RGB_SOURCE = {"texture": "F2D.bmp", "render": "F3D.bmp"}


@register_dataset
class BU3DFE(DatasetLoader):
    name = "bu3dfe"
    title = "BU-3DFE"
    version = "2006"
    homepage = "https://www.cs.binghamton.edu/~lijun/Research/3DFE/3DFE_Analysis.html"
    license = "research licence agreement with Binghamton University (request form); no redistribution"
    citation = (
        "L. Yin, X. Wei, Y. Sun, J. Wang, M. J. Rosato, "
        '"A 3D Facial Expression Database for Facial Behavior Research", 7th International Conference on '
        "Automatic Face and Gesture Recognition (FGR 2006), pp. 211-216"
    )
    layouts = {
        "subject-folders": """
BU_3DFE/
  F0001/
    F0001_AN01WH_F2D.bmp  F0001_AN01WH_F3D.bmp  F0001_AN01WH_F3D.wrl  F0001_AN01WH_F3D.bnd
    F0001_AN01WH_RAW.wrl  F0001_AN01WH_RAW.pse
    ... AN01..04 DI FE HA SA SU 01..04, NE00
  F0002/ ... F0056/  M0001/ ... M0044/
""",
    }
    label_map = {code: EMOTION_INDEX[word] for code, word in EXPRESSIONS.items()}
    extra_fields = (
        pa.field("sex", pa.string()),
        pa.field("ethnicity", pa.string()),
        pa.field("expression", pa.string()),
        pa.field("intensity", pa.int8()),
        pa.field("landmarks_px", LANDMARKS_TYPE),
    )
    options = {
        "rgb": Option("texture", "RGB source: the F2D.bmp frontal texture, or the F3D mesh rendered with F3D.bmp (registered)", ("texture", "render")),
        "align": _rgbd.ALIGN,
        **_rgbd.CAMERA_OPTIONS,
    }

    @property
    def block_items(self) -> int:
        """Small conversion blocks when every scan is rendered."""
        return _rgbd.SLOW_BLOCK

    def _files(self, report: "Report | None" = None) -> list[Path]:
        """The model files below the root, sorted; bad links left out (faults of ``report``)."""
        probe = report if report is not None else Report()
        return sorted(
            p for p in self.root.rglob("*") if p.suffix.lower() in (".bmp", ".wrl", ".bnd", ".pse") and self.usable_file(p, probe)
        )

    def detect(self) -> str:
        if not any(NAME.match(p.name) and p.name.lower().endswith("_f3d.wrl") for p in self._files()):
            raise self.not_found("no <subject>_<EXPR><II><ETH>_F3D.wrl model anywhere below it")
        return "subject-folders"

    def scan(self, report: "Report") -> Iterable[Item]:
        models: dict[str, dict[str, Path]] = defaultdict(dict)
        for path in self._files(report):
            m = NAME.match(path.name)
            valid_intensity = m is not None and (m["expr"] == "NE") == (m["int"] == "00")
            if not valid_intensity:
                if PARTNER.search(path.name):
                    report.fault("bad-name", "name does not fit <F|M><nnnn>_<EXPR><II><ETH>_<KIND>.<ext>", self.rel(path))
                continue
            stem, kind = path.name.rsplit("_", 1)
            kind = kind[:3] + kind[3:].lower()
            if kind in models[stem]:
                report.fault("duplicate", f"same file as {self.rel(models[stem][kind])}", self.rel(path))
                continue
            models[stem][kind] = path
        ethnicities: dict[str, set[str]] = defaultdict(set)
        for stem, files in sorted(models.items()):
            need = ("F3D.wrl", "F3D.bnd", RGB_SOURCE[self.opts["rgb"]])
            lacking = [kind for kind in need if kind not in files]
            if lacking:
                present = next(files[k] for k in (*need, *sorted(files)) if k in files)
                report.fault("missing-pair", f"model {stem} has no {', '.join('_' + k for k in lacking)} file", self.rel(present))
                continue
            m = NAME.match(files["F3D.wrl"].name)
            assert m is not None
            ethnicities[m["subject"]].add(m["eth"])
            yield Item(
                sample_id=f"{self.name}/{m['subject']}/{stem}",
                source=self.rel(files["F3D.wrl"]),
                payload={"match": m.groupdict(), "files": {k: self.rel(files[k]) for k in need}},
            )
        for subject, codes in sorted(ethnicities.items()):
            if len(codes) > 1:
                report.note(f"subject {subject} has several ethnicity codes {sorted(codes)} (expected one)")

    def load(self, item: Item) -> dict[str, Any]:
        m, files = item.payload["match"], item.payload["files"]
        mesh = read_vrml(self.root / files["F3D.wrl"])
        with _rgbd.blame(files["F3D.bnd"]):
            _, points = read_bnd(self.root / files["F3D.bnd"])
        rgb_file = files[RGB_SOURCE[self.opts["rgb"]]]
        rgb_bytes = self.read_raw(rgb_file)
        check_image(rgb_bytes, rgb_file)
        cam = _rgbd.camera(self.opts)
        if self.opts["rgb"] == "render":
            colour, view = render_textured(mesh, decode(rgb_bytes), cam)
            rgb, rgb_path = encode_png(colour), None
        else:
            view, rgb, rgb_path = render_mesh_depth(mesh, cam), rgb_bytes, _stored(self.root, rgb_file)
        depth, points_px = depth_to_png(view), view.project(points)
        if self.opts["align"]:
            registered = self.opts["rgb"] == "render"
            rgb, aligned_depth, matrix = _rgbd.align_images(rgb, depth if registered else None, rgb_file)
            if registered:
                depth, points_px = aligned_depth, _rgbd.transform_points(points_px, matrix)
        return {
            "sample_id": item.sample_id,
            "subject_id": namespaced(self.name, m["subject"]),
            "label_raw": m["expr"],
            "label_source": "annotation",
            "rgb": image(rgb, rgb_path),
            "depth": image(depth),
            "landmarks": points.astype(np.float32).tolist(),
            "landmark_scheme": "bu3dfe83-3d",
            "sex": m["sex"],
            "ethnicity": m["eth"],
            "expression": m["expr"],
            "intensity": int(m["int"]),
            "landmarks_px": points_px.astype(np.float32).tolist(),
        }

    def metadata(self) -> dict[str, Any]:
        return {"depth": depth_metadata(_rgbd.camera(self.opts)), "rgb_registered_to_depth": self.opts["rgb"] == "render"}

    def fingerprint_sources(self) -> tuple[Any, ...]:
        return (*super().fingerprint_sources(), _rgbd, bnd, render, vrml)


def _stored(root: Path, rel: str) -> str:
    """``<parent folder>/<file>`` of a raw-root-relative path: the path below the layout root (the
    folder holding the subject folders), the same whichever folder the raw directory names."""
    return "/".join(Path(os.path.abspath(os.path.join(root, rel))).parts[-2:])
