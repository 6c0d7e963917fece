"""Write a BU-3DFE raw tree (``<top>/<F0001>/F0001_AN01WH_{F2D.bmp,F3D.bmp,F3D.wrl,F3D.bnd,RAW.wrl,RAW.pse}``).

Meshes are written as BU-3DFE's VRML 2.0 textured ``IndexedFaceSet`` (``geometry.vrml``), by
default with neighbouring triangles merged into 4–6-gons (``ngons``) whose fan triangulation gives
back the very same triangles, so a converter must triangulate mixed polygon sizes. ``RAW`` files
(an uncropped mesh in another frame plus an 8-row pose file, both UNVERIFIED in detail) are
written too when ``raw_files`` is set; converters ignore them. ``missing`` leaves files out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Collection

import numpy as np
from PIL import Image

from ...geometry.bnd import write_bnd
from ...geometry.mesh import Mesh
from ...geometry.vrml import write_vrml

#: The RAW mesh is not in the F3D frame (shift in mm; the real offset is unknown).
RAW_OFFSET = np.array([12.0, -30.0, -150.0])
#: Polygon sizes cycled through when merging triangles (3 = leave a triangle alone).
NGON_CYCLE = (4, 3, 5, 6, 4, 3)


@dataclass(frozen=True)
class Scan:
    """One model: a textured F3D mesh (uv with v up into ``texture``), its 83 landmarks, F2D image."""

    subject: str
    expression: str
    intensity: int
    ethnicity: str
    mesh: Mesh
    landmark_index: np.ndarray
    landmarks: np.ndarray
    f2d: np.ndarray
    texture: np.ndarray

    @property
    def stem(self) -> str:
        return f"{self.subject}_{self.expression}{self.intensity:02d}{self.ethnicity}"


def fan_polygons(faces: np.ndarray, sizes: tuple[int, ...] = NGON_CYCLE) -> list[list[int]]:
    """Merge consistently oriented triangles into polygons whose fan triangulation (around the
    first corner) yields exactly the input triangles; target sizes cycle through ``sizes``."""
    tris = np.asarray(faces).tolist()
    owner = {}
    for t, (a, b, c) in enumerate(tris):
        owner[(a, b)] = owner[(b, c)] = owner[(c, a)] = t
    used = [False] * len(tris)
    polygons: list[list[int]] = []
    for t, tri in enumerate(tris):
        if used[t]:
            continue
        used[t] = True
        poly, want = list(tri), sizes[len(polygons) % len(sizes)]
        while len(poly) < want:
            # grow the fan around poly[0]: after its last corner, else before its second one
            for edge, step, at in (((poly[0], poly[-1]), 2, len(poly)), ((poly[1], poly[0]), 1, 1)):
                n = owner.get(edge)
                if n is not None and not used[n]:
                    corner = _after(tris[n], poly[0], step)
                    if corner not in poly:
                        used[n] = True
                        poly.insert(at, corner)
                        break
            else:
                break
        polygons.append(poly)
    return polygons


def _after(tri: list[int], corner: int, step: int) -> int:
    """The corner ``step`` places after ``corner`` in a triangle's cyclic order."""
    return tri[(tri.index(corner) + step) % 3]


def write_bu3dfe(
    root: str | Path,
    scans: list[Scan],
    top: str = "BU_3DFE",
    ngons: bool = True,
    comma_style: str = "bu3dfe",
    raw_files: bool = True,
    missing: Collection[str] = (),
) -> dict[str, Path]:
    """Write ``scans`` below ``root/top/<subject>/``; returns {file name: path} of what was written."""
    written: dict[str, Path] = {}
    for scan in scans:
        folder = Path(root) / top / scan.subject
        folder.mkdir(parents=True, exist_ok=True)
        polygons = fan_polygons(scan.mesh.faces) if ngons else None
        files = {
            "F2D.bmp": lambda p: Image.fromarray(scan.f2d).save(p, format="BMP"),
            "F3D.bmp": lambda p: Image.fromarray(scan.texture).save(p, format="BMP"),
            "F3D.wrl": lambda p: write_vrml(p, scan.mesh, f"{scan.stem}_F3D.bmp", polygons, comma_style),
            "F3D.bnd": lambda p: write_bnd(p, scan.landmark_index, scan.landmarks),
        }
        if raw_files:
            files["RAW.wrl"] = lambda p: write_vrml(p, Mesh(scan.mesh.vertices + RAW_OFFSET, scan.mesh.faces))
            files["RAW.pse"] = lambda p: write_bnd(p, scan.landmark_index[:8], scan.landmarks[:8] + RAW_OFFSET)
        for suffix, write in files.items():
            path = folder / f"{scan.stem}_{suffix}"
            if path.name not in missing:
                write(path)
                written[path.name] = path
    return written
